package fleet

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/kelvin-gw/kelvin/reading"
)

// Bounds of the fleet's websocket.
const (
	wsQueue       = 256             // readings queued per client
	wsMaxClients  = 64              // at once; one more gets 503
	wsMaxAgents   = 200             // gateways one client may follow at once
	wsReadLimit   = 64 << 10        // bytes of one subscription message
	wsWriteTimout = 5 * time.Second // one message
)

// wsClient is one fleet page: it follows the gateways it subscribed to
// (those on its screen), never the whole fleet.
type wsClient struct {
	send   chan []byte
	kicked chan struct{}
	once   sync.Once
	agents map[string]bool // guarded by hub.mu
}

func (c *wsClient) kick() { c.once.Do(func() { close(c.kicked) }) }

// hub hands readings to the clients following their gateway, without ever
// blocking on one: a client whose queue is full is dropped.
type hub struct {
	log     *slog.Logger
	mu      sync.RWMutex
	all     map[*wsClient]bool
	byAgent map[string]map[*wsClient]bool
	done    chan struct{} // closed by close: clients get StatusGoingAway
	once    sync.Once
}

// close ends every client's stream with StatusGoingAway.
func (h *hub) close() { h.once.Do(func() { close(h.done) }) }

func newHub(log *slog.Logger) *hub {
	return &hub{log: log, all: map[*wsClient]bool{}, byAgent: map[string]map[*wsClient]bool{}, done: make(chan struct{})}
}

func (h *hub) clients() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.all)
}

// publish sends r to the clients following r.Agent; it is encoded once,
// and only when someone follows.
func (h *hub) publish(r *reading.Reading) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	cs := h.byAgent[r.Agent]
	if len(cs) == 0 {
		return
	}
	msg := r.AppendJSON(make([]byte, 0, 192))
	for c := range cs {
		select {
		case c.send <- msg:
		default:
			c.kick()
		}
	}
}

// subscribe replaces the gateways c follows.
func (h *hub) subscribe(c *wsClient, agents []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for a := range c.agents {
		delete(h.byAgent[a], c)
		if len(h.byAgent[a]) == 0 {
			delete(h.byAgent, a)
		}
	}
	c.agents = map[string]bool{}
	for _, a := range agents[:min(len(agents), wsMaxAgents)] {
		c.agents[a] = true
		if h.byAgent[a] == nil {
			h.byAgent[a] = map[*wsClient]bool{}
		}
		h.byAgent[a][c] = true
	}
}

func (h *hub) join(c *wsClient) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.all) >= wsMaxClients {
		return false
	}
	h.all[c] = true
	return true
}

func (h *hub) leave(c *wsClient) {
	h.subscribe(c, nil)
	h.mu.Lock()
	delete(h.all, c)
	h.mu.Unlock()
}

// serveWS streams readings to one page. The page sends
// {"agents":["gw-1","gw-2"]} whenever what it shows changes; it gets one
// reading (Kelvin's JSON) per message.
func (h *hub) serveWS(w http.ResponseWriter, r *http.Request) {
	c := &wsClient{send: make(chan []byte, wsQueue), kicked: make(chan struct{})}
	if !h.join(c) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "fleet: too many websocket clients", http.StatusServiceUnavailable)
		return
	}
	defer h.leave(c)
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(wsReadLimit)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			_, b, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var sub struct {
				Agents []string `json:"agents"`
			}
			if json.Unmarshal(b, &sub) == nil {
				h.subscribe(c, sub.Agents)
			}
		}
	}()
	defer func() { cancel(); <-readDone }()
	for {
		select {
		case msg := <-c.send:
			wctx, wcancel := context.WithTimeout(ctx, wsWriteTimout)
			err := conn.Write(wctx, websocket.MessageText, msg)
			wcancel()
			if err != nil {
				return
			}
		case <-c.kicked:
			// It would not read a close frame behind its queue either:
			// end the connection at once.
			h.log.Info("fleet websocket client too slow, dropped", "queue_readings", wsQueue)
			return
		case <-readDone:
			return
		case <-h.done:
			conn.Close(websocket.StatusGoingAway, "fleet stopping")
			return
		}
	}
}
