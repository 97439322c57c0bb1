package transport

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestForgetRestartedPeer: a peer restarts at the same address (a new
// process: new keys, no knowledge of the old connection). Calls on the
// old connection cannot reach it; after Forget the next call dials the
// new process and succeeds at once.
func TestForgetRestartedPeer(t *testing.T) {
	c := newCluster(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(pc, Config{Identity: c.identity("cloud"), Handler: &echo{}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	cli := c.endpoint("edge", nil, func(cfg *Config) { cfg.IdleTimeout = time.Minute })
	if _, _, err := callBytes(context.Background(), cli, addr, &Request{ID: 1}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// A crash: the socket goes first, so no close reaches the client,
	// whose connection looks alive until its idle timeout.
	pc.Close()
	srv.Close()
	// The new process at the same address (the port is free again).
	var restarted *Endpoint
	deadline := time.Now().Add(5 * time.Second)
	for {
		e, err := ListenAddr(addr, Config{Identity: c.identity("cloud"), Handler: &echo{}, Logger: quietLogger()})
		if err == nil {
			restarted = e
			break
		}
		if time.Now().After(deadline) {
			t.Skipf("could not listen again on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer restarted.Close()
	cli.Forget(addr, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	got, _, err := callBytes(ctx, cli, addr, &Request{ID: 2}, []byte("again"))
	if err != nil || string(got) != "again" {
		t.Fatalf("call after Forget: %q, %v", got, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the call after Forget took %v", d)
	}
	cli.Forget("not an address", time.Now()) // harmless
	cli.Forget("127.0.0.1:1", time.Now())    // never called: harmless
	// A connection made after the event is to the new process: kept.
	cli.Forget(addr, start.Add(-time.Hour))
	if got, _, err := callBytes(context.Background(), cli, addr, &Request{ID: 3}, []byte("kept")); err != nil || string(got) != "kept" {
		t.Fatalf("call after a Forget of an older event: %q, %v", got, err)
	}
}
