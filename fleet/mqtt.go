package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
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

func (s *mqttSource) name() string { return "mqtt" }

// run connects, subscribes and hands every message to f.Handle until ctx
// is done; paho reconnects by itself and resubscribes on every connect.
func (s *mqttSource) run(ctx context.Context, f *Fleet) error {
	filters := map[string]byte{}
	for _, t := range s.cfg.Topics {
		filters[t] = 1
	}
	handle := func(_ paho.Client, m paho.Message) { f.Handle(m.Topic(), m.Payload()) }
	var failing atomic.Int32
	opts := paho.NewClientOptions().
		AddBroker(s.cfg.URL).
		SetClientID(s.cfg.ClientID).
		SetUsername(s.cfg.Username).
		SetPassword(s.password).
		SetCleanSession(false).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(2 * time.Second).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(handle).
		SetOnConnectHandler(func(c paho.Client) {
			// paho runs this in a goroutine of its own: waiting is fine.
			tok := c.SubscribeMultiple(filters, handle)
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				s.log.Warn("fleet subscribe failed", "url", s.cfg.URL, "topics", s.cfg.Topics, "err", tok.Error())
				return
			}
			s.log.Info("fleet following", "url", s.cfg.URL, "topics", s.cfg.Topics)
			f.setConnected("mqtt", true)
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.log.Warn("fleet connection lost", "url", s.cfg.URL, "err", err)
			f.setConnected("mqtt", false)
		}).
		SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
			// Say why the page stays empty: the first failed attempt of
			// a streak at warn, the retries at debug.
			switch n := n.(type) {
			case paho.ConnectionNotificationFailed:
				if failing.Add(1) == 1 {
					s.log.Warn("fleet cannot connect to the broker, retrying", "url", s.cfg.URL, "err", n.Reason)
				} else {
					s.log.Debug("fleet connect retry failed", "url", s.cfg.URL, "err", n.Reason)
				}
			case paho.ConnectionNotificationConnected:
				failing.Store(0)
			}
		})
	c := paho.NewClient(opts)
	c.Connect() // retries in the background until ctx is done
	<-ctx.Done()
	c.Disconnect(250)
	f.setConnected("mqtt", false)
	return nil
}
