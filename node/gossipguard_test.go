package node

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
)

// refusalLog collects a member's gossip refusals.
type refusalLog struct {
	mu sync.Mutex
	rs []GossipRefusal
}

func (l *refusalLog) add(r GossipRefusal) { l.mu.Lock(); l.rs = append(l.rs, r); l.mu.Unlock() }

func (l *refusalLog) reasons() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s []string
	for _, r := range l.rs {
		s = append(s, r.Reason)
	}
	return s
}

// guardedMember starts name on mn's transport tr with key, its refusals
// collected.
func guardedMember(t *testing.T, mn *mockNet, tr, name string, key []byte) (*Membership, *refusalLog) {
	t.Helper()
	cfg := DefaultMembershipConfig(name)
	cfg.SecretKey = key
	log := &refusalLog{}
	cfg.OnRefused = log.add
	cfg.Tune = func(mc *memberlist.Config) { mc.Transport = mn.transports[tr] }
	m, err := NewMembership(cfg, Meta{Role: RoleCloud})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m, log
}

// TestGossipRefusalsAudited: a join without the cluster's key, with
// another key, and under a live member's name are each refused and
// reported by the seed (the reports come from memberlist's log lines and
// its ConflictDelegate: this fails if a memberlist release rewords them),
// and the newcomer with a taken name fails its Join with ErrNameTaken.
func TestGossipRefusalsAudited(t *testing.T) { synctest.Test(t, testGossipRefusalsAudited) }

func testGossipRefusalsAudited(t *testing.T) {
	key := []byte("0123456789abcdef")
	mn := newMockNet(t, "n0", "n1", "nokey", "wrongkey", "dup")
	seed, seedLog := guardedMember(t, mn, "n0", "n0", key)
	n1, _ := guardedMember(t, mn, "n1", "n1", key)
	ctx := context.Background()
	if _, err := n1.Join(ctx, []string{seed.Addr()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tr, name string
		key      []byte
		want     string
	}{
		{"nokey", "intruder", nil, "gossip_key"},
		{"wrongkey", "intruder2", []byte("fedcba9876543210"), "gossip_key"},
		{"dup", "n1", key, "name_conflict"},
	} {
		before := len(seedLog.reasons())
		m, _ := guardedMember(t, mn, c.tr, c.name, c.key)
		jctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := m.Join(jctx, []string{seed.Addr()})
		cancel()
		if err == nil {
			t.Errorf("%s: join succeeded", c.tr)
		}
		if c.want == "name_conflict" && !errors.Is(err, ErrNameTaken) {
			t.Errorf("%s: join error %v, want ErrNameTaken", c.tr, err)
		}
		if c.want == "gossip_key" && !strings.Contains(err.Error(), "gossip key") {
			t.Errorf("%s: join error %v does not say the gossip key may be missing", c.tr, err)
		}
		m.Shutdown()
		time.Sleep(100 * time.Millisecond)
		got := seedLog.reasons()[before:]
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: seed reported %v, want exactly one %s", c.tr, got, c.want)
		}
	}
	// The member whose name was claimed is still there, at its own address.
	if p, ok := seed.Peer("n1"); !ok || !p.Alive || p.Addr != n1.Addr() {
		t.Errorf("after the name conflict the seed sees n1 as %+v (ok %v), want alive at %s", p, ok, n1.Addr())
	}
	seedLog.mu.Lock()
	for _, r := range seedLog.rs {
		if r.Remote == "" || r.Detail == "" {
			t.Errorf("refusal without remote address or detail: %+v", r)
		}
	}
	seedLog.mu.Unlock()
}

// A flood of refused traffic is reported at a bounded rate; what was
// dropped is counted in the next report.
func TestGossipGuardRateLimited(t *testing.T) {
	var got []GossipRefusal
	g := newGossipGuard("me", func(r GossipRefusal) { got = append(got, r) }, slog.New(slog.DiscardHandler))
	for range 1000 {
		g.Write([]byte("[ERR] memberlist: failed to receive: No installed keys could decrypt the message from=10.0.0.1:7946\n"))
	}
	g.Write([]byte("[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n"))
	if len(got) == 0 || len(got) > 25 {
		t.Fatalf("%d reports for 1000 refused streams, want a burst of ≤ 25", len(got))
	}
	if got[0].Remote != "10.0.0.1:7946" || got[0].Reason != "gossip_key" {
		t.Errorf("report %+v", got[0])
	}
	time.Sleep(300 * time.Millisecond)
	g.Write([]byte("[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=10.0.0.1:7946\n"))
	if last := got[len(got)-1]; !strings.Contains(last.Detail, "not reported") {
		t.Errorf("the report after the flood does not count the dropped ones: %q", last.Detail)
	}
}
