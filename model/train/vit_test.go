package train

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
)

// TestViTTrainShort trains vit-tiny for two epochs on the first MNIST
// images and checks that it learns: the loss falls from epoch to epoch and
// stays below chance (ln 10), and the test accuracy beats chance (10 %) by
// a wide margin. The full-data accuracy (≥ 98 %) is measured by `edgesplit
// train --arch vit-tiny` and recorded in docs/benchmarks.md.
func TestViTTrainShort(t *testing.T) {
	limit, want := 2000, 0.5
	if !testing.Short() {
		limit, want = 6000, 0.75
	}
	sp := mnistSubset(t, limit)
	res, err := Run(context.Background(), Config{Arch: "vit-tiny", Data: sp, Epochs: 2, Batch: 32, Seed: 1, LRDecay: 0.7})
	if err != nil {
		t.Fatal(err)
	}
	e0, e1 := res.Epochs[0], res.Epochs[1]
	t.Logf("vit-tiny, 2 epochs on %d images: loss %.3f → %.3f, test accuracy %.4f (%d images), %.0f images/s",
		sp.Train.Len(), e0.Loss, e1.Loss, res.Test.Accuracy, res.Test.N, e1.ImagesPerSec)
	if !(e1.Loss < e0.Loss) || !(e0.Loss < math.Log(10)) {
		t.Errorf("loss %.4f then %.4f: want falling, below ln 10 = %.3f", e0.Loss, e1.Loss, math.Log(10))
	}
	if res.Test.Accuracy < want {
		t.Errorf("test accuracy %.4f, want ≥ %.2f", res.Test.Accuracy, want)
	}
}

// TestViTStepAllocs checks that a worker's forward and backward passes over
// vit-tiny allocate nothing once its buffers exist.
func TestViTStepAllocs(t *testing.T) {
	net, err := New(zoo.ViTTiny(1))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(net, Options{Batch: 4, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 4*net.values[net.input].size)
	for i := range x {
		x[i] = rng.Float32()
	}
	labels := []int{0, 3, 5, 9}
	w := tr.workers[0]
	tr.runWorker(w, x, labels, len(labels))
	if a := testing.AllocsPerRun(5, func() { tr.runWorker(w, x, labels, len(labels)) }); a > 1 {
		t.Errorf("forward+backward of 4 samples: %.0f allocations, want ≤ 1", a)
	}
}

// TestTransformerUnsupported checks that forms the trainer cannot
// differentiate are refused with ErrUnsupported naming the node.
func TestTransformerUnsupported(t *testing.T) {
	cases := map[string]func(b *tb) string{
		"transpose_moves_batch": func(b *tb) string {
			return b.op("Transpose", map[string]model.Attribute{"perm": ai(1, 0, 2)}, "x")
		},
		"reshape_folds_batch": func(b *tb) string { return b.op("Reshape", nil, "x", b.int64s(-1, 4)) },
		"softmax_inner_axis": func(b *tb) string {
			return b.op("Softmax", map[string]model.Attribute{"axis": a1(1)}, "x")
		},
		"layernorm_two_axes": func(b *tb) string {
			return b.op("LayerNormalization", map[string]model.Attribute{"axis": a1(1)}, "x", b.init([]int{3, 4}, 0.1, 1))
		},
		"matmul_broadcast": func(b *tb) string {
			y := b.op("Reshape", nil, "x", b.int64s(0, 1, 3, 4))
			z := b.op("Transpose", map[string]model.Attribute{"perm": ai(0, 2, 1)}, "x")
			return b.op("MatMul", nil, y, z)
		},
		"mul_of_activations": func(b *tb) string { return b.op("Mul", nil, "x", "x") },
		"add_weight_leading_axis": func(b *tb) string {
			return b.op("Add", nil, "x", b.init([]int{3, 1}, 0.1, 0))
		},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			b := newTB(1, 3, 4)
			y := f(b)
			node := b.g.Nodes[len(b.g.Nodes)-1].Name
			b.g.Outputs = []model.ValueInfo{{Name: y}}
			_, err := New(b.g)
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), node) {
				t.Fatalf("New: %v, want ErrUnsupported naming %s", err, node)
			}
		})
	}
}

// TestTranslate checks the shift augmentation: pixels move by (dy, dx) and
// the uncovered ones take the background (top-left) value.
func TestTranslate(t *testing.T) {
	src := []float32{
		-1, 0, 0,
		0, 5, 0,
		0, 0, 7,
	}
	dst := make([]float32, 9)
	translate(dst, src, 1, 3, 3, 1, -1)
	want := []float32{
		-1, -1, -1,
		0, 0, -1,
		5, 0, -1,
	}
	if !slices.Equal(dst, want) {
		t.Fatalf("translate by (1, -1): %v, want %v", dst, want)
	}
	translate(dst, src, 1, 3, 3, 0, 0)
	if !slices.Equal(dst, src) {
		t.Fatalf("translate by (0, 0): %v", dst)
	}
	if _, err := NewTrainer(&Net{}, Options{Shift: -1}); err == nil {
		t.Error("negative shift accepted")
	}
}
