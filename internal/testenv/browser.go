package testenv

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Browser is a headless Chromium driven over the DevTools protocol, for
// tests of the pages.
type Browser struct {
	t    testing.TB
	conn *websocket.Conn
	id   int
}

// StartBrowser starts headless Chromium for the rest of the test and
// connects to its one page; without chromium the test is skipped (failed
// in CI).
func StartBrowser(t testing.TB) *Browser {
	t.Helper()
	bin := Require(t, "chromium", "chromium")
	dir := t.TempDir()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+dir, "--window-size=1200,900", "--remote-debugging-port=0", "about:blank")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()

	var port, browserPath string
	WaitFor(t, "chromium's DevTools port", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "DevToolsActivePort"))
		port, browserPath, _ = strings.Cut(string(b), "\n")
		return err == nil && port != "" && strings.HasPrefix(browserPath, "/devtools/browser/")
	})
	// Browser.close ends all its processes before its directory is
	// removed; kill it if that fails.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, _, err := websocket.Dial(ctx, "ws://127.0.0.1:"+port+strings.TrimSpace(browserPath), nil); err == nil {
			c.Write(ctx, websocket.MessageText, []byte(`{"id":1,"method":"Browser.close"}`))
			defer c.CloseNow()
		}
		select {
		case <-exited:
		case <-ctx.Done():
			cmd.Process.Kill()
			<-exited
		}
	})
	var url string
	WaitFor(t, "chromium's page", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + port + "/json/list")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var targets []struct{ Type, WebSocketDebuggerURL string }
		json.NewDecoder(resp.Body).Decode(&targets)
		for _, tg := range targets {
			if tg.Type == "page" {
				url = tg.WebSocketDebuggerURL
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("connect to chromium: %v", err)
	}
	conn.SetReadLimit(-1)
	t.Cleanup(func() { conn.CloseNow() })
	return &Browser{t: t, conn: conn}
}

// Call sends a DevTools command and returns its result.
func (b *Browser) Call(method string, params any) json.RawMessage {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b.id++
	msg, _ := json.Marshal(map[string]any{"id": b.id, "method": method, "params": params})
	if err := b.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		b.t.Fatalf("%s: %v", method, err)
	}
	for {
		_, data, err := b.conn.Read(ctx)
		if err != nil {
			b.t.Fatalf("%s: %v", method, err)
		}
		var resp struct {
			ID     int
			Result json.RawMessage
			Error  *struct{ Message string }
		}
		json.Unmarshal(data, &resp)
		if resp.ID != b.id {
			continue // an event
		}
		if resp.Error != nil {
			b.t.Fatalf("%s: %s", method, resp.Error.Message)
		}
		return resp.Result
	}
}

// Eval evaluates a JavaScript expression in the page and decodes its
// JSON-compatible value into v.
func (b *Browser) Eval(expr string, v any) {
	b.t.Helper()
	var res struct {
		Result           struct{ Value json.RawMessage }
		ExceptionDetails *struct {
			Text      string
			Exception struct{ Description string }
		}
	}
	json.Unmarshal(b.Call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}), &res)
	if e := res.ExceptionDetails; e != nil {
		b.t.Fatalf("eval %s: %s %s", expr, e.Text, e.Exception.Description)
	}
	if v == nil {
		return
	}
	if err := json.Unmarshal(res.Result.Value, v); err != nil {
		b.t.Fatalf("eval %s: %v (%s)", expr, err, res.Result.Value)
	}
}

// Navigate opens url in the page.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.Call("Page.navigate", map[string]any{"url": url})
}
