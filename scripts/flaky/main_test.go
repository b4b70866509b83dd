package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
)

// echo serves a line echo on a loopback port and returns its address.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string) {
	t.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Fatalf("echo of %q: %q, %v", line, got, err)
	}
}

// connected starts a proxy to an echo server and returns it with a client
// connection through it that has made one round trip.
func connected(t *testing.T) (*proxy, net.Conn, *bufio.Reader) {
	t.Helper()
	p, err := newProxy("127.0.0.1:0", echo(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	roundTrip(t, c, r, "before")
	return p, c, r
}

func TestCutClosesAndRefusesUntilUp(t *testing.T) {
	p, _, r := connected(t)

	p.takeDown(false)
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("a cut left the connection open")
	}
	if _, err := net.Dial("tcp", p.addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial during a cut: %v, want connection refused", err)
	}

	if err := p.up(); err != nil {
		t.Fatal(err)
	}
	c2, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	roundTrip(t, c2, bufio.NewReader(c2), "after")
}

func TestBlackholeHoldsBytesUntilUp(t *testing.T) {
	p, c, r := connected(t)

	p.takeDown(true)
	if _, err := io.WriteString(c, "held\n"); err != nil {
		t.Fatal(err)
	}
	// A connection made during the blackhole is accepted and held too.
	c2, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := io.WriteString(c2, "new\n"); err != nil {
		t.Fatal(err)
	}

	if err := p.up(); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("after the blackhole: %q, %v", got, err)
	}
	if got, err := bufio.NewReader(c2).ReadString('\n'); err != nil || got != "new\n" {
		t.Fatalf("the connection made during the blackhole: %q, %v", got, err)
	}
}
