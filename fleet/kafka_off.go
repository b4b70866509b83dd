//go:build nokafka

package fleet

import (
	"context"
	"errors"
	"log/slog"
)

// kafkaSource cannot be built without Kafka.
type kafkaSource struct{}

func newKafkaSource(KafkaConfig, *slog.Logger) (*kafkaSource, error) {
	return nil, errors.New("fleet: this kelvin was built without Kafka (-tags nokafka)")
}

func (*kafkaSource) name() string                      { return "kafka" }
func (*kafkaSource) run(context.Context, *Fleet) error { return nil }
