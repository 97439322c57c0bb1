package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// Config describes a whole training run (what `edgesplit train` does). The
// zero value trains seed-cnn on MNIST for one epoch.
type Config struct {
	// Arch is the zoo model to train. Default "seed-cnn". Ignored when
	// Graph is set.
	Arch string
	// Graph, when set, is trained instead of a zoo model (it is not
	// modified).
	Graph *model.Graph
	// Dataset is "mnist" (default), "fashion-mnist" or a folder of class
	// sub-folders. Ignored when Data is set.
	Dataset string
	// DatasetOptions tune loading (seed of the split, validation
	// fraction, Limit for quick runs, preprocessing).
	DatasetOptions dataset.Options
	// Data, when set, is used instead of loading Dataset.
	Data *dataset.Splits
	// Epochs to train. Default 1.
	Epochs int
	// Batch size. Default 32.
	Batch int
	// LR is the learning rate (0 = the optimiser's default: 0.001 for
	// Adam, 0.01 for SGD).
	LR float64
	// LRDecay multiplies the learning rate after every epoch (epoch e
	// trains with LR·LRDecay^e). Default 1 (constant); must be in (0, 1].
	LRDecay float64
	// Optimizer is "adam" (default) or "sgd" (momentum 0.9).
	Optimizer string
	// Seed drives the zoo weights, shuffling and dropout.
	Seed uint64
	// Workers splits each batch across goroutines. Default 2.
	Workers int
	// Shift is the random translation of training images in pixels
	// (Options.Shift). Default 0.
	Shift int
	// Flip mirrors training images at random (Options.Flip).
	Flip bool
	// ExitWeights weighs each output's loss (multi-exit models). Default 1
	// each.
	ExitWeights []float64
	// Threshold is the early-exit entropy threshold in nats used by the
	// final evaluation. Default 0.5.
	Threshold float64
	// Init, when set ("he" or "glorot"), re-draws the weights from Seed
	// before training; by default the zoo's seeded He init is kept.
	Init InitKind
	// Progress, when set, is called after every batch.
	Progress func(Progress)
	// Logger receives one line per epoch. Default: discard.
	Logger *slog.Logger
}

// Result is a finished training run.
type Result struct {
	// Graph is the trained model (weights written back), ready to export.
	Graph *model.Graph
	// Sidecar describes it (preprocessing, labels, accuracy).
	Sidecar dataset.Sidecar
	// Test is the evaluation on the test split.
	Test *Eval
	// Val is the evaluation on the validation split (nil when empty).
	Val *Eval
	// Epochs has one entry per epoch.
	Epochs []EpochStats
	// Skipped lists unusable files of a dataset folder.
	Skipped []dataset.Skipped
}

// Run loads the data, builds the model, trains it, evaluates it on the test
// split and returns the trained graph with its sidecar. ctx cancels between
// batches.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Arch == "" {
		cfg.Arch = "seed-cnn"
	}
	if cfg.Dataset == "" {
		cfg.Dataset = "mnist"
		if cfg.Data != nil {
			cfg.Dataset = cfg.Data.Name
		}
	}
	if cfg.Epochs == 0 {
		cfg.Epochs = 1
	}
	if cfg.Epochs < 0 || cfg.Epochs > 10000 {
		return nil, fmt.Errorf("train: %d epochs, want 1..10000", cfg.Epochs)
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
	if cfg.Init != "" {
		g = cloneGraph(g)
		if err := Init(g, cfg.Init, cfg.Seed); err != nil {
			return nil, err
		}
	}
	net, err := New(g)
	if err != nil {
		return nil, err
	}
	data := cfg.Data
	if data == nil {
		opts := cfg.DatasetOptions
		if opts.Seed == 0 {
			opts.Seed = cfg.Seed
		}
		if data, err = dataset.Load(ctx, cfg.Dataset, opts); err != nil {
			return nil, err
		}
	}
	if data.Train == nil || data.Train.Len() == 0 || data.Test == nil || data.Test.Len() == 0 {
		return nil, fmt.Errorf("train: %w: dataset %q needs training and test images", dataset.ErrEmpty, data.Name)
	}
	for k := range net.outputs {
		if c := net.Classes(k); c < len(data.Classes) {
			return nil, fmt.Errorf("train: model %q output %d has %d classes but dataset %q has %d (labels would be out of range)",
				arch, k, c, data.Name, len(data.Classes))
		}
	}
	opt, err := NewOptimizer(cfg.Optimizer, cfg.LR)
	if err != nil {
		return nil, err
	}
	tr, err := NewTrainer(net, Options{Batch: cfg.Batch, Workers: cfg.Workers, Optimizer: opt, Seed: cfg.Seed, ExitWeights: cfg.ExitWeights, Shift: cfg.Shift, Flip: cfg.Flip})
	if err != nil {
		return nil, err
	}
	res := &Result{Skipped: data.Skipped}
	lr0 := opt.LearningRate()
	for e := 0; e < cfg.Epochs; e++ {
		opt.SetLearningRate(lr0 * math.Pow(cfg.LRDecay, float64(e)))
		st, err := tr.Epoch(ctx, data.Train, e, cfg.Epochs, cfg.Progress)
		if err != nil {
			return nil, err
		}
		res.Epochs = append(res.Epochs, st)
		log.Info("epoch", "epoch", e+1, "of", cfg.Epochs, "loss", st.Loss, "train_acc", st.Accuracy,
			"seconds", st.Duration.Seconds(), "images_per_s", st.ImagesPerSec)
	}
	if res.Test, err = tr.Evaluate(ctx, data.Test, cfg.Threshold); err != nil {
		return nil, err
	}
	if data.Val != nil && data.Val.Len() > 0 {
		if res.Val, err = tr.Evaluate(ctx, data.Val, cfg.Threshold); err != nil {
			return nil, err
		}
	}
	res.Graph = net.Graph()
	o := tr.Options()
	res.Sidecar = dataset.Sidecar{
		Arch: arch, Dataset: cfg.Dataset, Preprocess: data.Preprocess, Labels: data.Classes, Outputs: net.Outputs(),
		Accuracy: res.Test.Accuracy, TestImages: res.Test.N, Epochs: cfg.Epochs, Batch: o.Batch,
		LR: lr0, LRDecay: cfg.LRDecay, Optimizer: opt.Name(), Seed: cfg.Seed,
	}
	if len(net.outputs) > 1 {
		res.Sidecar.ExitAccuracy = res.Test.ExitAccuracy
	}
	return res, nil
}

// Save writes the trained model to path as ONNX and its sidecar beside it
// (dataset.SidecarPath).
func (r *Result) Save(path string) error { return Export(path, r.Graph, r.Sidecar) }

// Export writes g to path as ONNX (model/onnx) and sc as JSON to
// dataset.SidecarPath(path). On a sidecar error the ONNX file is removed.
func Export(path string, g *model.Graph, sc dataset.Sidecar) error {
	if err := onnx.Save(path, g); err != nil {
		return fmt.Errorf("train: export: %w", err)
	}
	if err := dataset.WriteSidecar(dataset.SidecarPath(path), sc); err != nil {
		os.Remove(path)
		return fmt.Errorf("train: export: %w", err)
	}
	return nil
}

// EvaluateGraph evaluates a (trained) graph on set, split across workers
// (0 → 2), with the early-exit entropy threshold in nats (0 → 0.5). A graph
// the trainer can run (TrainableOps) is evaluated with its batched
// inference pass; any other graph (e.g. an ONNX file from another
// framework) runs image by image in the engine (model.Compile), with each
// output taken as probabilities when a Softmax makes it and as logits
// otherwise.
func EvaluateGraph(ctx context.Context, g *model.Graph, set *dataset.Set, workers int, threshold float64) (*Eval, error) {
	if workers == 0 {
		workers = 2
	}
	net, err := New(g)
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			return evaluateEngine(ctx, g, set, workers, threshold)
		}
		return nil, err
	}
	tr, err := NewTrainer(net, Options{Batch: 64, Workers: workers})
	if err != nil {
		return nil, err
	}
	return tr.Evaluate(ctx, set, threshold)
}

// evaluateEngine is EvaluateGraph through the inference engine.
func evaluateEngine(ctx context.Context, g *model.Graph, set *dataset.Set, workers int, threshold float64) (*Eval, error) {
	if set == nil || set.Len() == 0 {
		return nil, fmt.Errorf("train: %w: no evaluation images", dataset.ErrEmpty)
	}
	if threshold == 0 {
		threshold = 0.5
	}
	en, err := model.Compile(g, model.Options{})
	if err != nil {
		return nil, err
	}
	ins := en.Inputs()
	if len(ins) != 1 || shapeSize(ins[0].Shape) != set.ImageLen() || len(ins[0].Shape) == 0 || ins[0].Shape[0] != 1 {
		return nil, fmt.Errorf("train: model inputs %v do not take one %d×%d×%d image", ins, set.C, set.H, set.W)
	}
	outs := en.Outputs()
	names := make([]string, len(outs))
	isProb := make([]bool, len(outs))
	softmaxOut := map[string]bool{}
	for _, n := range en.Graph().Nodes {
		if n.Op == "Softmax" {
			softmaxOut[n.Outputs[0]] = true
		}
	}
	classes := 0
	for k, o := range outs {
		names[k] = o.Name
		isProb[k] = softmaxOut[o.Name]
		c := shapeSize(o.Shape)
		if len(o.Shape) == 0 || o.Shape[0] != 1 || c < len(set.Classes) {
			return nil, fmt.Errorf("train: model output %q has shape %v; want 1×classes with ≥ %d classes", o.Name, o.Shape, len(set.Classes))
		}
		if k == 0 || c < classes {
			classes = c
		}
	}
	if err := checkLabels(set, classes); err != nil {
		return nil, err
	}
	nOut := len(outs)
	res := make([]sampleOut, set.Len()*nOut)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	per := (set.Len() + workers - 1) / workers
	for wi := 0; wi < workers; wi++ {
		lo, hi := min(wi*per, set.Len()), min((wi+1)*per, set.Len())
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex := en.NewExtractor()
			buf := make([]float32, set.ImageLen())
			x := tensor.New(tensor.WithShape(ins[0].Shape...), tensor.WithBacking(buf))
			var row []float32
			for i := lo; i < hi; i++ {
				copy(buf, set.Image(i))
				y, err := ex.Run(ctx, x)
				if err != nil {
					errs[wi] = err
					return
				}
				for k := range y {
					d := y[k].Data().([]float32)
					row = append(row[:0], d...)
					if isProb[k] {
						for j, p := range row {
							row[j] = float32(math.Log(math.Max(float64(p), 1e-30)))
						}
					}
					res[i*nOut+k] = scoreRow(row, set.Labels[i])
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
	return summarize(res, set.Labels, names, shapeSize(outs[nOut-1].Shape), threshold), nil
}

// cloneGraph copies g's structure and initializer map (tensors shared).
func cloneGraph(g *model.Graph) *model.Graph {
	c := *g
	c.Nodes = append([]*model.Node(nil), g.Nodes...)
	c.Initializers = make(map[string]*tensor.Dense, len(g.Initializers))
	for k, v := range g.Initializers {
		c.Initializers[k] = v
	}
	return &c
}
