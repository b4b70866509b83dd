package httpui

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// client is one websocket client of the hub.
type client struct {
	send   chan []byte   // readings' JSON, bounded; never closed
	kicked chan struct{} // closed when the client is dropped for being slow
	once   sync.Once
	drop   context.CancelFunc // ends the connection at once; nil before the handshake
}

func (c *client) kick() { c.once.Do(func() { close(c.kicked) }) }

// Clients returns the number of websocket clients currently receiving
// readings. A client dropped for being too slow stops counting at once,
// while its connection is closed within the write timeout.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// broadcast hands msg to every client without blocking, dropping the
// clients whose queue is full.
func (s *Server) broadcast(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slow := false
	for _, c := range s.clients {
		select {
		case c.send <- msg:
		default:
			c.kick()
			slow = true
		}
	}
	if slow {
		s.clients = slices.DeleteFunc(s.clients, func(c *client) bool {
			select {
			case <-c.kicked:
				return true
			default:
				return false
			}
		})
	}
}

// join counts a new /ws handler, and adds its client to the hub. It
// answers 503 (and returns false) when MaxClients handlers run already or
// shutdown has begun.
func (s *Server) join(w http.ResponseWriter, c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.goingAway:
		http.Error(w, "httpui: shutting down", http.StatusServiceUnavailable)
		return false
	default:
	}
	if len(s.conns) >= s.cfg.MaxClients {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "httpui: too many websocket clients", http.StatusServiceUnavailable)
		return false
	}
	s.wsWG.Add(1) // before shutdown's Wait: goingAway is not closed yet
	s.conns[c] = struct{}{}
	s.clients = append(s.clients, c)
	return true
}

// leave undoes join once the handler is done.
func (s *Server) leave(c *client) {
	s.mu.Lock()
	if i := slices.Index(s.clients, c); i >= 0 {
		s.clients = slices.Delete(s.clients, i, i+1)
	}
	delete(s.conns, c)
	s.mu.Unlock()
	s.wsWG.Done()
}

// setDrop records how to end c's connection at once, and does so right
// away if shutdown is already dropping connections.
func (s *Server) setDrop(c *client, drop context.CancelFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.drop = drop
	if s.killed {
		drop()
	}
}

// shutdownWS closes the websocket clients with StatusGoingAway, dropping
// them at once when ctx is done first, and waits for their handlers.
func (s *Server) shutdownWS(ctx context.Context) {
	s.mu.Lock()
	select {
	case <-s.goingAway:
	default:
		close(s.goingAway) // no join, so no wsWG.Add, after this
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wsWG.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.killed = true
	for c := range s.conns {
		if c.drop != nil {
			c.drop()
		}
	}
	s.mu.Unlock()
	<-done // every handler returns promptly once its connection is closed
}

// serveWS upgrades to a websocket and streams readings until the client
// goes away, is too slow, or the server shuts down.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	// Join the hub before the handshake completes, so that every reading
	// published after the browser sees the socket open reaches it.
	c := &client{send: make(chan []byte, s.queueLen), kicked: make(chan struct{})}
	if !s.join(w, c) {
		return
	}
	defer s.leave(c)

	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.cfg.AllowedOrigins})
	if err != nil {
		// Accept has answered (403 for a foreign Origin, 400/426 for a bad
		// handshake).
		s.log.Debug("websocket refused", "remote_addr", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	defer conn.CloseNow()
	log := s.log.With("remote_addr", r.RemoteAddr)
	log.Debug("websocket client connected")

	// The client never needs to send: read and discard, which also answers
	// pings and the close handshake. Cancelling ctx drops the connection.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.setDrop(c, cancel)
	conn.SetReadLimit(clientReadLimit)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				return
			}
		}
	}()
	defer func() { cancel(); <-readDone }()

	// Each write is bounded by a watchdog that drops the connection, rather
	// than by a context deadline: that would cost several allocations per
	// message and client.
	watchdog := time.AfterFunc(time.Hour, cancel)
	watchdog.Stop()
	defer watchdog.Stop()
	for {
		// A dropped client is closed before anything else, even with
		// readings still queued.
		select {
		case <-c.kicked:
			log.Info("websocket client too slow, dropped", "queue_readings", s.queueLen)
			s.closeConn(conn, cancel, websocket.StatusPolicyViolation, "too slow")
			return
		default:
		}
		select {
		case msg := <-c.send:
			watchdog.Reset(s.writeTimeout)
			err := conn.Write(context.Background(), websocket.MessageText, msg)
			watchdog.Stop()
			if err != nil {
				log.Debug("websocket write failed", "err", err)
				return
			}
		case <-c.kicked:
			// Handled at the top of the loop.
		case <-readDone:
			log.Debug("websocket client gone")
			return
		case <-s.goingAway:
			s.closeConn(conn, cancel, websocket.StatusGoingAway, "agent shutting down")
			return
		}
	}
}

// closeConn closes conn with a close frame, waiting at most the write
// timeout for the frame to go out and the client to answer; drop (which
// ends the connection's reads) cuts it short after that.
func (s *Server) closeConn(conn *websocket.Conn, drop context.CancelFunc, code websocket.StatusCode, reason string) {
	t := time.AfterFunc(s.writeTimeout, drop)
	defer t.Stop()
	conn.Close(code, reason)
}
