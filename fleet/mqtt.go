package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/kelvin-gw/kelvin/internal/mqttclient"
)

// mqttSource follows topics on a broker with a persistent QoS 1 session.
type mqttSource struct {
	cfg      MQTTConfig
	password string
	log      *slog.Logger
}

func newMQTTSource(cfg MQTTConfig, log *slog.Logger) (*mqttSource, error) {
	s := &mqttSource{cfg: cfg, log: log}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("fleet: mqtt password_file: %w", err)
		}
		s.password = strings.TrimRight(string(b), "\r\n")
	}
	return s, nil
}

func (s *mqttSource) name() string { return mqttSourceName }

// run follows the topics and hands every message to f.Handle until ctx
// is done; paho reconnects by itself and resubscribes on every connect.
func (s *mqttSource) run(ctx context.Context, f *Fleet) error {
	err := mqttclient.Run(ctx, mqttclient.Options{
		URL:                  s.cfg.URL,
		ClientID:             s.cfg.ClientID,
		Username:             s.cfg.Username,
		Password:             s.password,
		Persistent:           true,
		RetryInterval:        2 * time.Second,
		MaxReconnectInterval: 10 * time.Second,
		Topics:               s.cfg.Topics,
		Handle:               func(_ paho.Client, m paho.Message) { f.Handle(m.Topic(), m.Payload()) },
		OnSubscribed:         func() { f.setConnected(mqttSourceName, true) },
		OnLost: func(err error) {
			s.log.Warn("fleet connection lost", "url", s.cfg.URL, "err", err)
			f.setConnected(mqttSourceName, false)
		},
		Log:  s.log,
		Name: "fleet",
	})
	f.setConnected(mqttSourceName, false)
	return err
}
