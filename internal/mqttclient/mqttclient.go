package mqttclient

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const (
	// keepAlive is the MQTT keep-alive (paho's default, said once here).
	keepAlive = 30 * time.Second
	// subscribeTimeout bounds the wait for the broker's SUBACK.
	subscribeTimeout = 30 * time.Second
	// quiesceMillis is how long Disconnect lets work in hand finish.
	quiesceMillis = 250
)

// Options are what a subscriber sets. The callbacks run in paho's
// goroutines and may be nil.
type Options struct {
	URL      string
	ClientID string
	// Username and Password are sent when Username is not empty.
	Username, Password string
	// Persistent keeps the session on the broker across connections
	// (clean session off), so QoS 1 messages published while the
	// subscriber was away arrive when it is back.
	Persistent bool
	// RetryInterval is the pause between connection attempts;
	// MaxReconnectInterval caps paho's back-off after a lost connection.
	RetryInterval, MaxReconnectInterval time.Duration
	// Topics are the filters, subscribed at QoS 1 on every connection.
	Topics []string
	// Handle gets every message, also those a persistent session
	// delivers before its subscription is renewed.
	Handle paho.MessageHandler
	// Dial opens the connection; nil is paho's dialer.
	Dial paho.OpenConnectionFunc
	// OnConnect is called when a connection is made, before subscribing;
	// OnSubscribed once its subscription holds; OnLost when a connection
	// is lost, with paho's reason.
	OnConnect, OnSubscribed func()
	OnLost                  func(err error)
	// Log gets the subscriber's messages, each starting with Name.
	Log  *slog.Logger
	Name string
}

// Run connects, subscribes on every connection and hands the messages to
// Handle until ctx is done, then disconnects and returns nil. paho retries
// the connection and reconnects by itself; of a streak of failed
// attempts, the first is logged at warn and the others at debug.
func Run(ctx context.Context, o Options) error {
	c := paho.NewClient(o.clientOptions())
	c.Connect() // retries in the background until ctx is done
	<-ctx.Done()
	c.Disconnect(quiesceMillis)
	return nil
}

func (o Options) clientOptions() *paho.ClientOptions {
	filters := make(map[string]byte, len(o.Topics))
	for _, t := range o.Topics {
		filters[t] = 1
	}
	var failing atomic.Int32
	co := paho.NewClientOptions().
		AddBroker(o.URL).
		SetClientID(o.ClientID).
		SetCleanSession(!o.Persistent).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(o.RetryInterval).
		SetMaxReconnectInterval(o.MaxReconnectInterval).
		SetKeepAlive(keepAlive).
		SetOrderMatters(true).
		SetDefaultPublishHandler(o.Handle).
		SetOnConnectHandler(func(c paho.Client) {
			if o.OnConnect != nil {
				o.OnConnect()
			}
			// paho runs this in a goroutine of its own: waiting is fine.
			tok := c.SubscribeMultiple(filters, o.Handle)
			err := fmt.Errorf("no answer from the broker in %v", subscribeTimeout)
			if tok.WaitTimeout(subscribeTimeout) {
				err = tok.Error()
			}
			if err != nil {
				o.Log.Warn(o.Name+": subscribe failed", "url", o.URL, "topics", len(filters), "err", err)
				return
			}
			o.Log.Info(o.Name+": subscribed", "url", o.URL, "topics", len(filters))
			if o.OnSubscribed != nil {
				o.OnSubscribed()
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			if o.OnLost != nil {
				o.OnLost(err)
			}
		}).
		SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
			// Say why the subscriber is silent: the first failed
			// attempt of a streak at warn, the retries at debug.
			switch n := n.(type) {
			case paho.ConnectionNotificationFailed:
				if failing.Add(1) == 1 {
					o.Log.Warn(o.Name+": cannot connect to the broker, retrying", "url", o.URL, "err", n.Reason)
				} else {
					o.Log.Debug(o.Name+": connect retry failed", "url", o.URL, "err", n.Reason)
				}
			case paho.ConnectionNotificationConnected:
				failing.Store(0)
			}
		})
	if o.Username != "" {
		co.SetUsername(o.Username).SetPassword(o.Password)
	}
	if o.Dial != nil {
		co.SetCustomOpenConnectionFn(o.Dial)
	}
	return co
}

// Schemes names the broker URL schemes paho dials, for messages: plain
// TCP, TLS and websockets.
const Schemes = "tcp, mqtt, ssl, tls, mqtts, ws or wss"

// KnownScheme reports whether paho dials URLs of scheme (one of Schemes).
func KnownScheme(scheme string) bool {
	switch scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
		return true
	}
	return false
}

// CheckURL reports whether url is scheme://something with a known scheme.
func CheckURL(url string) error {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok || rest == "" || !KnownScheme(scheme) {
		return fmt.Errorf("%q: want scheme://host:port with scheme %s", url, Schemes)
	}
	return nil
}
