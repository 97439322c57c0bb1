package calib

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
)

func seedCNN(t testing.TB) *model.Graph {
	t.Helper()
	g, _, err := zoo.SeedCNNTrained()
	if err != nil {
		t.Fatal(err)
	}
	sg, err := model.Simplify(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

// TestCalibrateMNIST calibrates the embedded trained seed-cnn on real MNIST
// test digits: lossless agrees everywhere by construction and compresses the
// 8-bit input; the table validates and, applied to the scheduler's codecs,
// allows exactly what the counts certify.
func TestCalibrateMNIST(t *testing.T) {
	g := seedCNN(t)
	n := 300
	if testing.Short() {
		n = 120
	}
	src, desc, err := Open(context.Background(), "mnist", g, nil, n)
	if err != nil {
		t.Fatal(err)
	}
	var progress []int
	res, err := Run(context.Background(), Config{Graph: g, ModelID: "seed-cnn-trained", ModelVersion: "v", Inputs: src, SourceName: desc,
		SpeedTime: 5 * time.Millisecond, Progress: func(done, total int) { progress = append(progress, done) },
		Now: func() time.Time { return time.Unix(1, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(progress) != n || progress[n-1] != n {
		t.Errorf("progress %v, want 1..%d", progress, n)
	}
	tab := res.Table
	if err := tab.Validate(); err != nil {
		t.Fatal(err)
	}
	if tab.Data.Samples != n || tab.Data.Source != "mnist:test[0:"+strconv.Itoa(n)+"]" || tab.Data.Digest == "" {
		t.Errorf("data %+v", tab.Data)
	}
	if len(res.Rows) != len(tab.Cuts)*len(tensorcodec.Presets()) || len(tab.Cuts) == 0 || tab.Cuts[0].K != 0 {
		t.Fatalf("%d rows for %d cuts", len(res.Rows), len(tab.Cuts))
	}
	for _, r := range res.Rows {
		if r.Preset == tensorcodec.PresetLossless {
			if !r.Exact || r.Agree != n || r.Samples != n {
				t.Errorf("lossless at cut %d: %+v", r.K, r.Agreement)
			}
			if r.MaxAbsErr != 0 {
				t.Errorf("lossless at cut %d: max error %v", r.K, r.MaxAbsErr)
			}
		}
		if r.Ratio <= 0 || r.EncodeMBps <= 0 || r.DecodeMBps <= 0 {
			t.Errorf("cut %d %s: ratio %v, speeds %v/%v", r.K, r.Preset, r.Ratio, r.EncodeMBps, r.DecodeMBps)
		}
		if r.Agree > r.Samples || (!r.Stopped && r.Samples != n) {
			t.Errorf("cut %d %s: %d of %d (stopped %v)", r.K, r.Preset, r.Agree, r.Samples, r.Stopped)
		}
	}
	// The input cut of an MNIST model is 8-bit data: the lossless preset
	// must compress it well beyond float32.
	if m := tab.Cuts[0].Codecs["lossless"]; m.Ratio < 2 {
		t.Errorf("lossless ratio on MNIST digits %.2f, want ≥ 2", m.Ratio)
	}
	base := []scheduler.CodecModel{{Name: "lossless", Ratio: 1, Fidelity: scheduler.Exact}, {Name: "int4-zstd", Ratio: 10}}
	cs := tab.Apply(base)
	for _, cut := range tab.Cuts {
		m := cut.Codecs["int4-zstd"]
		want := m.Samples > 0 && m.Lower(0.95) >= 0.999
		if got := cs[1].AllowedAt(cut.K, scheduler.AccuracyBudget{}); got != want {
			t.Errorf("int4 at cut %d (%d/%d): allowed %v, want %v", cut.K, m.Agree, m.Samples, got, want)
		}
		if n < 2700 && cs[1].AllowedAt(cut.K, scheduler.AccuracyBudget{}) {
			t.Errorf("%d samples certified 99.9 %% at cut %d", n, cut.K)
		}
	}
}

// TestStopEarly: a preset that keeps changing answers is dropped at a cut
// long before the end, with the counts it had.
func TestStopEarly(t *testing.T) {
	g := seedCNN(t)
	src, _, err := Open(context.Background(), "mnist", g, nil, 400)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Config{Graph: g, Inputs: src, SpeedTime: time.Millisecond, StopBelow: 0.9999,
		Presets: []tensorcodec.Preset{tensorcodec.PresetInt4Zstd}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := 0
	for _, r := range res.Rows {
		if r.Stopped {
			stopped++
			if r.Samples >= 400 || r.Agree == r.Samples {
				t.Errorf("cut %d stopped with %d/%d", r.K, r.Agree, r.Samples)
			}
		}
	}
	if stopped == 0 {
		t.Error("int4 never stopped early at a 99.99 % floor")
	}
}

func TestRunErrors(t *testing.T) {
	g := seedCNN(t)
	if _, err := Run(context.Background(), Config{Graph: g}); !errors.Is(err, ErrConfig) {
		t.Errorf("no inputs: %v", err)
	}
	src, _, err := Open(context.Background(), "mnist", g, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), Config{Graph: g, Inputs: src, Cuts: []int{len(g.Nodes)}}); !errors.Is(err, ErrConfig) {
		t.Errorf("edge-only cut: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, Config{Graph: g, Inputs: src}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	for _, spec := range []string{"mnist:val", "/nonexistent/dir", "x.npy"} {
		if _, _, err := Open(context.Background(), spec, g, nil, 1); err == nil {
			t.Errorf("Open(%q) accepted", spec)
		}
	}
}
