package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/model/dataset"
)

// Options tune a Trainer. The zero value is valid.
type Options struct {
	// Batch is the mini-batch size. Default 32.
	Batch int
	// Workers is the number of goroutines a batch is split across (each
	// with its own activations and gradient buffers, summed in worker
	// order). Default 2. Results are bit-for-bit reproducible for a given
	// Seed, Batch and Workers — independent of GOMAXPROCS. Batch-norm
	// statistics are per worker chunk (as in data-parallel training).
	Workers int
	// Optimizer defaults to Adam with learning rate 0.001.
	Optimizer Optimizer
	// Seed drives the shuffling and dropout masks.
	Seed uint64
	// ExitWeights weighs each graph output's cross-entropy in the loss (one
	// per output, in graph output order). Default 1 for every output.
	ExitWeights []float64
	// Shift, when positive, augments every training image of Epoch with a
	// random translation of up to Shift pixels on each axis (drawn from
	// Seed and the epoch; uncovered pixels take the value of the image's
	// top-left pixel, its background). Default 0: images as they are.
	Shift int
	// Flip, when set, mirrors each training image of Epoch left to right
	// with probability ½ (drawn like Shift) — for data whose classes are
	// mirror-symmetric, such as Fashion-MNIST; not for digits.
	Flip bool
}

// Trainer runs mini-batch training of a Net. It is not safe for concurrent
// use; it uses Options.Workers goroutines internally.
type Trainer struct {
	net     *Net
	opts    Options
	workers []*worker
	grads   [][]float32 // summed gradients
	datas   [][]float32 // param data slices, for the optimiser
	step    uint64
	pcg     []*rand.PCG
}

// NewTrainer prepares a Trainer for net.
func NewTrainer(net *Net, opts Options) (*Trainer, error) {
	if opts.Batch == 0 {
		opts.Batch = 32
	}
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	if opts.Batch < 1 || opts.Batch > 1<<16 {
		return nil, fmt.Errorf("train: batch size %d, want 1..65536", opts.Batch)
	}
	if opts.Workers < 1 || opts.Workers > 256 {
		return nil, fmt.Errorf("train: %d workers, want 1..256", opts.Workers)
	}
	if opts.Shift < 0 || opts.Shift > 64 {
		return nil, fmt.Errorf("train: shift %d pixels, want 0..64", opts.Shift)
	}
	if opts.Optimizer == nil {
		opts.Optimizer = NewAdam(0)
	}
	if opts.ExitWeights == nil {
		opts.ExitWeights = make([]float64, len(net.outputs))
		for i := range opts.ExitWeights {
			opts.ExitWeights[i] = 1
		}
	}
	if len(opts.ExitWeights) != len(net.outputs) {
		return nil, fmt.Errorf("train: %d exit weights for %d outputs", len(opts.ExitWeights), len(net.outputs))
	}
	for i, w := range opts.ExitWeights {
		if !(w >= 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("train: exit weight %d is %v, want ≥ 0", i, w)
		}
	}
	t := &Trainer{net: net, opts: opts}
	chunk := (opts.Batch + opts.Workers - 1) / opts.Workers
	for i := 0; i < opts.Workers; i++ {
		w := net.newWorker(i, chunk)
		pcg := rand.NewPCG(0, 0)
		w.rng = rand.New(pcg)
		t.workers = append(t.workers, w)
		t.pcg = append(t.pcg, pcg)
	}
	for _, p := range net.params {
		t.grads = append(t.grads, make([]float32, len(p.data)))
		t.datas = append(t.datas, p.data)
	}
	return t, nil
}

// Net returns the network being trained.
func (t *Trainer) Net() *Net { return t.net }

// Options returns the options in effect (defaults filled in).
func (t *Trainer) Options() Options { return t.opts }

// chunks splits n samples across the workers: worker i gets [lo, hi).
func (t *Trainer) chunk(i, n int) (lo, hi int) {
	c := (n + len(t.workers) - 1) / len(t.workers)
	lo = min(i*c, n)
	hi = min(lo+c, n)
	return lo, hi
}

// stepResult is one worker's contribution to a step.
type stepResult struct {
	loss    float64
	correct int
}

// Step runs one training step on the samples (≤ Batch) whose preprocessed
// inputs lie contiguously in x, labels holding Net.Positions labels per
// sample (one for a classifier; for a language model the next token at each
// position), and returns the batch's mean weighted loss per label and how
// many labels the last output predicted correctly.
func (t *Trainer) Step(x []float32, labels []int) (loss float64, correct int, err error) {
	pos := t.net.Positions()
	n := len(labels) / pos
	in := t.net.values[t.net.input].size
	if n == 0 || n > t.opts.Batch || len(labels)%pos != 0 {
		return 0, 0, fmt.Errorf("train: step of %d labels, want %d per sample for 1..%d samples", len(labels), pos, t.opts.Batch)
	}
	if len(x) != n*in {
		return 0, 0, fmt.Errorf("train: step input has %d values, want %d (%d samples × %d)", len(x), n*in, n, in)
	}
	for _, o := range t.net.outputs {
		for i, l := range labels {
			if l < 0 || l >= o.classes {
				return 0, 0, fmt.Errorf("train: label %d of sample %d, want 0..%d", l, i/pos, o.classes-1)
			}
		}
	}
	t.step++
	res := make([]stepResult, len(t.workers))
	var wg sync.WaitGroup
	for i, w := range t.workers {
		lo, hi := t.chunk(i, n)
		if lo == hi {
			clearGrads(w)
			continue
		}
		t.pcg[i].Seed(t.opts.Seed^0x7f4a7c15, t.step*1024+uint64(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = t.runWorker(w, x[lo*in:hi*in], labels[lo*pos:hi*pos], n)
		}()
	}
	wg.Wait()
	// Sum gradients in worker order, so the result does not depend on
	// scheduling.
	for pi := range t.grads {
		g := t.grads[pi]
		copy(g, t.workers[0].pgrad[pi])
		for _, w := range t.workers[1:] {
			for j, v := range w.pgrad[pi] {
				g[j] += v
			}
		}
	}
	t.opts.Optimizer.Update(t.datas, t.grads)
	t.updateRunningStats(n)
	for _, r := range res {
		loss += r.loss
		correct += r.correct
	}
	return loss / float64(n*pos), correct, nil
}

func clearGrads(w *worker) {
	for _, g := range w.pgrad {
		clear(g)
	}
}

// runWorker runs forward, loss and backward for one worker's chunk; total
// is the whole batch size (gradients are of the mean over the batch's
// labels).
func (t *Trainer) runWorker(w *worker, x []float32, labels []int, total int) stepResult {
	n := t.net
	b := len(labels) / n.Positions()
	copy(w.act[n.input], x)
	p := &pass{n: n, w: w, batch: b, train: true}
	for i, l := range n.layers {
		p.st = &w.st[i]
		l.forward(p)
	}
	for vi, v := range n.values {
		if v.needGrad {
			clear(w.grad[vi][:b*v.size])
		}
	}
	clearGrads(w)
	var r stepResult
	for k, o := range n.outputs {
		wt := t.opts.ExitWeights[k]
		classes := o.classes
		z := w.act[o.logits]
		var dz []float32
		if n.values[o.logits].needGrad {
			dz = w.grad[o.logits]
		}
		for i, label := range labels {
			row := z[i*classes : (i+1)*classes]
			lse, arg := logSumExp(row)
			r.loss += wt * (lse - float64(row[label]))
			if k == len(n.outputs)-1 && arg == label {
				r.correct++
			}
			if dz != nil {
				g := dz[i*classes : (i+1)*classes]
				scale := wt / float64(total*o.positions)
				for j, v := range row {
					pj := math.Exp(float64(v) - lse)
					if j == label {
						pj--
					}
					g[j] += float32(pj * scale)
				}
			}
		}
	}
	for i := len(n.layers) - 1; i >= 0; i-- {
		p.st = &w.st[i]
		n.layers[i].backward(p)
	}
	return r
}

// logSumExp returns log Σ exp(z) and the index of the largest z.
func logSumExp(z []float32) (float64, int) {
	m, arg := z[0], 0
	for j, v := range z {
		if v > m {
			m, arg = v, j
		}
	}
	var s float64
	for _, v := range z {
		s += math.Exp(float64(v - m))
	}
	return float64(m) + math.Log(s), arg
}

// updateRunningStats folds each worker's batch statistics into the BN
// running mean/var: running = momentum·running + (1−momentum)·batch, with
// the workers' statistics averaged (weighted by chunk size) in order.
func (t *Trainer) updateRunningStats(n int) {
	for li, l := range t.net.layers {
		bn, ok := l.(*bnLayer)
		if !ok {
			continue
		}
		mean, variance := t.net.state[bn.meanName], t.net.state[bn.varName]
		mom := bn.momentum
		for c := 0; c < bn.c; c++ {
			var bm, bv float64
			for i, w := range t.workers {
				lo, hi := t.chunk(i, n)
				if lo == hi {
					continue
				}
				f := float64(hi-lo) / float64(n)
				bm += f * float64(w.st[li].f3[c])
				bv += f * float64(w.st[li].f3[bn.c+c])
			}
			mean[c] = mom*mean[c] + (1-mom)*float32(bm)
			variance[c] = mom*variance[c] + (1-mom)*float32(bv)
		}
	}
}

// Progress is reported during an epoch.
type Progress struct {
	Epoch, Epochs  int
	Batch, Batches int
	Seen           int     // images trained on so far this epoch
	Loss           float64 // mean loss so far this epoch
	Accuracy       float64 // training accuracy so far this epoch (last output)
	ImagesPerSec   float64
	Elapsed, ETA   time.Duration // this epoch
}

// EpochStats summarises one epoch.
type EpochStats struct {
	Epoch        int
	Loss         float64
	Accuracy     float64 // training accuracy (last output)
	Duration     time.Duration
	ImagesPerSec float64
}

// Epoch trains one pass over set in a seeded random order (epoch selects
// the permutation), reporting progress after every batch when progress is
// not nil. ctx is checked between batches.
func (t *Trainer) Epoch(ctx context.Context, set *dataset.Set, epoch, epochs int, progress func(Progress)) (EpochStats, error) {
	if set == nil || set.Len() == 0 {
		return EpochStats{}, fmt.Errorf("train: %w: no training images", dataset.ErrEmpty)
	}
	if set.ImageLen() != t.net.values[t.net.input].size {
		return EpochStats{}, fmt.Errorf("train: dataset images are %d×%d×%d, model input is %v", set.C, set.H, set.W, t.net.values[t.net.input].shape)
	}
	perm := rand.New(rand.NewPCG(t.opts.Seed, uint64(epoch)+1)).Perm(set.Len())
	shift := rand.New(rand.NewPCG(t.opts.Seed^0x5b1f7, uint64(epoch)+1))
	in := set.ImageLen()
	bs := t.opts.Batch
	x := make([]float32, bs*in)
	labels := make([]int, bs)
	batches := (set.Len() + bs - 1) / bs
	start := time.Now()
	var lossSum float64
	var correct, seen int
	for b := 0; b < batches; b++ {
		if err := ctx.Err(); err != nil {
			return EpochStats{}, err
		}
		idx := perm[b*bs : min((b+1)*bs, len(perm))]
		for j, i := range idx {
			img := x[j*in : (j+1)*in]
			if s := t.opts.Shift; s > 0 {
				translate(img, set.Image(i), set.C, set.H, set.W, shift.IntN(2*s+1)-s, shift.IntN(2*s+1)-s)
			} else {
				copy(img, set.Image(i))
			}
			if t.opts.Flip && shift.IntN(2) == 1 {
				for r := 0; r < set.C*set.H; r++ {
					slices.Reverse(img[r*set.W : (r+1)*set.W])
				}
			}
			labels[j] = set.Labels[i]
		}
		loss, c, err := t.Step(x[:len(idx)*in], labels[:len(idx)])
		if err != nil {
			return EpochStats{}, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return EpochStats{}, fmt.Errorf("train: loss diverged (%v) at epoch %d batch %d; lower the learning rate", loss, epoch, b)
		}
		lossSum += loss * float64(len(idx))
		correct += c
		seen += len(idx)
		if progress != nil {
			el := time.Since(start)
			ips := float64(seen) / el.Seconds()
			progress(Progress{Epoch: epoch, Epochs: epochs, Batch: b + 1, Batches: batches, Seen: seen,
				Loss: lossSum / float64(seen), Accuracy: float64(correct) / float64(seen), ImagesPerSec: ips,
				Elapsed: el, ETA: time.Duration(float64(set.Len()-seen) / ips * float64(time.Second))})
		}
	}
	d := time.Since(start)
	return EpochStats{Epoch: epoch, Loss: lossSum / float64(seen), Accuracy: float64(correct) / float64(seen),
		Duration: d, ImagesPerSec: float64(seen) / d.Seconds()}, nil
}

// translate writes src (c×h×w) moved by dy rows and dx columns to dst; the
// pixels it uncovers take each channel's top-left value.
func translate(dst, src []float32, c, h, w, dy, dx int) {
	for ch := 0; ch < c; ch++ {
		in, out := src[ch*h*w:(ch+1)*h*w], dst[ch*h*w:(ch+1)*h*w]
		bg := in[0]
		for y := 0; y < h; y++ {
			row := out[y*w : (y+1)*w]
			sy := y - dy
			if sy < 0 || sy >= h {
				for x := range row {
					row[x] = bg
				}
				continue
			}
			for x := range row {
				if sx := x - dx; sx >= 0 && sx < w {
					row[x] = in[sy*w+sx]
				} else {
					row[x] = bg
				}
			}
		}
	}
}
