// Package kafkaauth holds what Kelvin's two Kafka clients, the output
// (publish/kafka) and the fleet's source (fleet), share about reaching a
// secured cluster: the tls and sasl config sections, their validation, the
// franz-go options built from them, and how a refusal by the cluster is
// recognised. The config half builds without Kafka (-tags nokafka); Opts
// and the errors need franz-go.
package kafkaauth
