package main

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/sim"
	"github.com/edgesplit/edgesplit/transport/linkem"
)

// TestSimLinkProfilesMatchLinkem keeps the simulator's link table (sim may
// not import transport) equal to the emulator's profiles, so a scenario and
// an emulated run of the same profile describe the same link.
func TestSimLinkProfilesMatchLinkem(t *testing.T) {
	if got, want := sim.LinkProfileNames(), linkem.ProfileNames(); !slices.Equal(got, want) {
		t.Fatalf("sim profiles %v, linkem profiles %v", got, want)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 0.03*math.Max(a, b) }
	for _, p := range linkem.Profiles() {
		sp, _ := sim.LinkProfileNamed(p.Name)
		if !near(sp.UpMbps*1e6, p.Up.MeanRate()) || !near(sp.DownMbps*1e6, p.Down.MeanRate()) {
			t.Errorf("%s: sim %g/%g Mbit/s, linkem %.3g/%.3g", p.Name, sp.UpMbps, sp.DownMbps, p.Up.MeanRate()/1e6, p.Down.MeanRate()/1e6)
		}
		if d := time.Duration(sp.DelayMs * float64(time.Millisecond)); d != p.Up.Delay || d != p.Down.Delay {
			t.Errorf("%s: sim one-way delay %v, linkem %v up / %v down", p.Name, d, p.Up.Delay, p.Down.Delay)
		}
	}
}
