package node

import (
	"testing"
	"time"
)

func TestExitGuards(t *testing.T) {
	var g exitGuards
	t0 := time.Unix(1000, 0)
	if e, c := g.margins("m", t0); e != 0 || c != 0 {
		t.Fatalf("no errors yet: margins %v %v", e, c)
	}
	// A plan's first answer (it compiled the pieces) is not kept.
	g.observe(t0, "m", "e", false, time.Hour, 0)
	g.observe(t0, "m", "c", true, time.Hour, 0)
	if e, c := g.margins("m", t0); e != 0 || c != 0 {
		t.Fatalf("first answers kept: margins %v %v", e, c)
	}
	// With fewer errors than 1/(1-q) the margin is the largest; early
	// answers (negative errors) count as none.
	g.observe(t0, "m", "e", false, 10*time.Millisecond, 12*time.Millisecond)
	g.observe(t0, "m", "e", false, 13*time.Millisecond, 12*time.Millisecond)
	g.observe(t0, "m", "c", true, 50*time.Millisecond, 40*time.Millisecond)
	if e, c := g.margins("m", t0); e != time.Millisecond || c != 10*time.Millisecond {
		t.Fatalf("margins %v %v, want 1ms 10ms", e, c)
	}
	// A full window: one spike among 128 is beyond the 99th percentile and
	// is ignored; after another 128 answers it is forgotten altogether.
	g.observe(t0, "m", "c", true, time.Second, 0)
	for range errWindowSize - 1 {
		g.observe(t0, "m", "c", true, 2*time.Millisecond, 0)
	}
	if _, c := g.margins("m", t0); c != 2*time.Millisecond {
		t.Fatalf("cloud margin %v with one spike in the window, want 2ms", c)
	}
	g.observe(t0, "m", "c", true, time.Second, 0)
	g.observe(t0, "m", "c", true, time.Second, 0)
	if _, c := g.margins("m", t0); c != time.Second {
		t.Fatalf("cloud margin %v with two spikes in the window, want 1s", c)
	}
	if e, c := g.margins("other", t0); e != 0 || c != 0 {
		t.Fatalf("another model: margins %v %v", e, c)
	}
	// Errors expire: a path the plans avoid is tried again.
	if _, c := g.margins("m", t0.Add(exitGuardTTL+time.Second)); c != 0 {
		t.Fatalf("cloud margin %v after the errors expired, want 0", c)
	}
}
