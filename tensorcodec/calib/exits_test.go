package calib

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/tensorcodec"
)

// TestExitsMNIST calibrates lenet-exits' exits on labelled MNIST test
// digits and checks the table against a direct count: each exit's right
// answers, and one threshold policy recomputed from the engine's outputs.
func TestExitsMNIST(t *testing.T) {
	g, err := model.Simplify(zoo.LenetExits(3), nil)
	if err != nil {
		t.Fatal(err)
	}
	src, desc, err := Open(context.Background(), "mnist", g, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	l, ok := src.(Labelled)
	if !ok || len(l.Labels()) != 100 {
		t.Fatalf("mnist source: labelled %v", ok)
	}
	tab, err := Exits(context.Background(), ExitsConfig{Graph: g, Inputs: src, Labels: l.Labels(), SourceName: desc})
	if err != nil {
		t.Fatal(err)
	}
	if tab.Samples != 100 || len(tab.Exits) != 3 || tab.Exits[0].Name != zoo.Exit1Name || tab.Exits[2].End != len(g.Nodes) {
		t.Fatalf("table: %d samples, exits %+v", tab.Samples, tab.Exits)
	}
	// Recount with the engine.
	net, err := model.Compile(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := net.NewExtractor()
	exits, _ := partition.Exits(g)
	right := make([]int, 3)
	policyRight := 0 // terminal 2, both exits early at 0.9
	for i := 0; i < src.Len(); i++ {
		in, _ := src.Input(i)
		outs, err := ex.Run(context.Background(), in...)
		if err != nil {
			t.Fatal(err)
		}
		at := 2
		for j, e := range exits {
			class, conf, err := partition.Confidence(outs[e.Output], e.Probs)
			if err != nil {
				t.Fatal(err)
			}
			if class == l.Labels()[i] {
				right[j]++
			}
			if j < 2 && at == 2 && float64(conf) >= 0.9 {
				at = j
			}
		}
		if c, _, _ := partition.Confidence(outs[exits[at].Output], true); c == l.Labels()[i] {
			policyRight++
		}
	}
	for j := range right {
		if tab.Exits[j].Correct != right[j] {
			t.Errorf("exit %d: table says %d right, the engine %d", j, tab.Exits[j].Correct, right[j])
		}
	}
	found := false
	for _, p := range tab.Policies {
		if p.Terminal == 2 && p.Early == 2 && p.Threshold == 0.9 {
			found = true
			if p.Correct != policyRight {
				t.Errorf("policy (final, 2 early, 0.9): %d right, recount %d", p.Correct, policyRight)
			}
		}
	}
	if !found {
		t.Error("policy (final, 2 early, 0.9) not measured")
	}
	// Bad configurations.
	single, err := model.Simplify(zoo.LeNet5(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]ExitsConfig{
		"no graph":      {Inputs: src, Labels: l.Labels()},
		"labels short":  {Graph: g, Inputs: src, Labels: l.Labels()[:10]},
		"single output": {Graph: single, Inputs: src, Labels: l.Labels()},
	} {
		if _, err := Exits(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", name, err)
		}
	}
}

// TestEnsureCalibratesExits: a multi-exit model calibrated on labelled data
// gets its exit table in the saved calibration.
func TestEnsureCalibratesExits(t *testing.T) {
	if testing.Short() {
		t.Skip("calibrates every cut")
	}
	g, err := model.Simplify(zoo.LenetExits(3), nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.calib.json")
	tab, made, err := Ensure(context.Background(), EnsureConfig{Graph: g, ModelID: "m", ModelVersion: "v", TablePath: path,
		Source: "mnist", Samples: 40, Run: Config{Presets: []tensorcodec.Preset{tensorcodec.PresetLossless}, SpeedTime: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if !made || tab.Exits == nil || tab.Exits.Samples != 40 {
		t.Fatalf("made %v, exits %+v", made, tab.Exits)
	}
	back, made, err := Ensure(context.Background(), EnsureConfig{Graph: g, ModelID: "m", ModelVersion: "v", TablePath: path})
	if err != nil || made || back.Exits == nil || len(back.Exits.Policies) != len(tab.Exits.Policies) {
		t.Fatalf("reloaded: made %v, err %v", made, err)
	}
}
