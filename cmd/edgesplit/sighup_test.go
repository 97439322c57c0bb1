package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
)

// untilDone calls the reload hook once per SIGHUP and returns when ctx
// ends.
func TestUntilDoneReloadsPerSignal(t *testing.T) {
	sig := make(chan os.Signal)
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 3)
	done := make(chan struct{})
	go func() {
		untilDone(ctx, sig, func() { calls <- struct{}{} })
		close(done)
	}()
	sig <- syscall.SIGHUP
	sig <- syscall.SIGHUP
	cancel()
	<-done
	if len(calls) != 2 {
		t.Fatalf("%d reloads for 2 signals", len(calls))
	}
}

// reloadGossipKey re-reads the key file and rotates a running node to it;
// an unreadable or malformed file leaves the node as it was, with an error
// naming the file.
func TestReloadGossipKey(t *testing.T) {
	m, err := node.NewModel("lenet5", "", zoo.LeNet5(7), nil)
	if err != nil {
		t.Fatal(err)
	}
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Clouds: 1, Models: []*node.Model{m}, GossipKey: []byte("0123456789abcdef"),
		Logger: slog.New(slog.DiscardHandler), Tune: func(c *node.Config) { c.ProfileRuns = 1 },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	n := lc.Clouds[0]
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(keyFile, []byte("000102030405060708090a0b0c0d0e0f1011121314151617\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := reloadGossipKey(n, keyFile, dir, time.Second); err != nil {
		t.Fatalf("reload: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not hex"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{bad, filepath.Join(dir, "missing.key")} {
		if err := reloadGossipKey(n, f, dir, time.Second); err == nil || !strings.Contains(err.Error(), filepath.Base(f)) {
			t.Errorf("reload from %s: %v, want an error naming it", f, err)
		}
	}
}
