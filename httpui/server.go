package httpui

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// Timeouts of the HTTP server and of every websocket write.
const (
	readHeaderTimeout = 5 * time.Second
	// readTimeout bounds reading a whole request, body included: a client
	// that trickles a POST body holds its connection this long at most.
	readTimeout = 30 * time.Second
	// A websocket client is pinged when it has been connected this long
	// since the last ping, and dropped when the pong takes longer than
	// pingTimeout: a client that never reads cannot keep its slot.
	pingInterval    = 30 * time.Second
	pingTimeout     = 10 * time.Second
	idleTimeout     = 60 * time.Second
	writeTimeout    = 5 * time.Second // one websocket message
	shutdownTimeout = 3 * time.Second
	clientReadLimit = 1024 // bytes of one message from a websocket client
	// hubBytes bounds the recent readings' JSON kept for the websocket
	// clients, all of them together (about 11,000 readings): a burst up
	// to this size reaches every client that keeps reading; one that falls
	// further behind skips readings and is told so.
	hubBytes = 2 << 20
	wsBatch  = 256 // messages a client takes from the hub at once
)

// SensorStatus is one sensor's state as shown on the page.
type SensorStatus struct {
	ID              string    `json:"id"`
	Type            string    `json:"type"`
	Quantities      []string  `json:"quantities"`
	State           string    `json:"state"`            // "starting", "ok" or "faulty"
	Reason          string    `json:"reason,omitempty"` // sensors.Reason of the last error: "crc", "no_device", …
	Error           string    `json:"error,omitempty"`  // the last error message
	IntervalSeconds float64   `json:"interval_seconds"` // read interval, s
	LastReading     time.Time `json:"last_reading,omitzero"`
	Reads           uint64    `json:"reads"`  // successful reads
	Errors          uint64    `json:"errors"` // failed reads
	// ErrorsByReason counts the failed reads by sensors.Reason.
	ErrorsByReason map[string]uint64 `json:"errors_by_reason,omitempty"`
}

// Status is the agent's state served at /api/status. The agent fills
// everything but Clients (and Now, when left zero), which the server sets.
type Status struct {
	Agent   string           `json:"agent"`
	Version string           `json:"version"`
	Started time.Time        `json:"started"`
	Now     time.Time        `json:"now"`
	Sensors []SensorStatus   `json:"sensors"`
	Outputs []publish.Status `json:"outputs"`
	// Inputs are the connections readings come in by (the MQTT input).
	Inputs []publish.Status `json:"inputs,omitempty"`
	Buffer *BufferStatus    `json:"buffer,omitempty"`
	// ClockSynced is false while the wall clock is not synchronised
	// (readings are then marked "clock":"unsynced").
	ClockSynced bool `json:"clock_synced"`
	// Notices are conditions that slow or degrade the agent without
	// stopping it, one sentence each for the page (a 1-Wire bus read
	// without bulk conversion, and why).
	Notices []string `json:"notices,omitempty"`
	Clients int      `json:"websocket_clients"` // filled by the server itself
}

// BufferStatus is the durable buffer's use of the disk, shown in the page's
// status strip. Per-hour figures are averages since the agent started; the
// last-24-hour figures are what the storage pays per day now (the page
// shows those once the agent has run a day, the totals before).
type BufferStatus struct {
	Bytes             int64   `json:"bytes"`     // on disk now
	MaxBytes          int64   `json:"max_bytes"` // the budget
	Dropped           uint64  `json:"dropped"`   // readings dropped when full or too old
	Refused           uint64  `json:"refused"`   // readings refused (full: block_newest)
	Corrupt           uint64  `json:"corrupt"`   // corrupt records skipped or torn tails cut
	FsyncsPerHour     float64 `json:"fsyncs_per_hour"`
	BytesWrittenPerHr float64 `json:"bytes_written_per_hour"`
	// Refusing is why the buffer refuses new readings (a full disk, or a
	// full budget with full: block_newest); empty while it takes them.
	Refusing     string `json:"refusing,omitempty"`
	Fsyncs       uint64 `json:"fsyncs"`        // since the start
	BytesWritten uint64 `json:"bytes_written"` // since the start
	// FsyncsLastDay and BytesWrittenLastDay count the last 24 hours (the
	// current hour so far and the 23 before it), the totals while the
	// agent is younger.
	FsyncsLastDay       uint64 `json:"fsyncs_last_24h"`
	BytesWrittenLastDay uint64 `json:"bytes_written_last_24h"`
	// Forwarded counts the readings of other agents stored since the start
	// (fleet.forward: buffer.Log.AppendForwarded).
	Forwarded uint64 `json:"forwarded"`
	// OnDisk is the number of readings on disk that an output has not
	// acknowledged yet: 0 with HotTail means "in memory, nothing pending".
	OnDisk int64 `json:"on_disk"`
	// HotTail: the newest readings wait in memory (buffer.hot_dir), and
	// only what the outputs do not acknowledge in time is written to disk.
	HotTail bool `json:"hot_tail"`
	// DiskFull: the buffer's last write to disk failed for lack of space;
	// readings are refused, or kept in memory only, until space returns.
	// The agent is not ready while it is true.
	DiskFull bool `json:"disk_full"`
	// HotBytes is what the hot tail holds in its tmpfs; HotFull: it is at
	// its bound (buffer.hot_max_bytes) or the tmpfs is full, so new
	// readings are written to disk until it has room.
	HotBytes int64 `json:"hot_bytes"`
	HotFull  bool  `json:"hot_full"`
}

// Server is the live page: the history ring, the websocket hub and the
// HTTP handlers. Its methods are safe for concurrent use; Run or Serve is
// called at most once.
type Server struct {
	cfg    Config
	status func() Status
	now    func() time.Time
	log    *slog.Logger

	assets      map[string]*asset
	history     *history
	archive     History    // nil: no long history
	ingest      IngestFunc // nil: POST /api/ingest answers 404
	ingestStats ingestStats
	handler     http.Handler
	names       []string // host names of this machine (localNames); tests set them
	guardStats  guardStats
	mux         *http.ServeMux      // behind the access control; Mount adds to it
	metricsFrom []func(w io.Writer) // AddMetrics

	// Websocket hub.
	writeTimeout    time.Duration // per message and per close; tests shorten it
	shutdownTimeout time.Duration
	readTimeout     time.Duration
	pingInterval    time.Duration
	pingTimeout     time.Duration
	listener        atomic.Pointer[limitListener] // set by Serve
	hubBytes        int                           // bound of hub; tests shrink it
	wsSkipped       atomic.Uint64
	wsPingDrops     atomic.Uint64
	mu              sync.Mutex
	hub             hubLog
	clients         []*client            // receiving readings
	conns           map[*client]struct{} // every /ws handler running, counted against MaxClients
	goingAway       chan struct{}        // closed when shutdown starts: clients get StatusGoingAway
	killed          bool                 // shutdown timed out: connections are dropped at once
	wsWG            sync.WaitGroup       // /ws handlers
}

// New returns a server configured by cfg (to which it applies SetDefaults;
// an empty Listen only matters to Run). status is called for every
// /api/status request and must be cheap and safe for concurrent use; nil
// serves an empty Status. now is the clock (nil: wallclock.Now) and log the
// logger (nil: discard).
func New(cfg Config, status func() Status, now func() time.Time, log *slog.Logger) *Server {
	cfg.SetDefaults()
	if status == nil {
		status = func() Status { return Status{} }
	}
	if now == nil {
		now = wallclock.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	assets, err := loadAssets()
	if err != nil {
		panic(err) // the files are embedded: cannot happen in a built binary
	}
	s := &Server{
		cfg:             cfg,
		status:          status,
		now:             now,
		log:             log,
		assets:          assets,
		history:         newHistory(cfg.History, cfg.HistoryMax, int64(cfg.HistoryBytes)),
		writeTimeout:    writeTimeout,
		shutdownTimeout: shutdownTimeout,
		readTimeout:     readTimeout,
		pingInterval:    pingInterval,
		pingTimeout:     pingTimeout,
		hubBytes:        hubBytes,
		conns:           make(map[*client]struct{}),
		goingAway:       make(chan struct{}),
		names:           localNames(),
	}

	mux := http.NewServeMux()
	for p, a := range assets {
		if p == "/" {
			p = "/{$}"
			mux.Handle("GET /index.html", a) // what a bookmark or a proxy may ask for
		}
		mux.Handle("GET "+p, a)
	}
	mux.HandleFunc("GET /ws", s.serveWS)
	mux.HandleFunc("GET /api/readings", s.serveReadings)
	mux.HandleFunc("GET /api/status", s.serveStatus)
	mux.HandleFunc("GET /api/history", s.serveHistory)
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	s.mux = mux
	// /healthz says only that the process serves: probes get it without
	// credentials.
	outer := http.NewServeMux()
	outer.HandleFunc("GET /healthz", s.serveHealthz)
	// Devices may push with their own token (http.ingest_token_file)
	// or with the page's credentials.
	outer.Handle("POST /api/ingest", cfg.authorizeIngest(http.HandlerFunc(s.serveIngest)))
	outer.Handle("/", cfg.authorize(mux))
	s.handler = s.guard(outer)
	return s
}

// Handler returns the HTTP handler serving the page, /ws and /api/, for
// tests and for embedding in another server. Websocket clients served
// through it are closed by Run's or Serve's shutdown only, and the
// connection caps and read timeout are Serve's: another server sets its
// own.
func (s *Server) Handler() http.Handler { return s.handler }

// Publish records r in the history and sends it to every websocket client.
// It never blocks on a client: r is marshalled once into the hub's log,
// whatever the number of clients, and each client's handler writes it
// from there. Safe for concurrent use.
//
// A reading whose value is not finite (NaN, ±Inf: never a measurement) is
// left out of the page and its API altogether, so that no JSON the server
// writes can carry one.
func (s *Server) Publish(r reading.Reading) {
	if !isFinite(r.Value) {
		s.log.Debug("reading with a non-finite value left off the page", "sensor", r.Sensor, "quantity", r.Quantity)
		return
	}
	s.history.add(r, s.now())
	s.broadcast(r)
}

// Run listens on cfg.Listen and serves until ctx is done, then shuts down:
// websocket clients are closed with StatusGoingAway and everything is
// closed after at most 3 s. It returns nil on cancellation, at once when
// Listen is empty, and an error when it cannot listen, such as
// "httpui: listen :8080: address already in use".
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.Listen == "" {
		return nil
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("httpui: listen %s: %w", s.cfg.Listen, listenCause(err))
	}
	return s.Serve(ctx, l)
}

// listenCause strips the "listen tcp" and "bind" layers from a listen error
// so the message reads "address already in use"; errors.Is still sees the
// errno.
func listenCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
		var se *os.SyscallError
		if errors.As(err, &se) && se.Err != nil {
			err = se.Err
		}
	}
	return err
}

// Serve is Run on an existing listener, which it closes. Tests use
// 127.0.0.1:0. It serves at most Config.MaxConnections connections at
// once, Config.MaxConnectionsPerAddress from one address.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ll := newLimitListener(l, s.cfg.MaxConnections, s.cfg.MaxConnectionsPerAddress)
	s.listener.Store(ll)
	l = ll
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       s.readTimeout, // a hijacked websocket is free of it; pings bound it
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		// No WriteTimeout: websocket connections live long; every websocket
		// write has its own timeout instead.
	}
	scheme := "http"
	if sec := s.cfg.secrets; sec != nil && sec.cert != nil {
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{*sec.cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	s.log.Info("serving the live page", "addr", l.Addr().String(), "scheme", scheme)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
		defer cancel()
		s.shutdownWS(sctx)
		return fmt.Errorf("httpui: serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.shutdownWS(sctx) })
	err := srv.Shutdown(sctx)
	wg.Wait()
	if err != nil {
		srv.Close()
		s.log.Warn("live page shut down forcibly", "err", err)
	}
	<-errc // http.ErrServerClosed
	return nil
}

// serveReadings answers GET /api/readings[?sensor=ID]: the history as a
// JSON array, series by series (by sensor, then quantity), each oldest
// first. It is streamed: a request holds one series' readings and a chunk
// of output at a time, whatever the number of sensors, and each chunk must
// be taken by the client within the write timeout.
func (s *Server) serveReadings(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	keys := s.history.keys(r.URL.Query().Get("sensor"))
	h := w.Header()
	// The page sizes its charts and its memory by these.
	h.Set("X-Kelvin-History-Seconds", strconv.FormatFloat(s.cfg.History.Seconds(), 'f', -1, 64))
	h.Set("X-Kelvin-History-Max", strconv.Itoa(s.history.perSeries()))
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding")
	gz := acceptsGzip(r)
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	var out io.Writer = w
	var zw *gzip.Writer
	if gz {
		zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
		out = zw
	}
	failed := false
	flush := func(b []byte) []byte {
		if failed || len(b) == 0 {
			return b[:0]
		}
		rc.SetWriteDeadline(time.Now().Add(s.writeTimeout)) // a stalled client cannot hold the request
		if _, err := out.Write(b); err != nil {
			failed = true
		}
		return b[:0]
	}
	const chunk = 32 << 10
	b := make([]byte, 0, chunk+512)
	b = append(b, '[')
	var rs []reading.Reading
	first := true
	for _, k := range keys {
		rs = s.history.appendSeries(rs[:0], k, now)
		for i := range rs {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = rs[i].AppendJSON(b)
			if len(b) >= chunk {
				b = flush(b)
			}
		}
		if failed {
			return
		}
	}
	b = append(b, ']', '\n')
	flush(b)
	if zw != nil && !failed {
		zw.Close()
	}
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	st := s.status()
	if st.Now.IsZero() {
		st.Now = s.now()
	}
	st.Clients = s.Clients()
	if st.Sensors == nil {
		st.Sensors = []SensorStatus{}
	}
	if st.Outputs == nil {
		st.Outputs = []publish.Status{}
	}
	for i := range st.Sensors {
		if st.Sensors[i].Quantities == nil {
			// Copy before the first change: the slice may be the agent's.
			st.Sensors = append([]SensorStatus(nil), st.Sensors...)
			for j := range st.Sensors[i:] {
				if st.Sensors[i+j].Quantities == nil {
					st.Sensors[i+j].Quantities = []string{}
				}
			}
			break
		}
	}
	finiteStatus(&st)
	b, err := json.Marshal(st)
	if err != nil {
		s.log.Error("marshal status", "err", err)
		http.Error(w, "httpui: marshal status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, r, append(b, '\n'))
}

// finiteStatus replaces the non-finite numbers of st (which JSON cannot
// carry) with 0, copying what it changes: the slices and the buffer status
// may be the agent's.
func finiteStatus(st *Status) {
	for i := range st.Sensors {
		if !isFinite(st.Sensors[i].IntervalSeconds) {
			st.Sensors = slices.Clone(st.Sensors)
			for j := range st.Sensors[i:] {
				st.Sensors[i+j].IntervalSeconds = finiteOr0(st.Sensors[i+j].IntervalSeconds)
			}
			break
		}
	}
	if b := st.Buffer; b != nil && (!isFinite(b.FsyncsPerHour) || !isFinite(b.BytesWrittenPerHr)) {
		c := *b
		c.FsyncsPerHour, c.BytesWrittenPerHr = finiteOr0(c.FsyncsPerHour), finiteOr0(c.BytesWrittenPerHr)
		st.Buffer = &c
	}
}

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func finiteOr0(f float64) float64 {
	if isFinite(f) {
		return f
	}
	return 0
}

// writeJSON writes b as a JSON response that is never cached, gzipped
// when large and accepted.
func writeJSON(w http.ResponseWriter, r *http.Request, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding")
	if len(b) >= 1024 && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		if r.Method == http.MethodHead {
			return
		}
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		zw.Write(b)
		zw.Close()
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}
