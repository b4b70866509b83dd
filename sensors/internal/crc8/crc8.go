package crc8

// Checksum returns the CRC-8 of data (see the package doc).
func Checksum(data ...byte) byte {
	c := byte(0xFF)
	for _, x := range data {
		c ^= x
		for range 8 {
			if c&0x80 != 0 {
				c = c<<1 ^ 0x31
			} else {
				c <<= 1
			}
		}
	}
	return c
}
