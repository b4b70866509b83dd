// Package mqtt is Kelvin's MQTT output: it publishes each reading as one
// message, its JSON wire format (reading.Reading.AppendJSON), on a topic
// built from a template, by default
//
//	kelvin/{agent}/{sensor}             one message per reading
//	kelvin/{agent}/{sensor}/{quantity}  for sensors with several quantities
//
// and keeps a retained status on kelvin/{agent}/status: "online" on every
// (re)connection, "offline" as the last will (the broker sends it when the
// agent vanishes) and on a clean shutdown.
//
// It speaks MQTT 3.1.1 through github.com/eclipse/paho.mqtt.golang over
// tcp://, mqtt://, ssl://, tls://, mqtts://, ws:// or wss://, with optional
// username, password file and client certificates.
//
// # Delivery
//
// Client.Publish returns nil only once the broker acknowledged every reading
// of the batch at the configured QoS (QoS 0: once written to the socket). The
// caller's queue or buffer is the source of truth, not paho's store: the
// session is clean, and paho's store keeps nothing (paho reads it only to
// resume a session that is not). A batch whose connection was lost
// or re-established while it was in flight is reported as failed whatever
// paho's tokens say, so the caller sends it again: the broker may see
// duplicates, never gaps, and the first copy of each reading comes in order.
// Consumers drop duplicates by (agent, sensor, quantity, seq).
//
// At QoS 2 at most 10 messages are in flight: mosquitto silently drops QoS 2
// messages beyond its max_inflight_messages (20) while still completing the
// handshake.
//
// # Connection
//
// Client.Run makes the connection and remakes it 0.25 to 0.5 s after a loss,
// retrying every 0.5 s doubling to 4 s (each delay drawn from [d/2, d], so a fleet does not
// reconnect in lock-step), forever: a broker that is back is found within
// 4 s. A connection lost within 5 s of being made is most often another
// client with the same client id taking the session over (two gateways with
// one agent.id): Run then backs off 0.5 s doubling to 30 s and, after three
// such drops in a row, logs once at error what to change. It does not use paho's
// auto-reconnect, which, ahead of the batch the caller sends again, hands the
// next connection a message that was blocked in paho's Publish at the loss
// and resends the messages unacknowledged at the loss in its store's map
// order: subscribers would see readings out of order. A failure streak is logged once at warn,
// the recovery at info, and each attempt in between at debug. Paho's own
// loggers are left disabled: they are package globals of paho, and setting
// them would be process-wide state.
package mqtt
