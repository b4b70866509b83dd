package fleet

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelvin-gw/kelvin/internal/testenv"
	"github.com/kelvin-gw/kelvin/reading"
)

// fleetPage is what the fleet page shows, read from its DOM.
type fleetPage struct {
	Totals   string
	Range    string
	Live     bool
	Gateways []struct {
		Agent, State, Seen string
		Counts             string
		Cards              int
		Points             []int
		Seq                map[string]string
		Link               string
	}
	Canvases int
}

const fleetPageJS = `(() => {
  // Not loaded yet: the parser may stop anywhere in the document (after
  // #totals but before #range, say) until the whole of it has run.
  if (document.readyState !== 'complete') return null;
  const gws = [...document.querySelectorAll('#gateways .gw')].map((g) => ({
    Agent: g.dataset.agent, State: g.dataset.state || '',
    Seen: g.querySelector('header .muted').textContent,
    Counts: g.querySelectorAll('header .muted')[1].textContent,
    Cards: g.querySelectorAll('.card').length,
    Points: [...g.querySelectorAll('canvas')].map((c) => +(c.dataset.points || 0)),
    Seq: Object.fromEntries([...g.querySelectorAll('.card')].map((c) => [c.dataset.series, c.dataset.seq || ''])),
    Link: g.querySelector('header a').hidden ? '' : g.querySelector('header a').href,
  }));
  return { Totals: document.getElementById('totals').textContent, Range: document.getElementById('range').textContent,
    Live: document.body.dataset.live === '1', Gateways: gws, Canvases: document.querySelectorAll('canvas').length };
})()`

func waitFleetPage(t *testing.T, b *testenv.Browser, what string, cond func(p fleetPage) bool) fleetPage {
	t.Helper()
	var p fleetPage
	testenv.WaitForWithin(t, 20*time.Second, what, func() bool {
		p = fleetPage{}
		b.Eval(fleetPageJS, &p)
		return cond(p)
	})
	return p
}

// TestFleetPageManyGateways: 1,000 gateways of 10 sensors each. The page
// shows one page of 20 gateways (200 charts, never 10,000), the totals of
// all, each gateway's last seen and counts with a loss, finds one by the
// search box, shows an offline one and the one with a loss by state,
// follows the shown gateways live over the websocket, and pages on.
func TestFleetPageManyGateways(t *testing.T) {
	f, c := newTestFleet(t, func(c *Config) { c.LossAfter = time.Minute })
	setArchive(t, f, c)
	const gateways, sensors = 1000, 10
	agent := func(i int) string { return fmt.Sprintf("gw-%04d", i) }
	for i := range gateways {
		f.Handle("kelvin/"+agent(i)+"/status", []byte(`{"state":"online","page":"http://`+agent(i)+`.lan:8080/"}`))
		for s := range sensors {
			for n := uint64(1); n <= 3; n++ {
				seq := n
				if i == 1 && s == 0 && n > 1 {
					seq++ // gw-0001's s0 sends 1, 3, 4: seq 2 is lost
				}
				f.Handle("kelvin/x/y", payload(reading.FormatJSON, agent(i), "s"+strconv.Itoa(s), seq, 20+float64(seq), c.now().Add(time.Duration(seq)*time.Second)))
			}
		}
	}
	f.Handle("kelvin/gw-0500/status", []byte("offline"))
	c.advance(2 * time.Minute) // the readings' minute is over: in the archive's answer
	f.Expire()                 // and gw-0001's seq 2 lost
	srv := httptest.NewServer(f.Handler())
	defer srv.Close()
	defer f.hub.close()

	b := testenv.StartBrowser(t)
	b.Navigate(srv.URL + "/fleet/")
	p := waitFleetPage(t, b, "the first page of gateways with their charts", func(p fleetPage) bool {
		if len(p.Gateways) != 20 || !p.Live {
			return false
		}
		for _, g := range p.Gateways {
			if g.Cards != sensors {
				return false
			}
			for _, n := range g.Points {
				if n != 3 {
					return false
				}
			}
		}
		return true
	})
	if p.Canvases != 20*sensors || p.Gateways[0].Agent != "gw-0000" || p.Gateways[0].State != "online" ||
		p.Gateways[0].Link != "http://gw-0000.lan:8080/" || p.Range != "1–20 of 1000" {
		t.Fatalf("first page: %d canvases, %+v, range %q", p.Canvases, p.Gateways[0], p.Range)
	}
	if want := "999 of 1000 online"; p.Totals[:len(want)] != want || !strings.HasSuffix(p.Totals, ", 1 lost") {
		t.Fatalf("totals %q, want %q... 1 lost", p.Totals, want)
	}
	if g := p.Gateways[1]; g.Agent != "gw-0001" || g.Counts != "30 received, 0 dup, 1 lost" || g.Seen != "last seen 2 min ago" {
		t.Fatalf("gw-0001 %+v, want last seen and its loss", g)
	}

	// Live: a new reading of a shown gateway reaches its card.
	f.Handle("kelvin/x/y", payload(reading.FormatJSON, "gw-0003", "s7", 4, 30, c.now().Add(4*time.Second)))
	waitFleetPage(t, b, "the new reading on gw-0003's card", func(p fleetPage) bool {
		return len(p.Gateways) > 3 && p.Gateways[3].Seq["s7/temperature"] == "4"
	})

	// The 24 h window: the cards draw the archive.
	b.Eval(`(() => { const w = document.getElementById('window'); w.value = '24h'; w.dispatchEvent(new Event('change')); return !w.hidden; })()`, nil)
	var long []string
	testenv.WaitFor(t, "the 24 h charts", func() bool {
		b.Eval(`[...document.querySelectorAll('#gateways .gw:first-child canvas')].map((c) => c.dataset.window + ':' + c.dataset.points)`, &long)
		for _, x := range long {
			if x != "24h:1" {
				return false
			}
		}
		return len(long) == sensors
	})
	b.Eval(`(() => { const w = document.getElementById('window'); w.value = ''; w.dispatchEvent(new Event('change')); return true; })()`, nil)

	// Search.
	b.Eval(`(() => { const q = document.getElementById('q'); q.value = 'gw-0742'; q.dispatchEvent(new Event('input')); return true; })()`, nil)
	waitFleetPage(t, b, "only gw-0742 after the search", func(p fleetPage) bool {
		return len(p.Gateways) == 1 && p.Gateways[0].Agent == "gw-0742" && p.Gateways[0].Cards == sensors
	})
	b.Eval(`(() => { const q = document.getElementById('q'); q.value = 'state:offline'; q.dispatchEvent(new Event('input')); return true; })()`, nil)
	waitFleetPage(t, b, "the offline gateway", func(p fleetPage) bool {
		return len(p.Gateways) == 1 && p.Gateways[0].Agent == "gw-0500" && p.Gateways[0].State == "offline"
	})
	b.Eval(`(() => { const q = document.getElementById('q'); q.value = 'lost'; q.dispatchEvent(new Event('input')); return true; })()`, nil)
	waitFleetPage(t, b, "the gateway with a loss", func(p fleetPage) bool {
		return len(p.Gateways) == 1 && p.Gateways[0].Agent == "gw-0001"
	})

	// Paging.
	b.Eval(`(() => { const q = document.getElementById('q'); q.value = ''; q.dispatchEvent(new Event('input')); return true; })()`, nil)
	waitFleetPage(t, b, "the first page again", func(p fleetPage) bool { return len(p.Gateways) == 20 })
	b.Eval(`document.getElementById('next').click(), true`, nil)
	p = waitFleetPage(t, b, "the second page", func(p fleetPage) bool {
		return len(p.Gateways) == 20 && p.Gateways[0].Agent == "gw-0020"
	})
	if p.Canvases > 20*sensors {
		t.Fatalf("%d charts after paging, want at most %d", p.Canvases, 20*sensors)
	}

	// A source the broker refuses says why, above the gateways.
	f.setSourceError("kafka", errors.New("broker 127.0.0.1:9093: SASL authentication failed"))
	var shown string
	testenv.WaitFor(t, "the source's error on the page", func() bool {
		b.Eval(`(() => { const e = document.getElementById('source-errors'); return e.hidden ? '' : e.textContent; })()`, &shown)
		return shown == "kafka: broker 127.0.0.1:9093: SASL authentication failed"
	})

	// Half an hour without a word: every gateway but one that reads on
	// is silent (gw-0500 said offline, and stays so).
	c.advance(DefaultSilentAfter) // the limit while a gateway's interval is not known
	f.Handle("kelvin/x/y", payload(reading.FormatJSON, "gw-0020", "s0", 4, 30, c.now()))
	f.Expire()
	p = waitFleetPage(t, b, "the silent gateways", func(p fleetPage) bool {
		return len(p.Gateways) == 20 && p.Gateways[0].State == "online" && p.Gateways[1].State == "silent"
	})
	if want := "1 of 1000 online · 998 silent · "; !strings.HasPrefix(p.Totals, want) {
		t.Fatalf("totals %q, want %q...", p.Totals, want)
	}
	var pill []string
	b.Eval(`[...document.querySelectorAll('#gateways .gw .pill')].slice(0, 2).map((e) => e.textContent + ':' + getComputedStyle(e).fontStyle + ':' + e.title)`, &pill)
	if len(pill) != 2 || pill[0] != "online:normal:" || !strings.HasPrefix(pill[1], "silent:italic:nothing heard for 1800 s") {
		t.Fatalf("pills %q, want online and an italic silent one saying for how long", pill)
	}
	b.Eval(`(() => { const q = document.getElementById('q'); q.value = 'state:silent gw-05'; q.dispatchEvent(new Event('input')); return true; })()`, nil)
	waitFleetPage(t, b, "the silent gateways of gw-05xx", func(p fleetPage) bool {
		return len(p.Gateways) == 20 && p.Gateways[0].Agent == "gw-0501" && p.Gateways[0].State == "silent" && strings.HasSuffix(p.Range, "of 99")
	})
}
