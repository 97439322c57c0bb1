//go:build cgo

package train

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/internal/ortref"
	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// TestORTMatchesTrainer runs the exported, trained models in ONNX Runtime
// and checks their logits and probabilities against edgesplit's engine and
// the trainer's inference pass, within 1e-4, on MNIST test images: the
// embedded seed-cnn, a briefly trained lenet-exits (three exits) and a
// briefly trained vit-tiny (opset 20: LayerNormalization, batched MatMul,
// attention Softmax, Gelu, ReduceMean).
// Needs cgo and scripts/fetch-models.sh (skips without the library).
func TestORTMatchesTrainer(t *testing.T) {
	ortref.InitTest(t)
	sp := mnistSubset(t, 1200)
	seed, _, err := zoo.SeedCNNTrained()
	if err != nil {
		t.Fatal(err)
	}
	exits, err := Run(context.Background(), Config{Arch: "lenet-exits", Data: sp, Epochs: 1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	vit, err := Run(context.Background(), Config{Arch: "vit-tiny", Data: sp, Epochs: 1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		g    *model.Graph
	}{{"seed-cnn (embedded)", seed}, {"lenet-exits", exits.Graph}, {"vit-tiny", vit.Graph}} {
		t.Run(c.name, func(t *testing.T) {
			// Expose the input of every Softmax that makes a graph output
			// (the logits) as an extra output.
			g := *c.g
			g.Outputs = append([]model.ValueInfo(nil), c.g.Outputs...)
			isOutput := map[string]bool{}
			for _, o := range c.g.Outputs {
				isOutput[o.Name] = true
			}
			for _, n := range g.Nodes {
				if n.Op == "Softmax" && isOutput[n.Outputs[0]] {
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
			var names []string
			var shapes [][]int
			for _, o := range g.Outputs {
				names = append(names, o.Name)
				shapes = append(shapes, []int{1, 10})
			}
			s, err := ortref.New(data, []string{g.Inputs[0].Name}, [][]int{{1, 1, 28, 28}}, names, shapes, 1)
			if err != nil {
				t.Fatalf("ONNX Runtime rejects the export: %v", err)
			}
			defer s.Close()
			var worst float64
			for i := 0; i < 100; i++ {
				img := sp.Test.Image(i)
				copy(s.Input(0), img)
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
					ref := s.Output(k)
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

// TestORTTrainedFiles runs trained models written by `edgesplit train`
// (EDGESPLIT_ORT_MODELS: comma-separated .onnx paths, each with its
// sidecar) on their whole test set in ONNX Runtime and in the trainer's
// inference pass: the probabilities must agree within 1e-4 and ONNX
// Runtime's accuracy must equal the sidecar's. A language model (a .lm.json
// card beside it) is run on the first 64 windows of its held-out text,
// token by token against the engine (see ortLM). Skips when the variable is
// unset (bench/train/vit.sh's models are the intended input).
func TestORTTrainedFiles(t *testing.T) {
	paths := os.Getenv("EDGESPLIT_ORT_MODELS")
	if paths == "" {
		t.Skip("EDGESPLIT_ORT_MODELS not set")
	}
	ortref.InitTest(t)
	for _, path := range strings.Split(paths, ",") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			g, err := onnx.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(LMCardPath(path)); err == nil {
				ortTrainedLM(t, path, g, b)
				return
			}
			sc, err := dataset.ReadSidecar(dataset.SidecarPath(path))
			if err != nil {
				t.Fatal(err)
			}
			sp, err := dataset.Load(context.Background(), sc.Dataset, dataset.Options{Preprocess: &sc.Preprocess})
			if err != nil {
				t.Fatal(err)
			}
			data, err := onnx.Encode(g)
			if err != nil {
				t.Fatal(err)
			}
			net, err := New(g)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := NewTrainer(net, Options{Workers: 1, Batch: 64})
			if err != nil {
				t.Fatal(err)
			}
			in := append([]int{1}, net.InputShape()...)
			classes := net.Classes(0)
			s, err := ortref.New(data, []string{g.Inputs[0].Name}, [][]int{in}, []string{g.Outputs[0].Name}, [][]int{{1, classes}}, 1)
			if err != nil {
				t.Fatalf("ONNX Runtime rejects %s: %v", path, err)
			}
			defer s.Close()
			set := sp.Test
			want, err := tr.Predict(set.Images, set.Len())
			if err != nil {
				t.Fatal(err)
			}
			var worst float64
			correct := 0
			for i := 0; i < set.Len(); i++ {
				copy(s.Input(0), set.Image(i))
				if err := s.Run(); err != nil {
					t.Fatal(err)
				}
				ref := s.Output(0)
				best := 0
				for j, p := range ref {
					worst = max(worst, math.Abs(float64(p-want[0][i*classes+j])))
					if p > ref[best] {
						best = j
					}
				}
				if best == set.Labels[i] {
					correct++
				}
			}
			acc := float64(correct) / float64(set.Len())
			t.Logf("%s: %d test images, ONNX Runtime accuracy %.2f%% (sidecar %.2f%%), max |ORT − trainer| = %.2g",
				path, set.Len(), 100*acc, 100*sc.Accuracy, worst)
			if worst > 1e-4 || math.Abs(acc-sc.Accuracy) > 1e-9 {
				t.Fatalf("ONNX Runtime differs: max difference %v, accuracy %v vs %v", worst, acc, sc.Accuracy)
			}
		})
	}
}

// ortLM runs the language model g in ONNX Runtime on the windows of toks
// (at most maxWindows of them) and compares every probability with the
// engine's (lm.Model) and the trainer's inference pass; it returns ONNX
// Runtime's perplexity over those windows, the engine's, and the largest
// difference seen.
func ortLM(t *testing.T, g *model.Graph, toks []int, maxWindows int) (ortPPL, enginePPL, worst float64) {
	t.Helper()
	data, err := onnx.Encode(g)
	if err != nil {
		t.Fatal(err)
	}
	shape := g.Inputs[0].Shape
	ctxLen, vocab := shape[1], shape[2]
	s, err := ortref.New(data, []string{g.Inputs[0].Name}, [][]int{shape}, []string{g.Outputs[0].Name}, [][]int{shape}, 1)
	if err != nil {
		t.Fatalf("ONNX Runtime rejects the language model: %v", err)
	}
	defer s.Close()
	m, err := lm.New(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	net, err := New(g)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(net, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	starts := lm.Windows(len(toks), ctxLen)
	if len(starts) > maxWindows {
		starts = starts[:maxWindows]
	}
	if len(starts) == 0 {
		t.Fatalf("%d tokens: no window of %d", len(toks), ctxLen+1)
	}
	var ortNLL float64
	for _, st := range starts {
		x := s.Input(0)
		clear(x)
		for p := 0; p < ctxLen; p++ {
			x[p*vocab+toks[st+p]] = 1
		}
		if err := s.Run(); err != nil {
			t.Fatal(err)
		}
		ref := s.Output(0)
		want, err := tr.Predict(slices.Clone(x), 1)
		if err != nil {
			t.Fatal(err)
		}
		for p := 0; p < ctxLen; p++ {
			got, err := m.Next(context.Background(), toks[st:st+p+1])
			if err != nil {
				t.Fatal(err)
			}
			for j := range vocab {
				r := ref[p*vocab+j]
				d := max(math.Abs(float64(got[j]-r)), math.Abs(float64(want[0][p*vocab+j]-r)))
				worst = max(worst, d)
				if d > 1e-4 {
					t.Fatalf("window at %d, position %d, token %d: ONNX Runtime %v, engine %v, trainer %v", st, p, j, r, got[j], want[0][p*vocab+j])
				}
			}
			ortNLL -= math.Log(float64(ref[p*vocab+toks[st+p+1]]))
		}
	}
	ortPPL = math.Exp(ortNLL / float64(len(starts)*ctxLen))
	enginePPL, _, err = m.Perplexity(context.Background(), toks[:starts[len(starts)-1]+ctxLen+1])
	if err != nil {
		t.Fatal(err)
	}
	return ortPPL, enginePPL, worst
}

// TestORTMatchesLM trains gpt-tiny briefly on the docs' text and runs it in
// ONNX Runtime on held-out windows: every next-token probability (the
// additive −Inf causal mask, LayerNormalization, batched MatMul, Softmax,
// Gelu) within 1e-4 of the engine, token by token, and of the trainer, and
// the same perplexity.
func TestORTMatchesLM(t *testing.T) {
	ortref.InitTest(t)
	entries := docsText(t)
	res, err := RunLM(context.Background(), LMConfig{Entries: entries, HoldEvery: 10, Limit: 20000, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	_, held, _ := lm.Split(entries, 10)
	ortPPL, enginePPL, worst := ortLM(t, res.Graph, lm.Stream(held), 8)
	t.Logf("gpt-tiny (1 epoch on 20000 tokens): 8 held-out windows, perplexity ONNX Runtime %.4f, engine %.4f; max |ORT − edgesplit| = %.2g",
		ortPPL, enginePPL, worst)
	if math.Abs(ortPPL-enginePPL) > 1e-4*enginePPL {
		t.Errorf("perplexity: ONNX Runtime %v, engine %v", ortPPL, enginePPL)
	}
}

// ortTrainedLM checks the language model g trained by `edgesplit train`
// (card: its .lm.json) in ONNX Runtime on its held-out corpus text.
func ortTrainedLM(t *testing.T, path string, g *model.Graph, card []byte) {
	var c LMCard
	if err := json.Unmarshal(card, &c); err != nil {
		t.Fatalf("%s: %v", LMCardPath(path), err)
	}
	entries, err := lm.ReadCorpus(c.Corpus)
	if err != nil {
		t.Fatal(err)
	}
	_, held, err := lm.Split(entries, c.HoldEvery)
	if err != nil {
		t.Fatal(err)
	}
	ortPPL, enginePPL, worst := ortLM(t, g, lm.Stream(held), 64)
	t.Logf("%s: 64 held-out windows, perplexity ONNX Runtime %.4f, engine %.4f (card, all %d held-out tokens: %.4f); max |ORT − edgesplit| = %.2g",
		path, ortPPL, enginePPL, c.HeldScored, c.HeldPerplexity, worst)
	if math.Abs(ortPPL-enginePPL) > 1e-4*enginePPL {
		t.Errorf("perplexity: ONNX Runtime %v, engine %v", ortPPL, enginePPL)
	}
}
