package train

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/edgesplit/edgesplit/model/dataset"
)

// Eval is the result of evaluating a model on a labelled set.
type Eval struct {
	N int
	// Accuracy of the last (final) output.
	Accuracy float64
	// Loss is the mean unweighted cross-entropy of the last output.
	Loss float64
	// Confusion[t][p] counts images of true class t predicted as p (last
	// output).
	Confusion [][]int
	// Outputs names the graph outputs; ExitAccuracy is each one's accuracy.
	Outputs      []string
	ExitAccuracy []float64
	// Threshold is the entropy threshold (nats) of the early-exit policy:
	// an image leaves at the first output whose softmax entropy is below
	// it (the last output takes the rest). ExitFraction is the fraction of
	// images leaving at each output and EarlyExitAccuracy the accuracy of
	// that policy. Only meaningful with more than one output.
	Threshold         float64
	ExitFraction      []float64
	EarlyExitAccuracy float64
}

// PerClassAccuracy returns the recall of each class from the confusion
// matrix (NaN for a class with no images).
func (e *Eval) PerClassAccuracy() []float64 {
	out := make([]float64, len(e.Confusion))
	for t, row := range e.Confusion {
		total := 0
		for _, c := range row {
			total += c
		}
		out[t] = math.NaN()
		if total > 0 {
			out[t] = float64(row[t]) / float64(total)
		}
	}
	return out
}

// Format writes a human-readable report: accuracy, the confusion matrix
// with per-class accuracy and, for multi-exit models, each exit's accuracy
// and exit fraction.
func (e *Eval) Format(w io.Writer, classes []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "test accuracy %.2f%% (%d images), loss %.4f\n", 100*e.Accuracy, e.N, e.Loss)
	name := func(i int) string {
		if i < len(classes) {
			s := classes[i]
			if len(s) > 6 {
				s = s[:6]
			}
			return s
		}
		return fmt.Sprint(i)
	}
	fmt.Fprintf(&b, "confusion matrix (rows: true class, columns: predicted)\n%7s", "")
	for p := range e.Confusion {
		fmt.Fprintf(&b, " %6s", name(p))
	}
	fmt.Fprintf(&b, " %8s\n", "acc")
	pc := e.PerClassAccuracy()
	for t, row := range e.Confusion {
		fmt.Fprintf(&b, "%7s", name(t))
		for _, c := range row {
			fmt.Fprintf(&b, " %6d", c)
		}
		fmt.Fprintf(&b, " %7.2f%%\n", 100*pc[t])
	}
	if len(e.Outputs) > 1 {
		fmt.Fprintf(&b, "early exits (entropy threshold %.3g nats):\n", e.Threshold)
		for k, o := range e.Outputs {
			fmt.Fprintf(&b, "  %-8s accuracy %6.2f%%  leaves here %6.2f%%\n", o, 100*e.ExitAccuracy[k], 100*e.ExitFraction[k])
		}
		fmt.Fprintf(&b, "  early-exit policy accuracy %.2f%%\n", 100*e.EarlyExitAccuracy)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sampleOut is what inference records per image and output.
type sampleOut struct {
	pred    int
	entropy float64
	loss    float64
}

// Evaluate runs the net in inference mode (batch-norm running statistics,
// no dropout) over set, split across the workers, and scores every output.
// threshold is the early-exit entropy threshold in nats (0 → 0.5).
func (t *Trainer) Evaluate(ctx context.Context, set *dataset.Set, threshold float64) (*Eval, error) {
	if set == nil || set.Len() == 0 {
		return nil, fmt.Errorf("train: %w: no evaluation images", dataset.ErrEmpty)
	}
	if set.ImageLen() != t.net.values[t.net.input].size {
		return nil, fmt.Errorf("train: dataset images are %d×%d×%d, model input is %v", set.C, set.H, set.W, t.net.values[t.net.input].shape)
	}
	if p := t.net.Positions(); p != 1 {
		return nil, fmt.Errorf("%w: Evaluate scores classifiers; this net predicts %d positions per sample (a language model: see model/lm)", ErrUnsupported, p)
	}
	if threshold == 0 {
		threshold = 0.5
	}
	nOut := len(t.net.outputs)
	for k, o := range t.net.outputs {
		if c := t.net.values[o.logits].size; c < len(set.Classes) {
			return nil, fmt.Errorf("train: output %d (%q) has %d classes, dataset has %d", k, o.name, c, len(set.Classes))
		}
	}
	if err := checkLabels(set, t.net.values[t.net.outputs[0].logits].size); err != nil {
		return nil, err
	}
	res := make([]sampleOut, set.Len()*nOut)
	errs := make([]error, len(t.workers))
	var wg sync.WaitGroup
	for wi, w := range t.workers {
		lo, hi := t.chunk(wi, set.Len())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := lo; s < hi; s += w.cap {
				if err := ctx.Err(); err != nil {
					errs[wi] = err
					return
				}
				e := min(s+w.cap, hi)
				t.inferChunk(w, set.Images[s*set.ImageLen():e*set.ImageLen()], e-s)
				for k, o := range t.net.outputs {
					classes := t.net.values[o.logits].size
					z := w.act[o.logits]
					for i := 0; i < e-s; i++ {
						row := z[i*classes : (i+1)*classes]
						label := set.Labels[s+i]
						res[(s+i)*nOut+k] = scoreRow(row, label)
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	classes := t.net.values[t.net.outputs[nOut-1].logits].size
	return summarize(res, set.Labels, t.net.Outputs(), classes, threshold), nil
}

// scoreRow scores one output row of logits against label.
func scoreRow(row []float32, label int) sampleOut {
	lse, arg := logSumExp(row)
	var h float64
	for _, v := range row {
		p := math.Exp(float64(v) - lse)
		if p > 0 {
			h -= p * (float64(v) - lse)
		}
	}
	return sampleOut{pred: arg, entropy: h, loss: lse - float64(row[label])}
}

// summarize turns per-sample, per-output scores (res[i·len(outputs)+k])
// into an Eval.
func summarize(res []sampleOut, labels []int, outputs []string, classes int, threshold float64) *Eval {
	nOut := len(outputs)
	ev := &Eval{N: len(labels), Outputs: outputs, ExitAccuracy: make([]float64, nOut),
		ExitFraction: make([]float64, nOut), Threshold: threshold, Confusion: make([][]int, classes)}
	for i := range ev.Confusion {
		ev.Confusion[i] = make([]int, classes)
	}
	var early int
	for i, label := range labels {
		exited := false
		for k := 0; k < nOut; k++ {
			r := res[i*nOut+k]
			if r.pred == label {
				ev.ExitAccuracy[k]++
			}
			if !exited && (k == nOut-1 || r.entropy < threshold) {
				exited = true
				ev.ExitFraction[k]++
				if r.pred == label {
					early++
				}
			}
		}
		last := res[i*nOut+nOut-1]
		ev.Confusion[label][last.pred]++
		ev.Loss += last.loss
	}
	n := float64(len(labels))
	for k := range ev.ExitAccuracy {
		ev.ExitAccuracy[k] /= n
		ev.ExitFraction[k] /= n
	}
	ev.Accuracy = ev.ExitAccuracy[nOut-1]
	ev.EarlyExitAccuracy = float64(early) / n
	ev.Loss /= n
	return ev
}

// inferChunk runs the inference forward pass of n ≤ w.cap samples.
func (t *Trainer) inferChunk(w *worker, x []float32, n int) {
	copy(w.act[t.net.input], x)
	p := &pass{n: t.net, w: w, batch: n, train: false}
	for i, l := range t.net.layers {
		p.st = &w.st[i]
		l.forward(p)
	}
}

// Predict runs inference on n samples stored contiguously in x and returns,
// per graph output, n×positions×classes softmax probabilities (positions is
// 1 for a classifier).
func (t *Trainer) Predict(x []float32, n int) ([][]float32, error) {
	in := t.net.values[t.net.input].size
	if n <= 0 || len(x) != n*in {
		return nil, fmt.Errorf("train: predict input has %d values, want %d samples × %d", len(x), n, in)
	}
	out := make([][]float32, len(t.net.outputs))
	for k, o := range t.net.outputs {
		out[k] = make([]float32, n*t.net.values[o.logits].size)
	}
	w := t.workers[0]
	for s := 0; s < n; s += w.cap {
		e := min(s+w.cap, n)
		t.inferChunk(w, x[s*in:e*in], e-s)
		for k, o := range t.net.outputs {
			c := o.classes
			for i := 0; i < (e-s)*o.positions; i++ {
				row := w.act[o.logits][i*c : (i+1)*c]
				lse, _ := logSumExp(row)
				dst := out[k][s*o.positions*c+i*c:][:c]
				for j, v := range row {
					dst[j] = float32(math.Exp(float64(v) - lse))
				}
			}
		}
	}
	return out, nil
}

// checkLabels verifies every label of set is in [0, classes).
func checkLabels(set *dataset.Set, classes int) error {
	for i, l := range set.Labels {
		if l < 0 || l >= classes {
			return fmt.Errorf("train: %w: image %d of %q has label %d, the model has %d classes", dataset.ErrLabel, i, set.Name, l, classes)
		}
	}
	return nil
}
