package sim

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Energy per request under the energy objective against the latency-optimal
// plans, on three links: the energy planner never spends more, and the
// summary's split adds up. The numbers go to docs/benchmarks.md.
func TestEnergyObjectiveOnThreeLinks(t *testing.T) {
	for _, tc := range []struct {
		model, link string
		fps         float64
	}{
		{"alexnet", "3g", 0.2}, {"alexnet", "lte", 0.2}, {"alexnet", "wifi", 0.2}, {"alexnet", "5g-midband", 0.2},
		{"alexnet", "lte", 2}, {"alexnet", "5g-midband", 2}, {"mobilenetv2", "wifi", 2},
	} {
		t.Run(fmt.Sprintf("%s-%s-%gfps", tc.model, tc.link, tc.fps), func(t *testing.T) {
			var got [3]*Summary
			for i, obj := range []string{"latency", "energy", "weighted"} {
				s, err := QuickScenario(Quick{Devices: 10, Model: tc.model, Link: tc.link, Duration: 30 * time.Second,
					Slowdown: 3, Objective: obj, Seed: 3})
				if err != nil {
					t.Fatal(err)
				}
				s.Edges[0].Arrivals = Arrivals{Process: "periodic", FPS: tc.fps}
				sum, err := Run(context.Background(), s, Config{})
				if err != nil {
					t.Fatal(err)
				}
				if sum.Objective != obj {
					t.Fatalf("summary objective %q", sum.Objective)
				}
				parts := sum.EnergyComputeJ + sum.EnergyRadioJ + sum.EnergyTailJ
				if d := parts - sum.EdgeEnergyJ; d > 1e-6*sum.EdgeEnergyJ || d < -1e-6*sum.EdgeEnergyJ {
					t.Fatalf("energy parts %v J, total %v J", parts, sum.EdgeEnergyJ)
				}
				got[i] = sum
			}
			lat, en, wt := got[0], got[1], got[2]
			t.Logf("| %s | %s | %g | %.0f mJ, %.0f ms (%d/%d offloaded) | %.0f mJ, %.0f ms (%d offloaded) | %.0f mJ, %.0f ms |",
				tc.model, tc.link, tc.fps, lat.EnergyPerRequestMJ, float64(lat.Mean)/1e6, lat.Offloaded, lat.Requests,
				en.EnergyPerRequestMJ, float64(en.Mean)/1e6, en.Offloaded, wt.EnergyPerRequestMJ, float64(wt.Mean)/1e6)
			if en.EnergyPerRequestMJ > lat.EnergyPerRequestMJ*1.001 {
				t.Errorf("energy objective spent %.2f mJ/request, latency objective %.2f", en.EnergyPerRequestMJ, lat.EnergyPerRequestMJ)
			}
		})
	}
}

func TestObjectiveScenarioErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(s *Scenario)
		field string
	}{
		{"objective", func(s *Scenario) { s.Objective = "joules" }, "objective"},
		{"weight", func(s *Scenario) { s.EnergyWeight = -1 }, "energy_weight"},
		{"class objective", func(s *Scenario) { s.Edges[0].Objective = "fast" }, "edges[0].objective"},
		{"device", func(s *Scenario) { s.Edges[0].Power.Device = "toaster" }, "edges[0].power.device"},
		{"radio", func(s *Scenario) { s.Edges[0].Power.Radio = "6g" }, "edges[0].power.radio"},
		{"tail", func(s *Scenario) { s.Edges[0].Power.Tail = -1 }, "edges[0].power"},
		{"tail power", func(s *Scenario) { s.Edges[0].Power.TailMW = -1 }, "edges[0].power.tail_mw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := QuickScenario(Quick{Devices: 1, Model: "mobilenetv2"})
			if err != nil {
				t.Fatal(err)
			}
			tc.edit(s)
			var se *ScenarioError
			if err := s.validate(); !errors.As(err, &se) || se.Field != tc.field {
				t.Fatalf("validate = %v, want an error on %s", err, tc.field)
			}
		})
	}
}
