package train

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/zoo"
)

// LMConfig describes the training of a causal language model on a text
// corpus (what `edgesplit train --arch gpt-tiny` does). The zero value
// trains gpt-tiny on lm.DefaultCorpus for one epoch.
type LMConfig struct {
	// Arch is the zoo model ("gpt-tiny", the default). Ignored when Graph
	// is set.
	Arch string
	// Graph, when set, is trained instead (not modified); it must be
	// shaped like zoo.BuildGPT's graphs.
	Graph *model.Graph
	// Corpus is a folder of fortune files (lm.ReadCorpus). Default
	// lm.DefaultCorpus. Ignored when Entries is set.
	Corpus string
	// Entries, when set, is the text used instead of reading Corpus.
	Entries []string
	// HoldEvery puts every HoldEvery-th entry in the held-out text the
	// perplexity is measured on (lm.Split). Default 20 (5 %).
	HoldEvery int
	// Limit, when positive, keeps only the first Limit training tokens
	// (quick runs).
	Limit int
	// Epochs to train; one epoch is as many windows of the model's context
	// as the training text holds, each at a random offset. Default 1.
	Epochs int
	// Batch size in windows. Default 32.
	Batch int
	// LR is Adam's learning rate. Default 0.003.
	LR float64
	// LRDecay multiplies the learning rate after every epoch. Default 1.
	LRDecay float64
	// Seed drives the zoo weights and the window offsets.
	Seed uint64
	// Workers splits each batch across goroutines. Default 2.
	Workers int
	// Progress, when set, is called after every batch (Seen counts
	// windows).
	Progress func(Progress)
	// Logger receives one line per epoch. Default: discard.
	Logger *slog.Logger
}

// LMResult is a finished language-model training run.
type LMResult struct {
	Graph *model.Graph
	Card  LMCard
	// Epochs has one entry per epoch (Accuracy: next-token accuracy on
	// the training windows; ImagesPerSec: windows per second).
	Epochs []EpochStats
}

// LMCard describes a trained language model; Save writes it as JSON beside
// the ONNX file (LMCardPath).
type LMCard struct {
	Arch      string `json:"arch"`
	Corpus    string `json:"corpus"`
	Tokenizer string `json:"tokenizer"`
	Context   int    `json:"context"`
	Params    int    `json:"params"`
	// HoldEvery is the corpus split: every HoldEvery-th entry is held out
	// (lm.Split).
	HoldEvery int `json:"hold_every"`
	// TrainTokens and HeldTokens count the two parts of the corpus;
	// HeldPerplexity is measured on the held-out part by the engine
	// (lm.Model.Perplexity), over HeldScored tokens.
	TrainTokens    int     `json:"train_tokens"`
	HeldTokens     int     `json:"held_tokens"`
	HeldScored     int     `json:"held_scored"`
	HeldPerplexity float64 `json:"held_perplexity"`
	// TrainLoss is the last epoch's mean cross-entropy in nats per token.
	TrainLoss float64 `json:"train_loss"`
	Epochs    int     `json:"epochs"`
	Batch     int     `json:"batch"`
	LR        float64 `json:"lr"`
	LRDecay   float64 `json:"lr_decay"`
	Seed      uint64  `json:"seed"`
	Seconds   float64 `json:"seconds"`
}

// LMCardPath is where Save writes the card of the model at path: the
// extension replaced by ".lm.json".
func LMCardPath(path string) string {
	if i := strings.LastIndexByte(path, '.'); i > strings.LastIndexAny(path, `/\`) {
		path = path[:i]
	}
	return path + ".lm.json"
}

// Save writes the model to path as ONNX and its card beside it.
func (r *LMResult) Save(path string) error {
	if err := onnx.Save(path, r.Graph); err != nil {
		return fmt.Errorf("train: export: %w", err)
	}
	b, err := json.MarshalIndent(r.Card, "", "  ")
	if err == nil {
		err = os.WriteFile(LMCardPath(path), append(b, '\n'), 0o644)
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("train: export: %w", err)
	}
	return nil
}

// IsLM reports whether the zoo architecture arch is a language model
// (trained by RunLM on text, not by Run on images).
func IsLM(arch string) bool { return strings.HasPrefix(arch, "gpt") }

// RunLM reads the corpus, holds part of it out, trains the model on the
// rest and measures its held-out perplexity on the engine. ctx cancels
// between batches.
func RunLM(ctx context.Context, cfg LMConfig) (*LMResult, error) {
	start := time.Now()
	if cfg.Arch == "" {
		cfg.Arch = "gpt-tiny"
	}
	if cfg.Corpus == "" {
		cfg.Corpus = lm.DefaultCorpus
	}
	if cfg.HoldEvery == 0 {
		cfg.HoldEvery = 20
	}
	if cfg.Epochs == 0 {
		cfg.Epochs = 1
	}
	if cfg.Epochs < 0 || cfg.Epochs > 10000 {
		return nil, fmt.Errorf("train: %d epochs, want 1..10000", cfg.Epochs)
	}
	if cfg.LR == 0 {
		cfg.LR = 0.003
	}
	if cfg.LRDecay == 0 {
		cfg.LRDecay = 1
	}
	if !(cfg.LRDecay > 0 && cfg.LRDecay <= 1) {
		return nil, fmt.Errorf("train: learning-rate decay %v, want in (0, 1]", cfg.LRDecay)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := cfg.Graph
	arch := cfg.Arch
	if g == nil {
		var err error
		if g, err = zoo.Build(cfg.Arch, cfg.Seed); err != nil {
			return nil, err
		}
	} else {
		arch = g.Name
	}
	net, err := New(g)
	if err != nil {
		return nil, err
	}
	shape := net.InputShape()
	if len(shape) != 2 || shape[1] != lm.VocabSize || net.Positions() != shape[0] || len(net.outputs) != 1 || net.Classes(0) != lm.VocabSize {
		return nil, fmt.Errorf("%w: model %q takes %v and predicts %d positions; a language model takes context×%d one-hot rows and predicts every position",
			ErrUnsupported, arch, shape, net.Positions(), lm.VocabSize)
	}
	ctxLen := shape[0]
	entries, corpus := cfg.Entries, cfg.Corpus
	if entries == nil {
		if entries, err = lm.ReadCorpus(cfg.Corpus); err != nil {
			return nil, err
		}
	} else {
		corpus = "(given entries)"
	}
	trainText, heldText, err := lm.Split(entries, cfg.HoldEvery)
	if err != nil {
		return nil, err
	}
	trainToks, heldToks := lm.Stream(trainText), lm.Stream(heldText)
	if cfg.Limit > 0 && len(trainToks) > cfg.Limit {
		trainToks = trainToks[:cfg.Limit]
	}
	if len(trainToks) < ctxLen+1 || len(heldToks) < ctxLen+1 {
		return nil, fmt.Errorf("train: %w: %d training and %d held-out tokens, want ≥ %d each", lm.ErrNoText, len(trainToks), len(heldToks), ctxLen+1)
	}
	opt := NewAdam(cfg.LR)
	tr, err := NewTrainer(net, Options{Batch: cfg.Batch, Workers: cfg.Workers, Optimizer: opt, Seed: cfg.Seed})
	if err != nil {
		return nil, err
	}
	res := &LMResult{}
	for e := 0; e < cfg.Epochs; e++ {
		opt.SetLearningRate(cfg.LR * math.Pow(cfg.LRDecay, float64(e)))
		st, err := tr.lmEpoch(ctx, trainToks, e, cfg.Epochs, cfg.Progress)
		if err != nil {
			return nil, err
		}
		res.Epochs = append(res.Epochs, st)
		log.Info("epoch", "epoch", e+1, "of", cfg.Epochs, "loss", st.Loss, "next_token_acc", st.Accuracy,
			"seconds", st.Duration.Seconds(), "windows_per_s", st.ImagesPerSec)
	}
	res.Graph = net.Graph()
	m, err := lm.New(res.Graph, model.Options{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	ppl, scored, err := m.Perplexity(ctx, heldToks)
	if err != nil {
		return nil, err
	}
	o := tr.Options()
	res.Card = LMCard{
		Arch: arch, Corpus: corpus, Tokenizer: "ascii-97", Context: ctxLen, Params: net.Params(), HoldEvery: cfg.HoldEvery,
		TrainTokens: len(trainToks), HeldTokens: len(heldToks), HeldScored: scored, HeldPerplexity: ppl,
		TrainLoss: res.Epochs[len(res.Epochs)-1].Loss, Epochs: cfg.Epochs, Batch: o.Batch, LR: cfg.LR,
		LRDecay: cfg.LRDecay, Seed: cfg.Seed, Seconds: time.Since(start).Seconds(),
	}
	return res, nil
}

// lmEpoch trains on as many windows of the net's context as toks holds,
// each at an offset drawn from the seed and the epoch; each window's labels
// are its tokens shifted by one.
func (t *Trainer) lmEpoch(ctx context.Context, toks []int, epoch, epochs int, progress func(Progress)) (EpochStats, error) {
	ctxLen := t.net.Positions()
	vocab := t.net.values[t.net.input].shape[1]
	windows := len(toks) / ctxLen
	rng := rand.New(rand.NewPCG(t.opts.Seed^0x1a2b3c, uint64(epoch)+1))
	bs := t.opts.Batch
	in := ctxLen * vocab
	x := make([]float32, bs*in)
	labels := make([]int, bs*ctxLen)
	batches := (windows + bs - 1) / bs
	start := time.Now()
	var lossSum float64
	var correct, seen int
	for b := 0; b < batches; b++ {
		if err := ctx.Err(); err != nil {
			return EpochStats{}, err
		}
		n := min(bs, windows-b*bs)
		clear(x[:n*in])
		for j := 0; j < n; j++ {
			s := rng.IntN(len(toks) - ctxLen)
			for p := 0; p < ctxLen; p++ {
				x[j*in+p*vocab+toks[s+p]] = 1
				labels[j*ctxLen+p] = toks[s+p+1]
			}
		}
		loss, c, err := t.Step(x[:n*in], labels[:n*ctxLen])
		if err != nil {
			return EpochStats{}, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return EpochStats{}, fmt.Errorf("train: loss diverged (%v) at epoch %d batch %d; lower the learning rate", loss, epoch, b)
		}
		lossSum += loss * float64(n)
		correct += c
		seen += n
		if progress != nil {
			el := time.Since(start)
			wps := float64(seen) / el.Seconds()
			progress(Progress{Epoch: epoch, Epochs: epochs, Batch: b + 1, Batches: batches, Seen: seen,
				Loss: lossSum / float64(seen), Accuracy: float64(correct) / float64(seen*ctxLen), ImagesPerSec: wps,
				Elapsed: el, ETA: time.Duration(float64(windows-seen) / wps * float64(time.Second))})
		}
	}
	d := time.Since(start)
	return EpochStats{Epoch: epoch, Loss: lossSum / float64(seen), Accuracy: float64(correct) / float64(seen*ctxLen),
		Duration: d, ImagesPerSec: float64(seen) / d.Seconds()}, nil
}
