// Package archive is the page's long history: per series (sensor and
// quantity), the min, mean and max of every minute, kept on disk for a
// retention period (7 days by default) so that the 24 h and 7 d charts
// and /api/history survive a restart. It is a chart's history, not the
// delivery buffer: nothing in it is fsynced, and a power cut may lose the
// minutes not yet written (at most Options.FlushEvery, 15 min by default).
//
// # Off the sensor path
//
// Add is called from every sensor goroutine and never blocks and never
// touches the disk: it hands the reading to a bounded queue (Options.Queue,
// 4096 readings) with a non-blocking send. When the queue is full (the
// writer is stuck on a slow SD card for longer than the queue lasts, about
// 8 minutes at 8 sensors at 1 Hz) the reading is dropped from the archive
// only (it is still stored, published and shown live), counted in
// Stats.Dropped and logged once per flush interval. One writer goroutine
// owns the files: it folds queued readings into per-minute buckets in
// memory and writes every pending bucket of every series in one block,
// with one write, every FlushEvery.
//
// # Files
//
// The archive directory holds one file per UTC day of writing
// (2006-01-02.hist), each a sequence of blocks:
//
//	magic "KHA1" | payload length uint32 | CRC-32C of the payload uint32 | payload
//	payload: uvarint series count, then per series:
//	  uvarint len, sensor | uvarint len, quantity | uvarint record count |
//	  records, oldest first: uvarint minutes since the previous record (since
//	  the epoch for the first), min, mean, max (float64), uvarint count
//
// all little-endian: about 27 bytes a record, and 8 series at 1 Hz write
// about 315 kB a day. A block is written by one write(2); a torn last block
// (power cut) is cut off when the archive is opened; a block whose CRC fails
// is skipped. Files from before this format (one file of 40-byte records per
// series, sensor.quantity.hist) are read once at Open, moved into the
// current day's file and removed.
//
// # Out-of-order readings and retention
//
// A minute may appear in several blocks (a reading that arrives late, two
// devices with different clocks pushing to one sensor, readings after a
// restart): the records are merged when read, weighted by their counts. A
// late reading therefore costs what an in-order one costs (it joins its
// minute's bucket in memory and is written with the next block), and
// nothing is ever rewritten: retention deletes whole day files once their
// newest minute is older than the retention, measured on the injected
// clock (Options.Now, default wallclock.Now). Readings older than the
// retention are refused at the door.
//
// # Values
//
// NaN and ±Inf never enter the archive: Add refuses them (Stats.Refused),
// the running mean cannot overflow (two readings of ±1.7e308 average to 0,
// not -Inf), and records that are not finite (written by an older version)
// are skipped when read.
package archive
