// Package httpui serves Kelvin's live page from the agent binary itself.
//
// The page (index.html, app.js and style.css, embedded with //go:embed and
// nothing fetched from the internet; style.css is served after the colours
// and font it shares with the fleet page, internal/theme) shows one card
// per sensor and quantity with the current value, its age, the sensor's
// status and a hand-drawn canvas chart, and a header with the agent, its
// uptime and every output's state. It is fed by three endpoints:
//
//   - GET /ws: a websocket pushing every reading as its JSON wire form
//     (reading.Reading.AppendJSON), one text message per reading.
//   - GET /api/readings[?sensor=ID]: the recent history kept in memory, a
//     ring per sensor and quantity within one memory budget for all
//     (Config.HistoryBytes), as a JSON array streamed series by series,
//     each oldest first.
//   - GET /api/status: the agent's Status as JSON.
//
// The websocket hub never lets a client slow the agent down: Publish
// appends each reading, marshalled once, to one log shared by every client
// (2 MiB at most, all clients together) and wakes the clients without
// blocking; each client's handler writes from its own position in the log.
// A burst that fits the log reaches every client that keeps reading; a
// client that falls further behind is not disconnected but sent
// {"skipped":N} and goes on from the oldest reading still there (the page
// then reloads the missed window from /api/readings). Every write has a 5 s
// timeout (a client that stops reading is dropped after it), a client that
// does not answer a ping (every 30 s) within 10 s is dropped, the number of clients is capped (HTTP 503 beyond) and only the
// page's own origin (plus Config.AllowedOrigins) may connect.
//
// Every request first passes a guard: its Host must name this gateway (an
// IP address, localhost, the hostname, <hostname>.local or
// Config.AllowedHosts: DNS rebinding), and one that changes state must not
// come from another site's page by its Origin or Referer (CSRF). Clients
// that send neither header, such as curl and devices, pass. A request must
// be read whole within 30 s, and the listener keeps at most
// Config.MaxConnections open, Config.MaxConnectionsPerAddress from one
// client address.
//
// Static assets carry a content-hash ETag and Cache-Control: no-cache, so a
// browser revalidates (304) and picks up a new binary at once; they are
// gzip-compressed once at startup and sent compressed to clients that
// accept it.
package httpui
