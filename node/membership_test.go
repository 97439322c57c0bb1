package node

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
)

func startCluster(t *testing.T, n int, key []byte) []*Membership {
	t.Helper()
	var ms []*Membership
	for i := range n {
		cfg := DefaultMembershipConfig(fmt.Sprintf("n%d", i))
		cfg.SecretKey = key
		role := RoleCloud
		if i == 0 {
			role = RoleEdge
		}
		m, err := NewMembership(cfg, Meta{Role: role, QUICAddr: fmt.Sprintf("127.0.0.1:%d", 7000+i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown() })
		ms = append(ms, m)
	}
	return ms
}

// waitFor polls cond until it holds or limit passes, returning the time taken.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func alivePeers(m *Membership) int {
	n := 0
	for _, p := range m.Peers() {
		if p.Alive {
			n++
		}
	}
	return n
}

func TestGossipConvergence(t *testing.T) {
	if testing.Short() {
		t.Skip("gossip timing test: skipped with -short")
	}
	const n = 10
	key := []byte("0123456789abcdef")
	ms := startCluster(t, n, key)
	ctx := context.Background()
	start := time.Now()
	for _, m := range ms[1:] {
		if _, err := m.Join(ctx, []string{ms[0].Addr()}); err != nil {
			t.Fatal(err)
		}
	}
	converge := waitFor(t, 10*time.Second, "convergence", func() bool {
		for _, m := range ms {
			if alivePeers(m) != n-1 {
				return false
			}
		}
		return true
	})
	t.Logf("%d nodes: joins + convergence took %v (after the last join: %v)", n, time.Since(start), converge)

	// A metadata change reaches everyone.
	meta := ms[3].Meta()
	meta.Load = 0.75
	meta.Queue = 7
	changed := time.Now()
	if err := ms[3].UpdateMeta(ctx, meta); err != nil {
		t.Fatal(err)
	}
	spread := waitFor(t, 10*time.Second, "metadata spread", func() bool {
		for i, m := range ms {
			if i == 3 {
				continue
			}
			p, ok := m.Peer("n3")
			if !ok || p.Meta.Queue != 7 {
				return false
			}
		}
		return true
	})
	total := time.Since(changed)
	t.Logf("metadata change visible on all %d peers %v after UpdateMeta was called (it blocked for %v)", n-1, total, total-spread)

	// A crash (shutdown without leave) is detected.
	crashed := time.Now()
	ms[5].Shutdown()
	waitFor(t, 15*time.Second, "crash detection", func() bool {
		for i, m := range ms {
			if i == 5 {
				continue
			}
			if p, _ := m.Peer("n5"); p.Alive {
				return false
			}
		}
		return true
	})
	t.Logf("crash of n5 detected by all peers after %v", time.Since(crashed))
}

// A node with another gossip key cannot join, and no member ever sees it
// (memberlist's MockNetwork, in a synctest bubble).
func TestGossipWrongKeyIgnored(t *testing.T) { synctest.Test(t, testGossipWrongKeyIgnored) }

func testGossipWrongKeyIgnored(t *testing.T) {
	key := []byte("0123456789abcdef")
	mn := newMockNet(t, "n0", "n1", "intruder")
	good := []*Membership{newMockMember(t, mn, "n0", key), newMockMember(t, mn, "n1", key)}
	ctx := context.Background()
	if _, err := good[1].Join(ctx, []string{good[0].Addr()}); err != nil {
		t.Fatal(err)
	}
	bad := newMockMember(t, mn, "intruder", []byte("fedcba9876543210"))
	jctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := bad.Join(jctx, []string{good[0].Addr()}); err == nil {
		t.Error("join with the wrong gossip key succeeded")
	}
	time.Sleep(300 * time.Millisecond)
	for _, m := range good {
		if _, ok := m.Peer("intruder"); ok {
			t.Errorf("%s sees the intruder", m.cfg.Name)
		}
	}
}

func TestMetaLimits(t *testing.T) {
	m := Meta{Role: RoleCloud}
	for i := range 40 {
		m.Models = append(m.Models, ModelRef{ID: fmt.Sprintf("model-with-a-long-name-%d", i), Version: "v1"})
	}
	if _, err := m.Encode(); err == nil {
		t.Fatal("oversized metadata encoded without error")
	}
	if _, err := DecodeMeta([]byte(`{"r":"robot"}`)); err == nil {
		t.Error("unknown role decoded without error")
	}
	if _, err := DecodeMeta([]byte(`{"r":`)); err == nil {
		t.Error("truncated metadata decoded without error")
	}
	b, err := Meta{Role: RoleEdge, Models: []ModelRef{{ID: "seed-cnn", Version: "1"}}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeMeta(b)
	if err != nil || !got.Serves("seed-cnn") || got.Role != RoleEdge {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

func TestDeviceEmulate(t *testing.T) {
	d, err := ParseDevice("raspberry-pi-4")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		elapsed, profiled, want time.Duration
	}{
		{50 * time.Microsecond, 0, 400 * time.Microsecond}, // no profile: Slowdown × elapsed
		{400 * time.Microsecond, 0, 3200 * time.Microsecond},
		{3 * time.Millisecond, 0, 24 * time.Millisecond},
		{400 * time.Microsecond, 2 * time.Millisecond, 2 * time.Millisecond}, // the profile, not 8 × elapsed
		{3 * time.Millisecond, 6 * time.Millisecond, 6 * time.Millisecond},   // a slow native run is not stretched 8×
		{5 * time.Millisecond, 1 * time.Millisecond, 5 * time.Millisecond},   // never earlier than the native run
	} {
		start := time.Now().Add(-tc.elapsed) // as if the work had just taken elapsed
		if err := d.Emulate(context.Background(), tc.elapsed, tc.profiled); err != nil {
			t.Fatal(err)
		}
		got := time.Since(start)
		if got < tc.want {
			t.Errorf("Emulate(%v, %v) took %v in all, want at least %v", tc.elapsed, tc.profiled, got, tc.want)
		}
		// The upper bound is loose (a shared machine), but an 8× stretch
		// of the native run where the profile applies would exceed it.
		if tc.profiled > 0 && got > tc.want+20*time.Millisecond {
			t.Errorf("Emulate(%v, %v) took %v in all, want about %v", tc.elapsed, tc.profiled, got, tc.want)
		}
	}
	if err := (Device{Name: "server", Slowdown: 1}).Emulate(context.Background(), time.Second, 2*time.Second); err != nil {
		t.Fatal(err) // returns at once: the host is the device
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Emulate(ctx, time.Second, 0); err == nil {
		t.Error("Emulate ignored a cancelled context")
	}
	for _, bad := range []string{"toaster", "slowdown:0.5", "slowdown:x"} {
		if _, err := ParseDevice(bad); err == nil {
			t.Errorf("ParseDevice(%q) accepted", bad)
		}
	}
}

// mockNet is memberlist's MockNetwork with the transports it made, so a
// test in a synctest bubble can drain them at its end: a MockTransport's
// packets and stream dials go through unbuffered channels, and a member
// still sending to one that shut down would block the bubble forever.
type mockNet struct {
	memberlist.MockNetwork
	transports map[string]*memberlist.MockTransport
}

// newMockNet returns a network with a transport for each name, made up
// front (MockNetwork's NewTransport races with members already running),
// drained when the test ends, after every member on it has shut down.
func newMockNet(t *testing.T, names ...string) *mockNet {
	n := &mockNet{transports: map[string]*memberlist.MockTransport{}}
	for _, name := range names {
		n.transports[name] = n.NewTransport(name)
	}
	t.Cleanup(func() { // registered first, so it runs last
		done := make(chan struct{})
		for _, tr := range n.transports {
			go func() {
				for {
					select {
					case <-tr.PacketCh():
					case c := <-tr.StreamCh():
						c.Close()
					case <-done:
						return
					}
				}
			}()
		}
		// Let probes in flight at shutdown time out (fake time: free).
		time.Sleep(10 * time.Second)
		synctest.Wait()
		close(done)
	})
	return n
}

// newMockMember starts a membership on mn's transport for name (in
// process, no sockets: usable in a synctest bubble), shut down at the end
// of the test.
func newMockMember(t *testing.T, mn *mockNet, name string, key []byte) *Membership {
	t.Helper()
	cfg := DefaultMembershipConfig(name)
	cfg.SecretKey = key
	tr := mn.transports[name]
	cfg.Tune = func(mc *memberlist.Config) { mc.Transport = tr }
	m, err := NewMembership(cfg, Meta{Role: RoleCloud})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

// TestGonePeersReaped: a peer that left stays in the view (alive false)
// for memberlist's GossipToTheDeadTime, then is reaped: members that come
// and go (150 fake joins) do not pile up in /v1/cluster.
func TestGonePeersReaped(t *testing.T) {
	var ms []*Membership
	for i := range 2 {
		cfg := DefaultMembershipConfig(fmt.Sprintf("r%d", i))
		cfg.Tune = func(mc *memberlist.Config) { mc.GossipToTheDeadTime = 300 * time.Millisecond }
		m, err := NewMembership(cfg, Meta{Role: RoleCloud, QUICAddr: fmt.Sprintf("127.0.0.1:%d", 7100+i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown() })
		ms = append(ms, m)
	}
	a, b := ms[0], ms[1]
	if _, err := b.Join(context.Background(), []string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b seen alive", func() bool { p, ok := a.Peer("r1"); return ok && p.Alive })
	b.Leave(time.Second)
	b.Shutdown()
	waitFor(t, 5*time.Second, "b seen gone", func() bool { p, ok := a.Peer("r1"); return ok && !p.Alive })
	if got := a.Peers(); len(got) != 1 || got[0].Alive {
		t.Fatalf("just after leaving: %+v, want r1 listed as gone", got)
	}
	waitFor(t, 5*time.Second, "b reaped", func() bool { return len(a.Peers()) == 0 })
}

// TestRestartOnNewPortsRejoins: a member that crashed (no leave) and is
// restarted under the same name at another address is accepted as that
// member once the old one is dead: the others see it alive at its new
// address, as a join (Peer.Joined moves), not refused as a name conflict.
func TestRestartOnNewPortsRejoins(t *testing.T) {
	if testing.Short() {
		t.Skip("gossip timing test: skipped with -short")
	}
	key := []byte("0123456789abcdef")
	start := func(name string) *Membership {
		cfg := DefaultMembershipConfig(name)
		cfg.SecretKey = key
		m, err := NewMembership(cfg, Meta{Role: RoleCloud, QUICAddr: "127.0.0.1:7201"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown() })
		return m
	}
	a, b := start("a"), start("b")
	if _, err := b.Join(context.Background(), []string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b seen alive", func() bool { p, ok := a.Peer("b"); return ok && p.Alive })
	first, _ := a.Peer("b")
	b.Shutdown() // a crash: no leave
	waitFor(t, 10*time.Second, "b seen dead", func() bool { p, _ := a.Peer("b"); return !p.Alive })
	b2 := start("b") // port 0: another port
	if b2.Addr() == first.Addr {
		t.Fatalf("the restarted b got the old address %s", first.Addr)
	}
	if _, err := b2.Join(context.Background(), []string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 5*time.Second, "the restarted b seen alive at its new address", func() bool {
		p, _ := a.Peer("b")
		return p.Alive && p.Addr == b2.Addr()
	})
	if p, _ := a.Peer("b"); !p.Joined.After(first.Joined) {
		t.Errorf("the restart was not seen as a join: joined %v, first %v", p.Joined, first.Joined)
	}
	t.Logf("restarted on %s (was %s): alive again after %v", b2.Addr(), first.Addr, took)
}
