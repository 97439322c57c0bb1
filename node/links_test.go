package node

import (
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
)

func TestOverheadEstimateIgnoresSpikes(t *testing.T) {
	var o overheadEstimate
	if o.value() != 0 {
		t.Fatalf("no residuals: %v, want 0", o.value())
	}
	for i := range 30 {
		r := 40 * time.Microsecond
		if i%5 == 0 {
			r = 5 * time.Millisecond // a preemption, capped at maxOverhead
		}
		o.observe(r)
	}
	if got := o.value(); got != 40*time.Microsecond {
		t.Errorf("median of residuals with spikes: %v, want 40µs", got)
	}
	for range overheadWindow {
		o.observe(-time.Millisecond) // the profile overestimates: no negative overhead
	}
	if got := o.value(); got != 0 {
		t.Errorf("negative residuals: %v, want 0", got)
	}
}

func TestObserveUpWeighsBySerialisation(t *testing.T) {
	const est = 2e6 // bytes/s: 16 Mbit/s
	for _, tc := range []struct {
		name     string
		n        int64
		d        time.Duration
		min, max float64 // estimate after a full sample at est, then this one
	}{
		// 400 bytes take 0.2 ms at est; measured as 5 ms (jitter) they
		// read as 80 kB/s but weigh 1/50: the estimate barely moves.
		{"tiny boundary", 400, 5 * time.Millisecond, 1.95e6, est},
		// 100 kB take 50 ms at est: a full sample of 1 MB/s.
		{"large boundary", 100_000, 100 * time.Millisecond, 1.49e6, 1.51e6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLinkEstimate(&accessLink{})
			l.observeUp(200_000, 100*time.Millisecond, est) // 2 MB/s
			l.observeUp(tc.n, tc.d, est)
			if got := l.upRate(); got < tc.min || got > tc.max {
				t.Errorf("estimate %.3g B/s, want in [%.3g, %.3g]", got, tc.min, tc.max)
			}
		})
	}
	l := newLinkEstimate(&accessLink{})
	l.observeUp(400, 5*time.Millisecond, est) // a light sample does not replace the prior
	if l.upRate() != 0 {
		t.Errorf("a light first sample set the estimate to %.3g", l.upRate())
	}
}

// The access link is shared: a slower uplink seen on one path lowers the
// other's estimate; a path slower than the access link keeps its own.
func TestUplinkSharedByPaths(t *testing.T) {
	var acc accessLink
	a, b := newLinkEstimate(&acc), newLinkEstimate(&acc)
	a.observeTimedUp(200_000, 100*time.Millisecond) // 2 MB/s
	b.observeTimedUp(200_000, 100*time.Millisecond)
	for range 4 {
		a.observeTimedUp(80_000, 100*time.Millisecond) // the radio drops to 0.8 MB/s
	}
	if got := b.upRate(); got > 0.9e6 {
		t.Errorf("b's uplink after a's transfers saw the drop: %.3g B/s, want ≈ 0.8e6", got)
	}
	c := newLinkEstimate(&acc)
	c.observeTimedUp(20_000, 100*time.Millisecond) // behind a slow backhaul
	if got := c.upRate(); got != 0.2e6 {
		t.Errorf("c's own slower path: %.3g B/s, want 0.2e6", got)
	}
}

func TestRTTEstimate(t *testing.T) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	t0 := time.Unix(1000, 0)
	type p struct {
		d      float64
		loaded bool
	}
	for _, tc := range []struct {
		name  string
		pings []p // oldest first, 100 ms apart
		want  time.Duration
	}{
		{"none", nil, 0},
		{"path got longer: the last clean pings", []p{{10, false}, {10, false}, {10, false}, {30, false}, {31, false}, {29, false}}, ms(30)},
		{"pings behind the edge's own upload are skipped", []p{{30, false}, {29, false}, {90, true}, {31, false}, {120, true}}, ms(30)},
		{"too few clean pings: the least of the window", []p{{10, false}, {80, true}, {75, true}, {32, false}, {90, true}}, ms(10)},
		{"older than the window is forgotten", []p{{5, false}, {40, true}, {41, true}, {42, true}, {43, true}, {44, true}, {45, true}}, ms(40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLinkEstimate(&accessLink{})
			for i, x := range tc.pings {
				l.observePingAt(t0.Add(time.Duration(i)*100*time.Millisecond), ms(x.d), x.loaded)
			}
			if got := l.rttAt(t0.Add(time.Second)); got != tc.want {
				t.Errorf("rtt = %v, want %v", got, tc.want)
			}
		})
	}

	// A path without fresh clean samples of its own takes the access
	// link's: the edge sends to a, and b's pings queue behind it.
	var acc accessLink
	a, b := newLinkEstimate(&acc), newLinkEstimate(&acc)
	for i := range 3 {
		b.observePingAt(t0.Add(time.Duration(i)*100*time.Millisecond), ms(30), false)
	}
	for i := range 3 {
		at := t0.Add(2*time.Second + time.Duration(i)*100*time.Millisecond)
		a.observePingAt(at, ms(55), false) // the uploads' own RTTs: the link got longer
		b.observePingAt(at, ms(150), true)
	}
	now := t0.Add(2500 * time.Millisecond)
	if got := b.rttAt(now); got != ms(55) {
		t.Errorf("b with stale samples: rtt %v, want the access link's 55ms", got)
	}
	if got := b.rttAt(t0.Add(300 * time.Millisecond)); got != ms(30) {
		t.Errorf("b with fresh samples: rtt %v, want its own 30ms", got)
	}

	u := a.upload(strings.NewReader("boundary"))
	if !a.busy() || !b.busy() {
		t.Error("not busy during an upload (the access link is shared)")
	}
	io.Copy(io.Discard, u)
	u.done() // idempotent after EOF
	if a.busy() {
		t.Error("still busy after the body was read")
	}
}

// learnUpload takes the RTT and the uplink from the cloud's timing of the
// body's arrival when it has one, else from the network time.
func TestLearnUpload(t *testing.T) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	est := scheduler.LinkEstimate{RTT: ms(10), Up: 2e6, Down: 6e6}
	timed := segmentResponse{RecvTime: ms(49), RecvBytes: 98_000}
	for _, tc := range []struct {
		name    string
		rh      segmentResponse
		loaded  bool
		wantRTT time.Duration
		wantUp  float64
	}{
		// 100 kB: 2 kB came with the first read (1 ms at est), 98 kB in
		// 49 ms (2 MB/s); 80 ms of network time less those and 1 ms of
		// download leaves a 29 ms RTT.
		{"timed", timed, false, ms(29), 2e6},
		{"timed, behind another upload: no RTT sample", timed, true, 0, 2e6},
		// Untimed: the RTT sample is the network time less the whole
		// body at est and the download; the uplink the network time
		// less the prior RTT: 100 kB in 69 ms.
		{"untimed", segmentResponse{}, false, ms(80 - 50 - 1), 100_000 / ms(69).Seconds()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLinkEstimate(&accessLink{})
			l.learnUpload(100_000, ms(80), ms(1), est, tc.rh, tc.loaded)
			if got := l.rttAt(time.Now()); got != tc.wantRTT {
				t.Errorf("rtt %v, want %v", got, tc.wantRTT)
			}
			if got := l.upRate(); math.Abs(got-tc.wantUp) > 1 {
				t.Errorf("uplink %.6g B/s, want %.6g", got, tc.wantUp)
			}
		})
	}
}
