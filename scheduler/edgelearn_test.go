package scheduler

import (
	"testing"
	"time"
)

// The learner never reads a clock: the same observations at the same
// (injected) times give the same estimates, and time only moves through
// the arguments.
func TestEdgeLearnerRTT(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	var l EdgeLearner
	if got := l.RTT("a", t0); got != 0 {
		t.Fatalf("nothing learned: %v", got)
	}
	for i := range 3 {
		l.ObservePing("b", t0.Add(time.Duration(i)*100*time.Millisecond), ms(30), false)
	}
	for i := range 3 {
		at := t0.Add(2*time.Second + time.Duration(i)*100*time.Millisecond)
		l.ObservePing("a", at, ms(55), false)
		l.ObservePing("b", at, ms(150), true) // queued behind a's uploads
	}
	if got := l.RTT("b", t0.Add(2500*time.Millisecond)); got != ms(55) {
		t.Errorf("b stale: %v, want the access link's 55ms", got)
	}
	if got := l.RTT("b", t0.Add(300*time.Millisecond)); got != ms(30) {
		t.Errorf("b fresh: %v, want its own 30ms", got)
	}
	if got := l.RTT("b", t0.Add(time.Hour)); got != ms(30) {
		t.Errorf("everything stale: %v, want b's own median", got)
	}
	if got := l.RTT("c", t0.Add(2500*time.Millisecond)); got != ms(55) {
		t.Errorf("c never pinged: %v, want the access link's", got)
	}
	prior := LinkEstimate{RTT: ms(9), Up: 1, Down: 2}
	if got := l.Link("c", t0.Add(time.Hour), prior); got != prior {
		t.Errorf("c with nothing fresh and no samples of its own: %+v, want the prior", got)
	}
}

func TestEdgeLearnerUplink(t *testing.T) {
	t0 := time.Unix(0, 0)
	var l EdgeLearner
	l.ObserveTimed("a", t0, 200_000, 100*time.Millisecond) // 2 MB/s
	l.ObserveTimed("b", t0, 200_000, 100*time.Millisecond)
	for range 4 {
		l.ObserveTimed("a", t0, 80_000, 100*time.Millisecond) // the radio drops
	}
	if got := l.Up("b"); got > 0.9e6 {
		t.Errorf("b after a saw the drop: %.3g, want scaled down with the access link", got)
	}
	l.ObserveTimed("c", t0, 20_000, 100*time.Millisecond)
	if got := l.Up("c"); got != 0.2e6 {
		t.Errorf("c behind a slow backhaul: %.6g, want its own 0.2e6", got)
	}
	if got := l.Up("d"); got != l.up.Value() {
		t.Errorf("d with no samples: %.6g, want the access link's %.6g", got, l.up.Value())
	}
	l.ObserveTimed("e", t0, MinTimedBytes-1, time.Millisecond)
	if _, ok := l.paths["e"]; ok {
		t.Error("a timing under MinTimedBytes was learned")
	}
}

func TestEdgeLearnerProbes(t *testing.T) {
	t0 := time.Unix(0, 0)
	var l EdgeLearner
	clouds := []string{"a", "b", "c"}
	now := t0
	var order []string
	for range 4 {
		c, ok := l.ProbeTarget(now, clouds)
		if !ok {
			t.Fatalf("no probe due at %v", now.Sub(t0))
		}
		order = append(order, c)
		if _, again := l.ProbeTarget(now.Add(time.Hour), clouds); again {
			t.Fatal("a second probe while one is in flight")
		}
		l.ProbeDone(now, 300*time.Millisecond, true) // 0.3 s: the next waits MaxProbeInterval
		if l.ProbeDue(now.Add(MaxProbeInterval - 1)) {
			t.Fatal("probe due before ProbeWait")
		}
		now = now.Add(ProbeWait(300 * time.Millisecond))
	}
	if got := order; got[0] != "a" || got[1] != "b" || got[2] != "c" || got[3] != "a" {
		t.Errorf("probe targets %v, want the least recently probed in turn", got)
	}
	l.ProbeTarget(now, clouds)
	l.ProbeDone(now, 0, false)
	if !l.ProbeDue(now.Add(ProbeInterval)) || l.ProbeDue(now.Add(ProbeInterval-1)) {
		t.Error("a failed probe: the next should wait ProbeInterval")
	}
	if _, ok := l.ProbeTarget(now.Add(time.Hour), nil); ok || !l.ProbeDue(now.Add(time.Hour)) {
		t.Error("no cloud: no probe, and none marked in flight")
	}
}

func TestOverheadAndRatios(t *testing.T) {
	var o OverheadLearner
	for i := range 30 {
		r := 40 * time.Microsecond
		if i%5 == 0 {
			r = 5 * time.Millisecond
		}
		o.Observe(r)
	}
	if got := o.Value(); got != 40*time.Microsecond {
		t.Errorf("overhead %v, want the median 40µs", got)
	}
	codecs := []CodecModel{{Name: "x", CutRatios: []float64{2, 0}}, {Name: "y", CutRatios: []float64{3}}}
	ObserveCutRatio(codecs, "x", 0, 400, 100) // 4: halfway from 2
	ObserveCutRatio(codecs, "x", 1, 500, 100) // none yet: 5
	ObserveCutRatio(codecs, "x", 2, 500, 100) // out of range
	ObserveCutRatio(codecs, "y", 0, 0, 100)   // nothing sent
	if c := codecs[0].CutRatios; c[0] != 3 || c[1] != 5 || codecs[1].CutRatios[0] != 3 {
		t.Errorf("ratios %v %v", codecs[0].CutRatios, codecs[1].CutRatios)
	}
}
