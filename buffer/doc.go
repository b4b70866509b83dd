// Package buffer is Kelvin's durable store-and-forward log: readings go in
// with Append, and each output reads them back through its own Cursor
// (a publish.Source) until the broker acknowledged them.
//
// # Guarantee
//
// Every reading that entered the buffer is delivered at least once, in
// order per sensor, across broker outages, kill -9 and power cuts, within
// the disk budget (max_bytes, max_age) the user sets. Precisely:
//
//   - With a hot directory (hot_dir, by default systemd's runtime
//     directory /run/kelvin, a tmpfs kept across restarts of the service):
//     a reading is in the buffer when Append returns. It is then in the
//     tmpfs, which a kill -9 does not touch, and outputs see it at once. A
//     reading that every output acknowledged within one sync interval is
//     never written to disk; one that some output has not acknowledged by
//     then is copied to disk and fsynced (one fsync per commit, whatever
//     the rate), and from then on the disk serves it in order until every
//     output has it. A power cut loses at most the readings no output had
//     acknowledged that were appended in the last sync interval (plus the
//     time one fsync takes); with sync: always, Append returns only after
//     the fsync, as without a hot directory.
//   - Without one (hot_dir: off, or none found): a reading is in the buffer
//     once it is durable: when Append returns with sync: always, otherwise
//     after the next group commit, which runs every sync interval (default
//     1s). A power cut loses at most the readings appended since the start
//     of the last completed group commit: with sync: 1s, the last second
//     plus the time one fsync takes (on an SD card, tens to a few hundred
//     milliseconds). A process crash (kill -9) loses at most the readings
//     still in Append's 64 KiB write buffer, which is written at least at
//     every group commit. Outputs only ever see durable readings, so a
//     reading is never sent and then lost by a power cut; the price is
//     latency (up to one sync interval between Append and Next) and a
//     write to disk for every reading.
//   - Seq is assigned by Append per Sensor (across its quantities), from 1,
//     and never repeats, across restarts and even when the tail of the log
//     is lost after it was durable (a disk that drops acknowledged writes,
//     a restored backup): seqs are reserved ahead in blocks of 65,536 per
//     sensor in the small file SEQ, written when a sensor used up its block
//     (at 1 Hz every 18 hours, two fsyncs, shared by the sensors read at
//     that rate), and
//     after a crash every sensor resumes after its reservation, leaving a
//     gap that Log.Resumed reports (the agent announces it). A clean Close
//     records the exact last seqs, so a clean restart leaves no gap. So
//     (agent, sensor, seq) identifies a reading and a consumer can drop
//     the duplicates that at-least-once delivery produces. A log found
//     shorter than the durable end SEQ recorded is reported with the bytes
//     really lost (Stats.LostBytes).
//   - Readings another agent took (the fleet's, forwarded again) go in with
//     AppendForwarded: they keep the Agent, Sensor and Seq they carry, so
//     (agent, sensor, seq) stays their identity end to end, and they never
//     touch this log's own seqs (counters, SEQ, Resumed): their records are
//     marked, and recovery leaves them out of the seq table. Everything
//     else here holds for them as for local readings.
//   - A cursor's position is persisted at most once per sync interval and
//     on Close. After a crash it may be a little behind (readings are sent
//     again) but is never behind its last persisted position and never skips
//     a reading.
//   - "Delivered" means what the output acknowledged: with MQTT QoS 0 that
//     is "written to the socket", which is no delivery guarantee at all;
//     use QoS 1 (or Kafka with acks) for the guarantee to hold end to end.
//
// What is dropped, and counted, rather than delivered:
//
//   - With full: drop_oldest (the default), when max_bytes (default 64 MiB)
//     is reached, the oldest whole segment is deleted: its readings that a
//     cursor had not acknowledged are counted in that cursor's Dropped and
//     in Stats.DroppedFull, and logged at warn once per event. With full:
//     block_newest, Append refuses new readings with ErrFull instead
//     (Stats.Refused) and nothing is dropped.
//   - A segment whose newest reading is older than max_age (default 7
//     days, by Reading.Time) is deleted (Stats.DroppedAge). Readings
//     marked Clock "unsynced" (taken before a board without a real-time
//     clock had its time set) have no known age and are never dropped for
//     it; max_bytes still bounds them.
//   - A full disk (ENOSPC) is treated like a full budget: segments are
//     preallocated, so it shows up when a new segment is created, before a
//     batch is written; the batch is refused with ErrFull (after dropping
//     the oldest segment once, with drop_oldest). A failed write is cut back
//     to the last good record: the log is never left corrupt. With a hot
//     directory, readings stay in it while the disk is full (within
//     max_bytes) and go to disk once space returns. Open does not fail on a
//     disk with less free space than a segment. DiskFull reports the state
//     (logged when it starts, once a minute while it lasts, and when it
//     ends).
//   - A corrupt record found by a reader (bit rot) is skipped, counted in
//     Stats.CorruptSkipped and logged; the records after it are delivered.
//   - The hot tail holds at most hot_max_bytes in its tmpfs (auto: a
//     quarter of the tmpfs's size, at most max_bytes, at least two
//     segments). A segment that would pass the bound, or a write the tmpfs
//     refuses with ENOSPC, goes to disk instead, with the guarantee of
//     hot_dir: off (Stats.HotFull, logged once when it starts and when the
//     hot tail has room again); nothing is refused for it, and a full disk
//     then falls to full: as above.
//
// Segments that every cursor has passed are deleted at the next group
// commit. With a hot tail a group commit runs only when something is owed:
// when an unacknowledged reading has waited a sync interval, and at the
// acknowledgement that leaves none unacknowledged, at most once per sync
// interval (it writes the cursor positions); a log whose outputs keep up
// has no timer of its own to wake the process between readings. Every cursor the buffer knows holds data back, until SetReaders
// names the cursors of this run: a cursor persisted by an earlier run whose
// output is no longer configured is then dropped, logged with the readings
// it had not acknowledged, and stays dropped (recovery keeps only the
// cursors of the last checkpoint and those recorded after it). SetReaders
// with no name means nothing will read the log back: no reading is written
// to disk (with a hot tail they pass through it, sealed segments going at
// the next commit); seqs are assigned and reserved as always.
//
// # Files
//
// The directory holds a LOCK file (flock: one process per buffer), the seq
// reservation SEQ (reserve.go), and segment files named after the global
// byte offset of their first byte, in
// 20 decimal digits (00000000000000000000.seg, 00000000000004194345.seg,
// ...). A segment is closed at segment_bytes (4 MiB, at most max_bytes/4)
// and the next one starts at the offset where it ended, so offsets grow
// across files and a cursor position is one int64.
//
// A segment starts with the 8 bytes "KLVNSEG1" (the last byte is the
// format version) followed by records:
//
//	length  uint32 little-endian: payload bytes, 1 to 1 MiB
//	crc     uint32 little-endian: CRC-32C (Castagnoli) of length's 4 bytes and the payload
//	payload kind byte, then by kind:
//	  1 reading:    flags byte (1: raw equals value, omitted; 2: long time form;
//	                4: clock fields follow; 8: forwarded, seq is another agent's),
//	                seq uvarint, agent, sensor, quantity, unit (each uvarint length + bytes),
//	                value float64 bits (8 bytes LE), [raw float64 bits],
//	                time: varint unix nanoseconds, or (long form, outside 1700..2200
//	                or the zero time) varint unix seconds + uvarint nanoseconds,
//	                [clock fields: clock (length + bytes), varint CLOCK_BOOTTIME
//	                nanoseconds, uint32 LE boot id hash]
//	  2 checkpoint: uvarint count, then per sensor: name, uvarint last seq;
//	                uvarint count, then per cursor: name, uvarint position
//	  3 cursor:     name, uvarint position (a global offset)
//
// Flags 4 and 8 are newer than the first release of the format: a Kelvin
// older than one treats such records as corrupt (skipped and counted), so
// downgrading while readings taken on an unsynchronised clock, or forwarded
// readings, are buffered loses them. Segments without them read as before.
//
// Every segment begins with a checkpoint of the whole seq table and every
// cursor position, and each group commit appends one cursor record per
// cursor that moved, so the state lives in the log itself: one fsync per
// commit covers readings and positions alike, and deleting old segments
// never loses it. A segment is deleted only once a later checkpoint is
// durable.
//
// With a hot directory the segments being written live there, under the
// same names, and the disk holds sparse copies of them: the bytes that some
// output had not acknowledged when they were due, at their own offsets, the
// rest a hole of zero bytes that readers skip silently (see hot.go).
//
// # Recovery
//
// Open scans every segment (sequential reads: about the log size divided by
// the disk's read speed). A record is valid when its length is sane and its
// CRC matches. Bytes that do not start a valid record are skipped by
// scanning forward, byte by byte, for the next offset where a valid record
// starts: in the middle of a segment that is bit rot, skipped and logged;
// at the end of the newest segment, with no valid record after it, that is
// a torn write from a power cut, truncated and counted
// (Stats.TornTruncated). The seq of each sensor is the maximum of the
// checkpoints and the readings found, forwarded readings (flag 8) left out;
// a cursor's position is the greatest one recorded. Open then fsyncs every segment, so data a killed process
// left in the page cache is durable before any output sees it.
//
// # Write path and memory
//
// With a hot directory, Append writes each batch to the hot segment at
// once (a write to tmpfs, no fsync) and the group commit copies to disk
// only what is due and unacknowledged (see hot.go). Without one, Append
// encodes into a 64 KiB buffer that is written to the active segment when
// full and at every group commit; one background goroutine
// fsyncs every sync interval, only when something changed, so fsyncs do not
// grow with the reading rate (one per interval, plus one for the directory
// when a segment was created). With sync: always, concurrent Appends share
// one fsync.
//
// With the hot directory on a tmpfs (checked with statfs at Open), the
// writes to the hot segment (batches, cursor records) are raw system
// calls, which do not wake the Go runtime's sysmon thread (see pwriteRaw);
// writes to disk always go through os.File.
//
// Nothing but the current batch is held in memory: each cursor keeps one
// open file and a 64 KiB read window, and per segment the buffer keeps a
// few counters, so a backlog of a million readings costs no more memory than
// an empty one. With a hot directory the buffer also keeps a copy of the
// newest 64 KiB of the hot segment (hotCacheBytes), so that a cursor at or
// near the head, an output keeping up, reads what was just appended from
// memory, without a system call; a cursor further behind, a segment on disk
// and a log reopened after a restart are read from their files. Backlog
// counts in Stats are computed from per-segment reading counts without I/O.
package buffer
