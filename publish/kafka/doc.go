// Package kafka is Kelvin's Kafka output: a publish.Output that writes
// readings to a Kafka cluster with franz-go (github.com/twmb/franz-go/pkg/kgo).
//
// # Config
//
//	outputs:
//	  kafka:
//	    brokers: [kafka-1.lan:9093, kafka-2.lan:9093] # host:port seeds, at least one
//	    topic: "kelvin.{agent}.{quantity}"  # default kelvin.readings
//	    compression: zstd                   # none | gzip | snappy | lz4 | zstd (default)
//	    linger: 50ms                        # default 50ms, at most 10s
//	    tls:                                # absent = plaintext
//	      ca: /etc/kelvin/kafka-ca.pem      # absent = system roots
//	      cert: /etc/kelvin/client.pem      # client certificate, with key
//	      key: /etc/kelvin/client.key
//	    sasl:
//	      mechanism: SCRAM-SHA-512          # PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
//	      username: kelvin
//	      password_file: /etc/kelvin/kafka.pass
//
// The topic template's {agent}, {sensor} and {quantity} are filled in per
// reading, with characters Kafka does not allow in topic names (anything but
// a-z A-Z 0-9 . _ -) replaced by "_". The producer asks for missing topics
// to be created; whether they are is the broker's auto.create.topics.enable.
// The password file is read by New and again for every new broker
// connection, so rotating it needs no restart. PLAIN without TLS sends the
// password in clear; New logs a warning.
//
// # Records
//
// Each reading is one record: key "{agent}/{sensor}", value the reading's
// JSON (reading.Reading.AppendJSON), headers agent, sensor and quantity,
// timestamp the reading's time. Readings with no Agent get the agent id
// given to New.
//
// After a restart that skipped seqs (a crash: each sensor resumes after
// its reserved block), the sensor's first reading at or after its
// seq_resume also carries the header "restart", a reading.SensorRestart:
//
//	{"started":"2026-12-04T22:00:00Z","seq_resume":65537,"skip_from":1743}
//
// no reading with a seq in skip_from..seq_resume-1 will come that has not
// come already (after a crash they were never used; after a power cut, see
// reading.SensorRestart), so a consumer counts those it lacks as skipped
// rather than lost (Output.AnnounceSkipped). A fleet that
// forwards gateways' readings carries their announcements on the same way
// (Output.MirrorGatewayRestart).
//
// # Delivery guarantee
//
// At least once, in order per sensor. The producer waits for acks=all and is
// idempotent, so its own retries never duplicate a record. Records with the
// same key go to the same partition, so a consumer sees each sensor's
// readings in the order they were taken. Publish returns nil only once every
// record of the batch is acknowledged; on any error the caller
// (publish.Forward) sends the whole batch again, so a consumer may see a
// reading twice, but never a later reading of a series without the earlier
// ones: when kgo fails a record it fails every record after it in the
// partition too. Duplicates are identified by (agent, sensor, seq) - and
// quantity, for a chip that counts seq per quantity - all in the JSON value.
//
// Publish gives up after 30 s without acknowledgement (an unreachable
// cluster), or at once on a fatal error. Lingering batches each partition's
// records while Publish buffers a batch; Publish then flushes at once, so
// Linger adds no latency to a batch that is already complete. At most 4096
// records are buffered; a bigger batch blocks in Publish until acks make
// room. Record batches are capped at 256 KiB.
//
// # Status
//
// State is "connecting" until the first Publish, "connected" after a
// successful one, "disconnected" on a network error or timeout (the cluster
// may come back), and "failed" when the cluster refuses Kelvin: wrong
// credentials (SASL_AUTHENTICATION_FAILED, or a broker hanging up during
// SASL), TOPIC_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED,
// INVALID_TOPIC_EXCEPTION, a missing topic, a broker certificate that does
// not verify. A failed output keeps failing each Publish (publish.Forward
// backs off) with the broker's message in LastError, and recovers by itself
// once the cause is fixed: after a fatal error the next Publish starts with a
// fresh client. A failed broker connection shows in Status at once, before
// Publish gives up. Sent and Bytes count acknowledged records and their
// value bytes.
package kafka
