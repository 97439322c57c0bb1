package train

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

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
