//go:build ortref

package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// ortLib finds the ONNX Runtime shared library (from the npm package
// onnxruntime-node@1.30.0, cached by scripts/fetch-models.sh).
func ortLib(t *testing.T) string {
	dir := os.Getenv("EDGESPLIT_CACHE")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "edgesplit")
	}
	p := filepath.Join(dir, "libonnxruntime.so.1")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("ONNX Runtime library not cached: %v", err)
	}
	return p
}

// TestORTMatchesTrainer runs the exported, trained models in ONNX Runtime
// and checks their logits and probabilities against edgesplit's engine and
// the trainer's inference pass, within 1e-4, on MNIST test images: the
// embedded seed-cnn and a briefly trained lenet-exits (three exits).
// Needs cgo; run with -tags ortref.
func TestORTMatchesTrainer(t *testing.T) {
	ort.SetSharedLibraryPath(ortLib(t))
	if err := ort.InitializeEnvironment(); err != nil {
		t.Fatal(err)
	}
	defer ort.DestroyEnvironment()
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	opts.SetIntraOpNumThreads(1)

	sp := mnistSubset(t, 1200)
	seed, _, err := zoo.SeedCNNTrained()
	if err != nil {
		t.Fatal(err)
	}
	exits, err := Run(context.Background(), Config{Arch: "lenet-exits", Data: sp, Epochs: 1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		g    *model.Graph
	}{{"seed-cnn (embedded)", seed}, {"lenet-exits", exits.Graph}} {
		t.Run(c.name, func(t *testing.T) {
			// Expose every Softmax's input (the logits) as an extra output.
			g := *c.g
			g.Outputs = append([]model.ValueInfo(nil), c.g.Outputs...)
			for _, n := range g.Nodes {
				if n.Op == "Softmax" {
					g.Outputs = append(g.Outputs, model.ValueInfo{Name: n.Inputs[0], Shape: []int{1, 10}})
				}
			}
			data, err := onnx.Encode(&g)
			if err != nil {
				t.Fatal(err)
			}
			net, err := New(&g)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := NewTrainer(net, Options{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			en, err := model.Compile(&g, model.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ex := en.NewExtractor()
			in, err := ort.NewTensor(ort.NewShape(1, 1, 28, 28), make([]float32, 784))
			if err != nil {
				t.Fatal(err)
			}
			defer in.Destroy()
			var names []string
			var outs []ort.Value
			var outT []*ort.Tensor[float32]
			for _, o := range g.Outputs {
				ot, err := ort.NewEmptyTensor[float32](ort.NewShape(1, 10))
				if err != nil {
					t.Fatal(err)
				}
				defer ot.Destroy()
				names = append(names, o.Name)
				outs = append(outs, ot)
				outT = append(outT, ot)
			}
			s, err := ort.NewAdvancedSessionWithONNXData(data, []string{g.Inputs[0].Name}, names, []ort.Value{in}, outs, opts)
			if err != nil {
				t.Fatalf("ONNX Runtime rejects the export: %v", err)
			}
			defer s.Destroy()
			var worst float64
			for i := 0; i < 100; i++ {
				img := sp.Test.Image(i)
				copy(in.GetData(), img)
				if err := s.Run(); err != nil {
					t.Fatal(err)
				}
				eo, err := ex.Run(context.Background(), tensor.New(tensor.WithShape(1, 1, 28, 28), tensor.WithBacking(append([]float32(nil), img...))))
				if err != nil {
					t.Fatal(err)
				}
				probs, err := tr.Predict(img, 1)
				if err != nil {
					t.Fatal(err)
				}
				for k := range names {
					ref := outT[k].GetData()
					got := eo[k].Data().([]float32)
					for j := range ref {
						d := math.Abs(float64(got[j] - ref[j]))
						if k < len(c.g.Outputs) { // probabilities: also the trainer's
							d = max(d, math.Abs(float64(probs[k][j]-ref[j])))
						}
						worst = max(worst, d)
						if d > 1e-4 {
							t.Fatalf("image %d output %s[%d]: ONNX Runtime %v, engine %v", i, names[k], j, ref[j], got[j])
						}
					}
				}
			}
			t.Logf("%s: 100 images, outputs %v: max |ORT − edgesplit| = %.2g", c.name, names, worst)
		})
	}
}
