//go:build nokafka

package kafka

import (
	"context"
	"errors"
	"log/slog"

	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// Available is false in a binary built with -tags nokafka: it leaves
// franz-go out (about 3 MiB) for gateways that only publish over MQTT.
const Available = false

var errNotBuilt = errors.New("kafka: this kelvin was built without Kafka (-tags nokafka)")

// Output is a stub in a nokafka build; New always fails.
type Output struct{}

// New fails: this binary has no Kafka client.
func New(Config, string, *slog.Logger) (*Output, error) { return nil, errNotBuilt }

func (*Output) Name() string                                     { return "kafka" }
func (*Output) Publish(context.Context, []reading.Reading) error { return errNotBuilt }
func (*Output) Status() publish.Status                           { return publish.Status{} }
func (*Output) Close()                                           {}
