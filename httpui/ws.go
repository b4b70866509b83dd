package httpui

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"github.com/kelvin-gw/kelvin/reading"
)

// client is one websocket client of the hub.
type client struct {
	wake chan struct{}      // capacity 1: the hub has messages past next
	next uint64             // the hub sequence number of the next message to send; guarded by Server.mu
	drop context.CancelFunc // ends the connection at once; nil before the handshake
}

// hubLog is the recent readings' JSON, shared by every client: each client
// keeps only its position in it, so a burst costs its bytes once, not once
// per client. It holds at most maxBytes (and always the newest message); a
// client that falls behind its start skips the readings in between.
type hubLog struct {
	msgs  [][]byte // a ring: msgs[(head+i)%len(msgs)] has sequence number first+i
	head  int
	n     int
	first uint64
	bytes int
}

// end returns the sequence number the next message will get.
func (l *hubLog) end() uint64 { return l.first + uint64(l.n) }

// append adds msg, dropping the oldest messages beyond maxBytes (counted
// by capacity: what they hold on the heap).
func (l *hubLog) append(msg []byte, maxBytes int) {
	for l.n > 0 && l.bytes+cap(msg) > maxBytes {
		l.bytes -= cap(l.msgs[l.head])
		l.msgs[l.head] = nil
		l.head = (l.head + 1) % len(l.msgs)
		l.n--
		l.first++
	}
	if l.n == len(l.msgs) {
		nm := make([][]byte, max(64, 2*len(l.msgs)))
		for i := range l.n {
			nm[i] = l.msgs[(l.head+i)%len(l.msgs)]
		}
		l.msgs, l.head = nm, 0
	}
	l.msgs[(l.head+l.n)%len(l.msgs)] = msg
	l.n++
	l.bytes += cap(msg)
}

// take appends to batch up to max messages from c's position on and moves
// c past them. skipped is how many messages c missed: they left the log
// before c got to them.
func (s *Server) take(c *client, batch [][]byte, maxMsgs int) (out [][]byte, skipped uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := &s.hub
	if c.next < l.first {
		skipped = l.first - c.next
		c.next = l.first
	}
	for ; c.next < l.end() && len(batch) < maxMsgs; c.next++ {
		batch = append(batch, l.msgs[(l.head+int(c.next-l.first))%len(l.msgs)])
	}
	return batch, skipped
}

// Clients returns the number of websocket clients currently receiving
// readings.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// broadcast adds r's JSON to the hub's log and wakes every client, without
// blocking on any. Without a client it does nothing: no encoding, no
// allocation, for the page nobody has open.
func (s *Server) broadcast(r reading.Reading) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.clients) == 0 {
		return // a client that joins starts after the newest message anyway (join)
	}
	s.hub.append(r.AppendJSON(make([]byte, 0, 192)), s.hubBytes)
	for _, c := range s.clients {
		select {
		case c.wake <- struct{}{}:
		default: // already awake
		}
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
	c.next = s.hub.end()
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
// goes away, stops taking them for longer than the write timeout, or the
// server shuts down. A client that falls behind the hub's log is sent
// {"skipped":N} and goes on with the readings still there.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	// Join the hub before the handshake completes, so that every reading
	// published after the browser sees the socket open reaches it.
	c := &client{wake: make(chan struct{}, 1)}
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
	go s.ping(ctx, conn, cancel)

	// Each write is bounded by a watchdog that drops the connection, rather
	// than by a context deadline: that would cost several allocations per
	// message and client.
	watchdog := time.AfterFunc(time.Hour, cancel)
	watchdog.Stop()
	defer watchdog.Stop()
	write := func(msg []byte) bool {
		watchdog.Reset(s.writeTimeout)
		err := conn.Write(context.Background(), websocket.MessageText, msg)
		watchdog.Stop()
		if err != nil {
			log.Debug("websocket write failed", "err", err)
			return false
		}
		return true
	}
	var batch [][]byte
	for {
		select {
		case <-c.wake:
		case <-readDone:
			log.Debug("websocket client gone")
			return
		case <-s.goingAway:
			s.closeConn(conn, cancel, websocket.StatusGoingAway, "agent shutting down")
			return
		}
		for {
			var skipped uint64
			batch, skipped = s.take(c, batch[:0], wsBatch)
			if skipped > 0 {
				s.wsSkipped.Add(skipped)
				log.Debug("websocket client fell behind, readings skipped", "readings", skipped)
				if !write(append(strconv.AppendUint([]byte(`{"skipped":`), skipped, 10), '}')) {
					return
				}
			}
			if len(batch) == 0 {
				break
			}
			for i, msg := range batch {
				batch[i] = nil
				if !write(msg) {
					return
				}
			}
			select {
			case <-s.goingAway:
				s.closeConn(conn, cancel, websocket.StatusGoingAway, "agent shutting down")
				return
			default:
			}
		}
	}
}

// ping pings conn every pingInterval until ctx is done, and drops it
// (cancel) when a pong takes longer than pingTimeout: a client that never
// reads, or is gone without a word, does not hold its slot for good.
func (s *Server) ping(ctx context.Context, conn *websocket.Conn, drop context.CancelFunc) {
	t := time.NewTicker(s.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, s.pingTimeout)
		err := conn.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.wsPingDrops.Add(1)
				s.log.Debug("websocket client did not answer a ping, dropped", "err", err)
			}
			drop()
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
