// Package crc8 is the CRC-8 that Sensirion's humidity sensors (the SHT3x
// and SHT4x, after every 16-bit word) and the AHT20 (after its six-byte
// frame) send with their data: polynomial 0x31 (x⁸+x⁵+x⁴+1), init 0xFF, no
// reflection, no final XOR. It is not the 1-Wire CRC (Maxim's, reflected,
// init 0).
package crc8
