package train

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// bnNet is a small residual CNN with batch norms, to check that trained BN
// running statistics are written back in a form the engine agrees with.
func bnNet() *model.Graph {
	b := newTB(1, 1, 8, 8)
	c := conv(b, "x", 1, 4, 3, map[string]model.Attribute{"pads": ai(1, 1, 1, 1)}, false)
	bn := b.op("BatchNormalization", nil, c, b.init([]int{4}, 0.1, 1), b.init([]int{4}, 0.1, 0), b.init([]int{4}, 0, 0), b.init([]int{4}, 0, 1))
	r := b.op("Relu", nil, bn)
	c2 := conv(b, r, 4, 4, 3, map[string]model.Attribute{"pads": ai(1, 1, 1, 1)}, true)
	a := b.op("Add", nil, c2, r)
	p := b.op("GlobalAveragePool", nil, a)
	b.head(p, 4, 3, "out")
	b.g.Inputs[0].Shape = []int{1, 1, 8, 8}
	b.g.Outputs[0].Shape = []int{1, 3}
	return b.g
}

// TestExportMatchesEngine trains a few steps, exports to ONNX, re-imports
// and runs the file in the engine: probabilities must match the trainer's
// inference pass.
func TestExportMatchesEngine(t *testing.T) {
	cases := []struct {
		name string
		g    *model.Graph
	}{
		{"seed-cnn", zoo.SeedCNN(3)},
		{"lenet-exits", zoo.LenetExits(3)},
		{"bn-residual", bnNet()},
		{"vit-tiny", zoo.ViTTiny(3)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			net, err := New(c.g)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := NewTrainer(net, Options{Batch: 8, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			in := net.values[net.input].size
			rng := rand.New(rand.NewPCG(5, 6))
			x := make([]float32, 8*in)
			labels := make([]int, 8)
			for step := 0; step < 5; step++ {
				for i := range x {
					x[i] = rng.Float32()
				}
				for i := range labels {
					labels[i] = rng.IntN(3)
				}
				if _, _, err := tr.Step(x, labels); err != nil {
					t.Fatal(err)
				}
			}
			want, err := tr.Predict(x[:in], 1)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "m.onnx")
			sc := dataset.Sidecar{Arch: c.name, Preprocess: dataset.MNISTPreprocess(), Labels: dataset.DigitClasses(), Outputs: net.Outputs()}
			if err := Export(path, net.Graph(), sc); err != nil {
				t.Fatal(err)
			}
			if _, err := dataset.ReadSidecar(dataset.SidecarPath(path)); err != nil {
				t.Fatal(err)
			}
			g2, err := onnx.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			en, err := model.Compile(g2, model.Options{})
			if err != nil {
				t.Fatal(err)
			}
			xt := tensor.New(tensor.WithShape(append([]int{1}, net.InputShape()...)...), tensor.WithBacking(append([]float32(nil), x[:in]...)))
			outs, err := en.NewExtractor().Run(context.Background(), xt)
			if err != nil {
				t.Fatal(err)
			}
			if len(outs) != len(want) {
				t.Fatalf("engine gave %d outputs, trainer %d", len(outs), len(want))
			}
			for k := range outs {
				got := outs[k].Data().([]float32)
				for j := range got {
					if math.Abs(float64(got[j]-want[k][j])) > 1e-5 {
						t.Fatalf("output %d class %d: engine %v, trainer %v", k, j, got[j], want[k][j])
					}
				}
			}
		})
	}
}
