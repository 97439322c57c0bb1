package sim

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func crScenario(t *testing.T, model, plan string, devices int) *Scenario {
	t.Helper()
	dir, err := filepath.Abs("../internal/cellreplay/testdata")
	if err != nil {
		t.Fatal(err)
	}
	s, err := QuickScenario(Quick{Devices: devices, Model: model, Link: "lte", Duration: 60 * time.Second, Slowdown: 3, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	s.Edges[0].Link = LinkSpec{DownMbps: 30, CellReplay: &CellReplaySpec{UpLight: filepath.Join(dir, "light-up"), UpHeavy: filepath.Join(dir, "heavy-up"),
		DownLight: filepath.Join(dir, "light-up"), DownHeavy: filepath.Join(dir, "heavy-up"), Model: plan}}
	s.Edges[0].Arrivals = Arrivals{Process: "periodic", FPS: 2}
	s.Estimation.Interval = Duration(100 * time.Millisecond)
	if err := s.validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

// On a burst-aware (CellReplay) link the planners' prediction error with
// the burst-aware transfer term against the plain one; the numbers go to
// docs/benchmarks.md.
func TestCellReplayLinkPredictionError(t *testing.T) {
	for _, model := range []string{"lenet5", "mobilenetv2", "resnet18"} {
		t.Run(model, func(t *testing.T) {
			var sums [2]*Summary
			for i, plan := range []string{"plain", "burst"} {
				for _, pol := range []string{"cloud-only", "auto"} {
					s := crScenario(t, model, plan, 20)
					s.Policy = pol
					sum, err := Run(context.Background(), s, Config{})
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("%s %s model, %s: prediction error %.1f %%, mean %.1f ms, p95 %.1f ms, %d/%d offloaded",
						model, plan, pol, 100*sum.MeanPredErr, float64(sum.Mean)/1e6, float64(sum.P95)/1e6, sum.Offloaded, sum.Requests)
					if pol == "cloud-only" {
						sums[i] = sum
					}
				}
			}
			if sums[1].MeanPredErr > sums[0].MeanPredErr+0.005 {
				t.Errorf("burst-aware error %.3f above plain %.3f", sums[1].MeanPredErr, sums[0].MeanPredErr)
			}
		})
	}
}

func TestCellReplayScenarioErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(s *Scenario)
		field string
	}{
		{"no heavy", func(s *Scenario) { s.Edges[0].Link.CellReplay.UpHeavy = "" }, "edges[0].link.cellreplay"},
		{"half a down pair", func(s *Scenario) { s.Edges[0].Link.CellReplay.DownHeavy = "" }, "edges[0].link.cellreplay"},
		{"model", func(s *Scenario) { s.Edges[0].Link.CellReplay.Model = "fancy" }, "edges[0].link.cellreplay.model"},
		{"with a trace", func(s *Scenario) { s.Edges[0].Link.TraceUp = "up.trace" }, "edges[0].link.cellreplay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := crScenario(t, "lenet5", "", 1)
			tc.edit(s)
			var se *ScenarioError
			if err := s.validate(); !errors.As(err, &se) || se.Field != tc.field {
				t.Fatalf("validate = %v, want an error on %s", err, tc.field)
			}
		})
	}
	// A light trace that does not parse is a scenario error naming it.
	s := crScenario(t, "lenet5", "", 1)
	s.Edges[0].Link.CellReplay.UpLight = s.Edges[0].Link.CellReplay.UpHeavy // one field per line: not a light trace
	var se *ScenarioError
	if _, err := Run(context.Background(), s, Config{}); !errors.As(err, &se) || se.Field != "edges[0].link.cellreplay" {
		t.Fatalf("Run = %v", err)
	}
}
