// Package mqttclient is the paho client set-up that Kelvin's MQTT
// subscribers share, the MQTT input (ingest) and the fleet's MQTT source:
// connect, retry, subscribe again on every connection, and say in the log
// why a subscriber is silent. Each caller keeps only what differs: its
// session, its retry pace, its dialer and what it does when a connection
// is made or lost. It also says which broker URLs Kelvin's MQTT clients
// accept (CheckURL).
//
// The MQTT output (publish/mqtt) runs its own reconnection loop, without
// paho's, and is not built here.
package mqttclient
