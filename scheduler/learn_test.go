package scheduler

import (
	"testing"
	"time"
)

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
		if got := ProbeSize(tc.up); got != tc.want {
			t.Errorf("ProbeSize(%g) = %d, want %d", tc.up, got, tc.want)
		}
	}
}

func TestProbeWait(t *testing.T) {
	for _, tc := range []struct {
		airtime, want time.Duration
	}{
		{-time.Millisecond, ProbeInterval},
		{10 * time.Millisecond, ProbeInterval},
		{100 * time.Millisecond, 2 * time.Second}, // 5 % duty
		{time.Second, MaxProbeInterval},
	} {
		if got := ProbeWait(tc.airtime); got != tc.want {
			t.Errorf("ProbeWait(%v) = %v, want %v", tc.airtime, got, tc.want)
		}
	}
}

func TestRateLearner(t *testing.T) {
	var l RateLearner
	l.Observe(1e6, 2*time.Millisecond) // light first sample: dropped
	if l.Value() != 0 {
		t.Fatalf("a light first sample set the estimate to %g", l.Value())
	}
	l.Observe(2e6, 20*time.Millisecond) // full: sets it
	if l.Value() != 2e6 {
		t.Fatalf("first full sample: %g, want 2e6", l.Value())
	}
	l.Observe(1e6, 10*time.Millisecond) // full: half way
	if l.Value() != 1.5e6 {
		t.Fatalf("after a full sample: %g, want 1.5e6", l.Value())
	}
	l.Observe(0.5e6, time.Millisecond) // 1/10 weight: moves 5 %
	if got, want := l.Value(), 1.5e6-0.05*1e6; got != want {
		t.Fatalf("after a 1/10 sample: %g, want %g", got, want)
	}
	l.Observe(-1, time.Second) // ignored
	l.Observe(1, 0)
	if got, want := l.Value(), 1.45e6; got != want {
		t.Fatalf("invalid samples moved the estimate to %g", got)
	}
}
