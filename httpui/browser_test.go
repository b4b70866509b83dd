package httpui

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/archive"
	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/internal/wallclock"
	"github.com/kelvin-gw/kelvin/publish"
	"github.com/kelvin-gw/kelvin/reading"
)

// browser is a headless Chromium driven over the DevTools protocol
// (testenv.Browser), with the test at hand for this file's helpers.
type browser struct {
	*testenv.Browser
	t *testing.T
}

// startBrowser starts headless Chromium for the rest of the test and
// connects to its one page.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	return &browser{Browser: testenv.StartBrowser(t), t: t}
}

func (b *browser) call(method string, params any) json.RawMessage {
	b.t.Helper()
	return b.Call(method, params)
}

func (b *browser) eval(expr string, v any) {
	b.t.Helper()
	b.Eval(expr, v)
}

// pageState is what the page shows, read from its DOM.
type pageState struct {
	Agent, Version, Uptime, Link, Outputs string
	Offline                               bool
	Cards                                 map[string]cardState
	// Error is what reading the DOM threw: a page caught between two
	// renders is read again, and a page that keeps throwing shows it
	// when the wait gives up.
	Error string
}

type cardState struct {
	Class, Value, Unit, Status, Age string
	Points                          int // drawn in the chart
	Buckets                         int // of them, archive buckets
	Range, Trend                    string
}

const pageStateJS = `(() => { try {
  const $ = (id) => document.getElementById(id);
  if (!$('agent')) return null; // not loaded yet
  const cards = {};
  for (const c of document.querySelectorAll('#cards .card')) {
    const q = (sel) => c.querySelector(sel).textContent;
    cards[q('.sensor') + '/' + q('.quantity')] = {
      Class: c.className, Value: q('.value'), Unit: q('.unit'), Status: q('.status'), Age: q('.age'),
      Points: +(c.querySelector('canvas').dataset.points || -1),
      Buckets: +(c.querySelector('canvas').dataset.buckets || 0),
      Range: q('.range'), Trend: q('.trend'),
    };
  }
  return { Agent: $('agent').textContent, Version: $('version').textContent, Uptime: $('uptime').textContent,
    Link: $('link').textContent, Outputs: $('outputs').textContent, Offline: !$('offline').hidden, Cards: cards };
  } catch (e) { return { Error: String(e) }; }
})()`

// waitPage polls the page until cond holds, failing after 20 s.
func (b *browser) waitPage(what string, cond func(p pageState) bool) pageState {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var p pageState
		b.eval(pageStateJS, &p)
		if p.Error == "" && cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("page never showed %s; it shows %+v", what, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPageInChromium loads the page in headless Chromium: the header,
// outputs and one card per sensor quantity with its history drawn, the
// fault and staleness shown, live readings over the websocket, and after
// an agent restart the offline banner, the reconnection and the history
// fetched again.
func TestPageInChromium(t *testing.T) {
	b := startBrowser(t)
	now := wallclock.Now()
	status := func() Status {
		return Status{
			Agent: "greenhouse-1", Version: "v9.8.7", Started: now.Add(-2*time.Hour - time.Minute),
			Sensors: []SensorStatus{
				{ID: "air", Type: "bme280", Quantities: []string{"temperature", "humidity"}, State: "ok", IntervalSeconds: 60},
				{ID: "old", Type: "sht4x", Quantities: []string{"humidity"}, State: "ok", IntervalSeconds: 10},
				{ID: "soil", Type: "ds18b20", Quantities: []string{"temperature"}, State: "faulty", Reason: "crc", Error: "crc mismatch", IntervalSeconds: 1},
			},
			Outputs: []publish.Status{
				{Name: "mqtt", State: "connected", Connected: true},
				{Name: "kafka", State: "disconnected", Backlog: 17, OldestUnsent: now.Add(-5*time.Minute - 10*time.Second), LastError: "kafka: dial: connection refused"},
			},
			Buffer: &BufferStatus{Bytes: 2048, MaxBytes: 64 << 20, HotTail: true,
				Fsyncs: 8, FsyncsPerHour: 3.8, BytesWritten: 4096, BytesWrittenPerHr: 1950,
				FsyncsLastDay: 2, BytesWrittenLastDay: 1536},
			Notices: []string{"bulk conversion unavailable on w1_bus_master1: permission denied; readings take 3 × 750ms; see docs/hardware.md"},
		}
	}
	// The restarted agent: a minute after its start, then (once age is
	// set) three days after it.
	var age atomic.Int64
	age.Store(int64(time.Minute))
	restarted := func() Status {
		st := status()
		st.Started = wallclock.Now().Add(-time.Duration(age.Load()))
		return st
	}
	temp := func(seq int, v float64, at time.Time) reading.Reading {
		return reading.Reading{Agent: "greenhouse-1", Sensor: "air", Quantity: reading.Temperature,
			Value: v, Raw: v + 0.1, Unit: "°C", Time: at, Seq: uint64(seq)}
	}
	s := New(Config{}, status, nil, nil)
	for i := range 120 {
		at := now.Add(time.Duration(i-120) * time.Second)
		s.Publish(temp(i+1, 20+float64(i)/100, at))
		s.Publish(reading.Reading{Agent: "greenhouse-1", Sensor: "air", Quantity: reading.Humidity,
			Value: 40, Raw: 41, Unit: "%RH", Time: at, Seq: uint64(i + 1)})
	}
	s.Publish(reading.Reading{Agent: "greenhouse-1", Sensor: "old", Quantity: reading.Humidity,
		Value: 55, Raw: 55, Unit: "%RH", Time: now.Add(-10 * time.Minute), Seq: 1})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	stop := serveOn(t, s, l)

	b.call("Page.navigate", map[string]any{"url": "http://" + addr + "/"})
	p := b.waitPage("the history", func(p pageState) bool {
		return p.Link == "live" && p.Cards["air/temperature"].Points == 120 && p.Cards["air/humidity"].Points == 120
	})
	if p.Agent != "greenhouse-1" || p.Version != "v9.8.7" || p.Uptime != "2 h 1 min" || p.Offline {
		t.Errorf("header: %+v", p)
	}
	if want := "mqttconnectedkafkadisconnected · backlog 17, oldest 5 min agokafka: dial: connection refused" +
		"buffer2.0 KiB of 64.0 MiBin memory, nothing pending8 fsyncs · 4.0 KiB written since start" +
		"noticebulk conversion unavailable on w1_bus_master1: permission denied; readings take 3 × 750ms; see docs/hardware.md"; p.Outputs != want {
		t.Errorf("outputs: %q, want %q", p.Outputs, want)
	}
	for key, want := range map[string]cardState{
		"air/temperature":  {Class: "card ok", Value: "21.19", Unit: "°C", Status: "ok", Points: 120},
		"air/humidity":     {Class: "card ok", Value: "40.0", Unit: "%RH", Status: "ok", Points: 120},
		"old/humidity":     {Class: "card stale", Value: "55.0", Unit: "%RH", Status: "stale", Age: "10 min ago", Points: 1},
		"soil/temperature": {Class: "card faulty", Value: "–", Unit: "°C", Status: "faulty: crc", Points: 0},
	} {
		got := p.Cards[key]
		if key[0] == 'a' {
			want.Age = got.Age // seconds, depends on the machine's speed
		}
		want.Range, want.Trend = got.Range, got.Trend // TestPageLongHistoryInChromium checks them
		if got != want {
			t.Errorf("card %s: %+v, want %+v", key, got, want)
		}
	}
	if len(p.Cards) != 4 {
		t.Errorf("%d cards, want 4: %v", len(p.Cards), p.Cards)
	}

	// Live: a reading pushed over the websocket shows at once.
	s.Publish(temp(121, 23.456, wallclock.Now()))
	b.waitPage("the pushed reading", func(p pageState) bool {
		c := p.Cards["air/temperature"]
		return c.Value == "23.46" && c.Points == 121
	})

	// The agent restarts: the page goes offline, then reconnects to the
	// new one and fetches its history, which has a reading published
	// while the page was away.
	stop()
	b.waitPage("the offline banner", func(p pageState) bool { return p.Offline && p.Link == "offline" })
	s2 := New(Config{}, restarted, nil, nil)
	s2.Publish(temp(121, 23.456, wallclock.Now().Add(-time.Second)))
	s2.Publish(temp(122, 24.5, wallclock.Now()))
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, s2, l2)
	p = b.waitPage("the reconnection", func(p pageState) bool {
		return !p.Offline && p.Link == "live" && p.Cards["air/temperature"].Value == "24.50"
	})
	// The new agent's history replaced the old one's.
	if got := p.Cards["air/temperature"].Points; got != 2 {
		t.Errorf("after reconnecting the chart has %d points, want the new history's 2", got)
	}
	p = b.waitPage("the young agent's status", func(p pageState) bool { return strings.HasPrefix(p.Uptime, "1 min") })
	if want := "8 fsyncs · 4.0 KiB written since start"; !strings.Contains(p.Outputs, want) {
		t.Errorf("a minute after the start the buffer line reads %q, want %q", p.Outputs, want)
	}
	// After a day, the buffer line is the last 24 hours', not the totals:
	// an outage long ago no longer weighs on what the card pays now.
	age.Store(int64(72 * time.Hour))
	p = b.waitPage("the status of an agent three days old", func(p pageState) bool { return strings.HasPrefix(p.Uptime, "3 d") })
	if want := "2 fsyncs · 1.5 KiB written in the last 24 h"; !strings.Contains(p.Outputs, want) {
		t.Errorf("three days after the start the buffer line reads %q, want %q", p.Outputs, want)
	}
}

// serveOn runs s.Serve on l until the returned stop is called or the test
// ends; stop waits for Serve to return and checks it returned nil.
func serveOn(t *testing.T, s *Server, l net.Listener) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Cleanup(stop)
	return stop
}

// click clicks the element sel in the page.
func (b *browser) click(sel string) {
	b.t.Helper()
	var ok bool
	b.eval(`(() => { const e = document.querySelector(`+strconv.Quote(sel)+`); if (!e) return false; e.click(); return true; })()`, &ok)
	if !ok {
		b.t.Fatalf("no element %s to click", sel)
	}
}

// TestPageLongHistoryInChromium: the 24 h and 7 d windows draw the
// archive's minute buckets (min–max band and mean), with min/mean/max and
// a trend on the card; °F is a click away and stays chosen; the CSV has
// the shown window; and after the agent restarts (the archive reopened
// from disk) a reloaded page draws the same history. A screenshot is
// saved in the test's temp dir.
func TestPageLongHistoryInChromium(t *testing.T) {
	b := startBrowser(t)
	now := wallclock.Now()
	status := func() Status {
		return Status{Agent: "gh", Started: now.Add(-3 * 24 * time.Hour),
			Sensors: []SensorStatus{{ID: "air", Type: "sim", Quantities: []string{"temperature"}, State: "ok", IntervalSeconds: 1}}}
	}
	dir := t.TempDir()
	// The archive's clock is the browser's: time.Now, also in the skewed
	// test build.
	arch, err := archive.Open(dir, archive.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Three days of a reading every 5 minutes, rising 1 °C per day; then
	// the last minute at 1 Hz, at 25 °C.
	start := now.Add(-72 * time.Hour).Truncate(time.Minute)
	for at := start; at.Before(now.Add(-2 * time.Minute)); at = at.Add(5 * time.Minute) {
		arch.Add(reading.Reading{Sensor: "air", Quantity: reading.Temperature, Unit: "°C",
			Value: 20 + at.Sub(start).Hours()/24, Time: at})
	}
	s := New(Config{}, status, nil, nil)
	s.SetArchive(arch)
	for i := range 60 { // as the agent does: to the page and to the archive
		r := reading.Reading{Agent: "gh", Sensor: "air", Quantity: reading.Temperature, Unit: "°C",
			Value: 25, Raw: 25.1, Time: now.Add(time.Duration(i-60) * time.Second), Seq: uint64(i + 1)}
		s.Publish(r)
		arch.Add(r)
	}
	arch.Flush()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	stop := serveOn(t, s, l)
	b.call("Page.navigate", map[string]any{"url": "http://" + addr + "/"})
	b.waitPage("the live readings", func(p pageState) bool { return p.Link == "live" && p.Cards["air/temperature"].Points == 60 })

	b.click(`#windows [data-ms="86400000"]`)
	p := b.waitPage("a day of buckets", func(p pageState) bool { return p.Cards["air/temperature"].Buckets >= 280 })
	c := p.Cards["air/temperature"]
	// 24 h of 5-minute readings: 288 one-minute buckets (±1 at the edges);
	// the live readings are in the last bucket.
	if c.Buckets > 290 || c.Points != c.Buckets {
		t.Errorf("24 h: %d buckets and %d points, want about 288, all of them buckets", c.Buckets, c.Points)
	}
	if !strings.HasPrefix(c.Range, "min 22.") || !strings.Contains(c.Range, "max 25.00") || c.Trend == "" {
		t.Errorf("24 h stats: range %q trend %q", c.Range, c.Trend)
	}

	b.click(`#windows [data-ms="604800000"]`)
	p = b.waitPage("a week of buckets", func(p pageState) bool {
		c := p.Cards["air/temperature"]
		return c.Buckets > 0 && c.Buckets < 500 && strings.HasPrefix(c.Range, "min 20.00")
	})
	week := p.Cards["air/temperature"].Buckets // 72 h in 10-minute steps: about 432

	b.click("#units")
	p = b.waitPage("°F", func(p pageState) bool { c := p.Cards["air/temperature"]; return c.Unit == "°F" && c.Value == "77.00" })
	var csv string
	b.eval(`window.kelvin.csv('air/temperature')`, &csv)
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if lines[0] != "time,min,mean,max,readings,unit" || len(lines) != 1+week || !strings.HasSuffix(lines[1], ",°F") {
		t.Errorf("CSV: %d lines, want %d; starts %q", len(lines), 1+week, lines[:min(3, len(lines))])
	}
	if first := strings.Split(lines[1], ","); first[1] != "68" {
		t.Errorf("CSV first bucket %q, want min 68 °F (20 °C)", lines[1])
	}

	// The agent restarts; its archive is read back from disk.
	stop()
	if err := arch.Close(); err != nil {
		t.Fatal(err)
	}
	arch2, err := archive.Open(dir, archive.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer arch2.Close()
	s2 := New(Config{}, status, nil, nil)
	s2.SetArchive(arch2)
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, s2, l2)
	b.call("Page.reload", map[string]any{"ignoreCache": true})
	p = b.waitPage("the week again after a restart and a reload", func(p pageState) bool {
		c := p.Cards["air/temperature"]
		return p.Link == "live" && c.Unit == "°F" && c.Buckets >= week-1
	})

	var shot struct{ Data []byte }
	json.Unmarshal(b.call("Page.captureScreenshot", map[string]any{"format": "png"}), &shot)
	dirShot := t.TempDir()
	if d := os.Getenv("KELVIN_SCREENSHOT_DIR"); d != "" {
		dirShot = d
	}
	png := filepath.Join(dirShot, "page-7d.png")
	if err := os.WriteFile(png, shot.Data, 0o644); err != nil || len(shot.Data) < 1000 {
		t.Errorf("screenshot: %d bytes, %v", len(shot.Data), err)
	}
	t.Logf("screenshot: %s", png)

	// On a 360-px phone: nothing wider than the screen, the chart drawn.
	b.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": true})
	b.waitPage("the week on a phone", func(p pageState) bool { return p.Cards["air/temperature"].Buckets >= week-1 })
	var widths struct{ Scroll, Client int }
	b.eval(`({Scroll: document.documentElement.scrollWidth, Client: document.documentElement.clientWidth})`, &widths)
	if widths.Scroll > 360 || widths.Client > 360 {
		t.Errorf("on a 360-px screen the page is %d px wide (viewport %d): it scrolls sideways", widths.Scroll, widths.Client)
	}
	json.Unmarshal(b.call("Page.captureScreenshot", map[string]any{"format": "png"}), &shot)
	os.WriteFile(filepath.Join(dirShot, "page-phone.png"), shot.Data, 0o644)
}

// TestPageValuesInChromium: a huge value shows in exponent form, not as
// 309 digits (issue 15, item 1); a back-filled reading, from the history or
// live, takes its place in the chart by time and does not become the
// card's current value (item 3).
func TestPageValuesInChromium(t *testing.T) {
	b := startBrowser(t)
	now := wallclock.Now()
	status := func() Status {
		return Status{Agent: "gh", Started: now.Add(-time.Hour), Sensors: []SensorStatus{
			{ID: "air", Type: "http", Quantities: []string{"temperature"}, State: "ok", IntervalSeconds: 60},
			{ID: "big", Type: "http", Quantities: []string{"temperature"}, State: "ok", IntervalSeconds: 60},
		}}
	}
	temp := func(sensor string, seq int, v float64, at time.Time) reading.Reading {
		return reading.Reading{Agent: "gh", Sensor: sensor, Quantity: reading.Temperature, Value: v, Raw: v, Unit: "°C", Time: at, Seq: uint64(seq)}
	}
	s := New(Config{}, status, wallclock.Now, nil)
	s.Publish(temp("big", 1, 1e308, now.Add(-2*time.Second)))
	s.Publish(temp("big", 2, -1.7e308, now.Add(-time.Second)))
	for i := range 10 {
		s.Publish(temp("air", i+1, 20+float64(i), now.Add(time.Duration(i-10)*time.Second)))
	}
	s.Publish(temp("air", 11, 5, now.Add(-50*time.Minute))) // back-filled
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, s, l)
	b.call("Page.navigate", map[string]any{"url": "http://" + l.Addr().String() + "/"})
	p := b.waitPage("the history", func(p pageState) bool {
		return p.Link == "live" && p.Cards["air/temperature"].Points == 11 && p.Cards["big/temperature"].Points == 2
	})
	if c := p.Cards["air/temperature"]; c.Value != "29.00" {
		t.Errorf("air shows %q after a back-filled reading in the history, want the newest 29.00", c.Value)
	}
	long := regexp.MustCompile(`\d{12}`)
	if c := p.Cards["big/temperature"]; c.Value != "-1.700e308" || long.MatchString(c.Range) {
		t.Errorf("big shows %q, range %q; want -1.700e308 and no long digit strings", c.Value, c.Range)
	}
	var labels string
	b.eval(`window.kelvin.fmtValue(1e308, '°C') + ' ' + window.kelvin.fmtValue(101325, 'Pa') + ' ' + window.kelvin.fmtValue(21.456, '°C')`, &labels)
	if labels != "1.000e308 101325 21.46" {
		t.Errorf("fmtValue: %q", labels)
	}

	// Live: a back-filled reading over the websocket goes into the chart,
	// and the card keeps the newest value.
	s.Publish(temp("air", 12, 7, now.Add(-30*time.Minute)))
	p = b.waitPage("the live back-filled reading", func(p pageState) bool { return p.Cards["air/temperature"].Points == 12 })
	if c := p.Cards["air/temperature"]; c.Value != "29.00" {
		t.Errorf("air shows %q after a live back-filled reading, want 29.00", c.Value)
	}
	s.Publish(temp("air", 13, 30, wallclock.Now()))
	b.waitPage("the newer reading", func(p pageState) bool { c := p.Cards["air/temperature"]; return c.Points == 13 && c.Value == "30.00" })
}

// publishUnseen records rs as Publish does, but without waking the
// websocket clients: they find out they missed them at the next Publish.
func (s *Server) publishUnseen(rs ...reading.Reading) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		s.history.add(r, s.now())
		s.hub.append(r.AppendJSON(nil), s.hubBytes)
	}
}

// TestPageCatchesUpInChromium: when the page falls so far behind that the
// server skips readings for it, the page reloads them from the API and
// shows no gap, on the same connection (issue 15, item 6).
func TestPageCatchesUpInChromium(t *testing.T) {
	b := startBrowser(t)
	now := wallclock.Now()
	status := func() Status {
		return Status{Agent: "gh", Started: now.Add(-time.Hour), Sensors: []SensorStatus{
			{ID: "air", Type: "sim", Quantities: []string{"temperature"}, State: "ok", IntervalSeconds: 1}}}
	}
	temp := func(seq int) reading.Reading {
		return reading.Reading{Agent: "gh", Sensor: "air", Quantity: reading.Temperature, Value: 20 + float64(seq)/100,
			Raw: 20, Unit: "°C", Time: now.Add(time.Duration(seq-100) * time.Second), Seq: uint64(seq)}
	}
	s := New(Config{}, status, wallclock.Now, nil)
	s.hubBytes = 1 << 10 // a handful of readings
	for i := 1; i <= 10; i++ {
		s.Publish(temp(i))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, s, l)
	b.call("Page.navigate", map[string]any{"url": "http://" + l.Addr().String() + "/"})
	b.waitPage("the history", func(p pageState) bool { return p.Link == "live" && p.Cards["air/temperature"].Points == 10 })

	var missed []reading.Reading
	for i := 11; i <= 60; i++ {
		missed = append(missed, temp(i))
	}
	s.publishUnseen(missed...)
	s.Publish(temp(61))
	p := b.waitPage("every reading, the skipped ones reloaded", func(p pageState) bool { return p.Cards["air/temperature"].Points == 61 })
	if c := p.Cards["air/temperature"]; c.Value != "20.61" || p.Link != "live" {
		t.Errorf("after catching up: value %q, link %q; want 20.61, live", c.Value, p.Link)
	}
	var skipped int
	b.eval(`window.kelvin.st.skipped || 0`, &skipped)
	if skipped == 0 || s.wsSkipped.Load() == 0 {
		t.Errorf("the page saw %d skipped, the server %d: the test did not make it skip", skipped, s.wsSkipped.Load())
	}
	if n := s.Clients(); n != 1 {
		t.Errorf("%d clients, want the page's one connection", n)
	}
}
