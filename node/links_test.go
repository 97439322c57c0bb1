package node

import (
	"io"
	"strings"
	"testing"
	"time"
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
			var l linkEstimate
			l.up.Alpha = upAlpha
			l.observeUp(200_000, 100*time.Millisecond, est) // 2 MB/s
			l.observeUp(tc.n, tc.d, est)
			if got := l.upRate(); got < tc.min || got > tc.max {
				t.Errorf("estimate %.3g B/s, want in [%.3g, %.3g]", got, tc.min, tc.max)
			}
		})
	}
	var l linkEstimate
	l.observeUp(400, 5*time.Millisecond, est) // a light sample does not replace the prior
	if l.upRate() != 0 {
		t.Errorf("a light first sample set the estimate to %.3g", l.upRate())
	}
}

func TestProbeSize(t *testing.T) {
	for _, tc := range []struct {
		up   float64 // bytes/s
		want int
	}{
		{1.1e6 / 8, MinProbeBytes},  // 3G: 50 ms is 6.9 kB
		{6.3e6 / 8, 39375},          // LTE: 50 ms
		{18.9e6 / 8, MaxProbeBytes}, // Wi-Fi: capped
		{0, MinProbeBytes},
	} {
		if got := probeSize(tc.up); got != tc.want {
			t.Errorf("probeSize(%g) = %d, want %d", tc.up, got, tc.want)
		}
	}
}

func TestRTTEstimate(t *testing.T) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	type p struct {
		d      float64
		loaded bool
	}
	for _, tc := range []struct {
		name  string
		pings []p // oldest first
		want  time.Duration
	}{
		{"none", nil, 0},
		{"path got longer: the last clean pings", []p{{10, false}, {10, false}, {10, false}, {30, false}, {31, false}, {29, false}}, ms(30)},
		{"pings behind the edge's own upload are skipped", []p{{30, false}, {29, false}, {90, true}, {31, false}, {120, true}}, ms(30)},
		{"too few clean pings: the least of the window", []p{{10, false}, {80, true}, {75, true}, {32, false}, {90, true}}, ms(10)},
		{"older than the window is forgotten", []p{{5, false}, {40, true}, {41, true}, {42, true}, {43, true}, {44, true}, {45, true}}, ms(40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l linkEstimate
			for _, x := range tc.pings {
				l.observePing(ms(x.d), x.loaded)
			}
			if got := l.rtt(); got != tc.want {
				t.Errorf("rtt() = %v, want %v", got, tc.want)
			}
		})
	}
	var l linkEstimate
	u := l.upload(strings.NewReader("boundary"))
	if !l.busy() {
		t.Error("not busy during an upload")
	}
	io.Copy(io.Discard, u)
	u.done() // idempotent after EOF
	if l.busy() {
		t.Error("still busy after the body was read")
	}
}
