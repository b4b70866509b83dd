// Command flaky is the gateway's network link for scripts/soak.sh: a TCP
// proxy between the agent and the broker that a signal takes down and
// brings back, so that an outage cuts the agent off while the broker, and
// the subscriber counting what arrived, stay up.
//
//	flaky -listen 127.0.0.1:P -to 127.0.0.1:Q
//
// Two signals take the link down, one brings it back:
//
//   - SIGUSR1 cuts it: every connection is closed at once and new ones are
//     refused (the listener is closed), as when the broker's host goes away
//     and its TCP stack answers with resets.
//   - SIGHUP blackholes it: bytes stop flowing both ways and new
//     connections hang (accepted, never forwarded) until the link is back,
//     as when a Wi-Fi link drops: the agent learns of it only from its own
//     timeouts.
//   - SIGUSR2 brings it back. Connections held by a blackhole go on where
//     they stopped (those the agent gave up on meanwhile end).
//
// It logs each change on standard error.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

func main() {
	listen := flag.String("listen", "", "address to listen on")
	to := flag.String("to", "", "address to forward to")
	flag.Parse()
	if *listen == "" || *to == "" {
		flag.Usage()
		os.Exit(2)
	}
	p, err := newProxy(*listen, *to)
	if err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)
	for s := range sig {
		switch s {
		case syscall.SIGUSR1:
			p.takeDown(false)
			log.Print("flaky: link cut")
		case syscall.SIGHUP:
			p.takeDown(true)
			log.Print("flaky: link blackholed")
		case syscall.SIGUSR2:
			if err := p.up(); err != nil {
				log.Fatal(err)
			}
			log.Print("flaky: link up")
		default:
			return
		}
	}
}

type proxy struct {
	to, addr string

	mu    sync.Mutex
	cond  *sync.Cond // broadcast when the link comes back
	isUp  bool
	ln    net.Listener
	conns map[net.Conn]bool
}

// newProxy listens on listen (its port may be 0: the link comes back on the
// port first given) and forwards to to.
func newProxy(listen, to string) (*proxy, error) {
	p := &proxy{to: to, addr: listen, conns: map[net.Conn]bool{}}
	p.cond = sync.NewCond(&p.mu)
	return p, p.up()
}

// up listens (again, after a cut) and lets bytes flow.
func (p *proxy) up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isUp {
		return nil
	}
	p.isUp = true
	p.cond.Broadcast()
	if p.ln != nil {
		return nil // a blackhole kept the listener
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("flaky: %w", err)
	}
	p.ln, p.addr = ln, ln.Addr().String()
	go p.accept(ln)
	return nil
}

// takeDown stops the bytes (blackhole) or closes everything (cut).
func (p *proxy) takeDown(blackhole bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isUp = false
	if blackhole || p.ln == nil {
		return
	}
	p.ln.Close()
	p.ln = nil
	for c := range p.conns {
		c.Close()
	}
}

// wait blocks while the link is down; it reports whether c may go on.
func (p *proxy) wait(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.isUp && p.conns[c] {
		p.cond.Wait()
	}
	return p.conns[c]
}

func (p *proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
		p.cond.Broadcast()
	}
}

func (p *proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *proxy) serve(c net.Conn) {
	p.track(c, true)
	defer p.track(c, false)
	defer c.Close()
	if !p.wait(c) {
		return
	}
	b, err := net.Dial("tcp", p.to)
	if err != nil {
		return
	}
	p.track(b, true)
	defer p.track(b, false)
	defer b.Close()
	done := make(chan struct{}, 2)
	go func() { p.copy(b, c); done <- struct{}{} }()
	go func() { p.copy(c, b); done <- struct{}{} }()
	<-done
}

// copy moves bytes from src to dst, holding them while the link is down.
func (p *proxy) copy(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait(src) || !p.wait(dst) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
