package crc8

import "testing"

// TestChecksum: the check value of the SHT3x datasheet's table "I2C CRC
// properties", CRC(0xBEEF) = 0x92, and the init value for no data.
func TestChecksum(t *testing.T) {
	if got := Checksum(0xBE, 0xEF); got != 0x92 {
		t.Errorf("Checksum(0xBE, 0xEF) = 0x%02X, want 0x92", got)
	}
	if got := Checksum(); got != 0xFF {
		t.Errorf("Checksum() = 0x%02X, want the init value 0xFF", got)
	}
}
