// Package publish moves readings from a Source (the durable buffer, or a
// bounded in-memory queue) to an Output (an MQTT broker, a Kafka cluster).
// The outputs themselves live in sub-packages (publish/mqtt, publish/kafka);
// this package holds the interfaces they meet and the forwarding loop that
// retries a batch until the output acknowledged it.
package publish

import (
	"context"
	"time"

	"github.com/kelvin-gw/kelvin/reading"
)

// Output is a destination for readings.
type Output interface {
	// Name identifies the output in logs, status and cursors ("mqtt", "kafka").
	Name() string
	// Publish sends batch, in order, and returns nil only once the remote
	// side acknowledged every reading of it (as far as the configured
	// delivery level allows: MQTT QoS 0 is acknowledged when written).
	// On error nothing about the batch is assumed delivered: the caller
	// sends it again, so the output may deliver duplicates but never gaps.
	// It returns ctx.Err() when ctx is done first. Publish is called from
	// one goroutine at a time.
	Publish(ctx context.Context, batch []reading.Reading) error
	// Status reports the output's state; safe for concurrent use.
	Status() Status
}

// Source yields the readings an output has yet to deliver, oldest first.
type Source interface {
	// Next blocks until at least one reading is pending or ctx is done, and
	// returns up to max of the oldest pending readings, starting after the
	// last acknowledged one. Calling Next again without Ack returns the
	// same readings (or, for a lossy queue, what is left of them).
	Next(ctx context.Context, max int) ([]reading.Reading, error)
	// Ack marks the first n readings returned by the last Next as
	// delivered; they are never returned again.
	Ack(n int) error
}

// Status is a snapshot of an output's health, shown on the page, in the API
// and in metrics.
type Status struct {
	Name      string `json:"name"`
	URL       string `json:"url,omitempty"`
	State     string `json:"state"` // "connecting", "connected", "disconnected" or "failed"
	Connected bool   `json:"connected"`
	Sent      uint64 `json:"sent"`    // readings acknowledged by the remote side
	Bytes     uint64 `json:"bytes"`   // payload bytes acknowledged
	Dropped   uint64 `json:"dropped"` // readings lost on the way (queue overflow)
	Backlog   int    `json:"backlog"` // readings waiting to be sent
	// OldestUnsent is the time of the oldest reading waiting, when known
	// (the agent fills it from the buffer).
	OldestUnsent time.Time `json:"oldest_unsent,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	ErrorTime    time.Time `json:"last_error_time,omitzero"`
	// Restarts counts how often the agent restarted the output (or input)
	// after it failed ("failed" is its State until the restart).
	Restarts uint64 `json:"restarts,omitempty"`
}
