//go:build !nokafka

package kafka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger passes the client's logs to slog, lowered: the client's errors
// are warnings for Kelvin (the output degrades, the agent runs on); its
// warnings (one per failed dial or retried request, all through an outage)
// and its info messages are debug, as Status and publish.Forward already
// report failures; its debug messages are below debug.
type kgoLogger struct{ log *slog.Logger }

var _ kgo.Logger = kgoLogger{}

func slogLevel(l kgo.LogLevel) slog.Level {
	switch l {
	case kgo.LogLevelError:
		return slog.LevelWarn
	case kgo.LogLevelWarn, kgo.LogLevelInfo:
		return slog.LevelDebug
	}
	return slog.LevelDebug - 4
}

// Level returns the most verbose client level the slog handler wants.
func (l kgoLogger) Level() kgo.LogLevel {
	ctx := context.Background()
	for _, lv := range []kgo.LogLevel{kgo.LogLevelDebug, kgo.LogLevelInfo, kgo.LogLevelWarn, kgo.LogLevelError} {
		if l.log.Enabled(ctx, slogLevel(lv)) {
			return lv
		}
	}
	return kgo.LogLevelNone
}

// Log logs msg with the client's key/value pairs.
func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	l.log.Log(context.Background(), slogLevel(level), msg, keyvals...)
}
