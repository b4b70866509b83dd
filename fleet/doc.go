// Package fleet is Kelvin's receiving side: one page for every gateway
// that publishes to a central MQTT broker or Kafka topic, with an
// exactly-once view of the at-least-once stream.
//
// Sources: an MQTT subscription (default kelvin/#, a persistent QoS 1
// session, so the broker keeps what arrives while the fleet is down) and a
// Kafka consumer group (committed offsets: a restart resumes where its
// saved state stopped), over TLS and with SASL as the Kafka output connects (the same
// keys, see internal/kafkaauth); why a source is not connected is in
// Summary.SourceErrors. There is no per-sensor configuration: gateways and sensors
// appear as they publish. Payloads are Kelvin's json, influx and senml
// formats (senml with its seq record, see reading.FormatSenML; agent and
// sensor from the base name kelvin:AGENT:SENSOR:, as the gateway escaped
// them); a bare number (format value) carries no seq and is ignored,
// counted by reason in kelvin_fleet_ignored_total and logged at most once
// a minute.
//
// Exactly once: a reading is identified by (agent, sensor, seq). Per
// sensor the fleet keeps the highest seq seen and the ranges below it
// still missing (at most 64 ranges; Kelvin delivers a sensor in order, so
// a backlog drain fills a gap from its low end). A reading at or below the
// highest seq and in no open gap is a duplicate and dropped. A gap that a
// later drain fills was never a loss; one still open after loss_after is
// counted as lost. A gateway that restarts and skips seqs it had reserved
// says so, in its status object ("skip", see Status), on
// kelvin/AGENT/restart ({"seq_resume":{"tank":65537},"skip_from":{"tank":1743}}:
// where each sensor's seqs resumed and, when said, the first seq skipped),
// or, over Kafka, in the "restart" header of each sensor's
// first reading after the restart (reading.SensorRestart, with the range
// skipped), and those of its seqs not received are neither received nor
// lost. (After a power cut the range can start below the seqs the gateway
// last used: see reading.SensorRestart.) A seq far
// below the highest (2^20), outside
// every gap, means the gateway started over with a new data directory:
// counted as a reset, not as duplicates forever.
//
// The exactly-once state survives a restart of the fleet in one file under
// StateDir, saved at most once a minute and at stop; a Kafka source
// commits its offsets only once a save holds the records before them (see
// state.go).
//
// Memory is bounded: max_gateways, max_sensors per gateway, 8 quantities
// per sensor, history_points readings per series, a 256-reading queue per
// websocket client (a slow one is dropped), 64 clients, and each client
// follows only the gateways on its screen (at most 200).
//
// The page (/fleet/) lists the gateways a page at a time, filtered by the
// search box, and draws the sensors of the shown gateways only, live over
// /fleet/ws. /api/fleet and /api/fleet/gateway serve the same data as
// JSON, WriteMetrics the kelvin_fleet_* families of /metrics.
//
// A gateway is online, offline (its status or last will said so), or
// silent: nothing heard from it for three times its usual interval, at
// least a minute and at most SilentAfter, while no MQTT status "online"
// vouches for it (see quiet.go). Expire, once a second, finds the silent
// ones.
//
// SetForward hands each message's new readings, as the gateways sent
// them, to a forwarder (the agent stores them in its buffer for its
// outputs) before Handle returns, so a source acknowledges a message only
// after; SetStateHook reports gateways going online, offline and silent, and
// SetRestartHook their restart announcements.
package fleet
