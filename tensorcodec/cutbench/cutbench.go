// Package cutbench measures tensorcodec presets on the real activations at a
// model's cut points: for each cut and preset, the bytes on the wire, the
// ratio to float32, encode/decode speed, the error introduced, and — over a
// labelled set of inputs — how often the split model's top-1 answer agrees
// with the unsplit model's. It backs `edgesplit codec bench` and
// docs/benchmarks.md.
package cutbench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"gorgonia.org/tensor"
)

// Config selects what to measure. Graph must be simplified.
type Config struct {
	Graph *model.Graph
	// Inputs are the samples (each one set of graph inputs). At least one.
	Inputs [][]*tensor.Dense
	// Cuts lists the positions K to measure; nil means every single-tensor
	// cut except the last (which sends the output itself).
	Cuts []int
	// Presets to measure; nil means all.
	Presets []tensorcodec.Preset
	// SpeedTime is how long each speed loop runs (on the first sample's
	// boundary). Default 100 ms.
	SpeedTime time.Duration
	// Progress, when set, is called after each cut.
	Progress func(done, total int)
}

// Row is one cut × preset.
type Row struct {
	K        int
	Boundary []string
	Preset   tensorcodec.Preset
	// RawBytes and Bytes are per sample, averaged over the samples.
	RawBytes, Bytes float64
	Ratio           float64 // RawBytes / Bytes
	EncodeMBps      float64
	DecodeMBps      float64
	MemmoveMBps     float64
	MaxAbsErr       float64 // over all samples
	RelRMSE         float64 // over all samples
	// Agreement is the fraction of samples whose split top-1 (last output)
	// equals the unsplit one.
	Agreement float64
	Samples   int
}

// Run measures every selected cut × preset.
func Run(ctx context.Context, cfg Config) ([]Row, error) {
	g := cfg.Graph
	if g == nil || len(cfg.Inputs) == 0 {
		return nil, errors.New("cutbench: need a graph and at least one input")
	}
	cuts, err := partition.Cuts(g)
	if err != nil {
		return nil, err
	}
	ks := cfg.Cuts
	if ks == nil {
		for _, k := range partition.SingleTensorCuts(cuts) {
			if k < len(g.Nodes) {
				ks = append(ks, k)
			}
		}
	}
	presets := cfg.Presets
	if presets == nil {
		presets = tensorcodec.Presets()
	}
	if cfg.SpeedTime <= 0 {
		cfg.SpeedTime = 100 * time.Millisecond
	}
	// Unsplit answers.
	net, err := model.Compile(g, model.Options{})
	if err != nil {
		return nil, err
	}
	ex := net.NewExtractor()
	ref := make([]int, len(cfg.Inputs))
	for i, in := range cfg.Inputs {
		outs, err := ex.Run(ctx, in...)
		if err != nil {
			return nil, fmt.Errorf("cutbench: sample %d: %w", i, err)
		}
		ref[i] = argmax(outs[len(outs)-1])
	}
	var rows []Row
	for ci, k := range ks {
		if k < 0 || k > len(g.Nodes) {
			return nil, fmt.Errorf("cutbench: cut %d outside [0,%d]", k, len(g.Nodes))
		}
		r, err := partition.NewRunner(g, k, model.Options{})
		if err != nil {
			return nil, err
		}
		tail := r.Tail()
		var tailEx *model.Extractor
		if tail.Net != nil {
			tailEx = tail.Net.NewExtractor()
		}
		// Boundary tensors of every sample (copied: the runner reuses them).
		bounds := make([][]*tensor.Dense, len(cfg.Inputs))
		for i, in := range cfg.Inputs {
			_, b, err := r.Run(ctx, in...)
			if err != nil {
				return nil, fmt.Errorf("cutbench: cut %d sample %d: %w", k, i, err)
			}
			for _, t := range b {
				bounds[i] = append(bounds[i], t.Clone().(*tensor.Dense))
			}
		}
		for _, p := range presets {
			row := Row{K: k, Boundary: cuts[k].Boundary, Preset: p, Samples: len(cfg.Inputs)}
			sp, err := tensorcodec.Bench(ctx, p, bounds[0], tensorcodec.BenchOptions{MinTime: cfg.SpeedTime})
			if err != nil {
				return nil, fmt.Errorf("cutbench: cut %d %s: %w", k, p, err)
			}
			row.EncodeMBps, row.DecodeMBps, row.MemmoveMBps = sp.EncodeMBps, sp.DecodeMBps, sp.MemmoveMBps
			var st tensorcodec.Stats
			agree := 0
			var buf []byte
			var dec []*tensor.Dense
			for i := range cfg.Inputs {
				var s tensorcodec.Stats
				buf, s, err = tensorcodec.EncodePreset(buf[:0], p, bounds[i]...)
				if err != nil {
					return nil, err
				}
				st.Add(s)
				if dec, err = tensorcodec.Decode(dec, buf); err != nil {
					return nil, err
				}
				ans := ref[i]
				if tailEx != nil {
					outs, err := runTail(ctx, tailEx, tail, g, dec)
					if err != nil {
						return nil, err
					}
					ans = argmax(outs)
				}
				if ans == ref[i] {
					agree++
				}
			}
			n := float64(len(cfg.Inputs))
			row.RawBytes, row.Bytes = float64(st.RawBytes)/n, float64(st.Bytes)/n
			row.Ratio = row.RawBytes / row.Bytes
			row.MaxAbsErr, row.RelRMSE = st.MaxAbsErr, st.RelRMSE
			row.Agreement = float64(agree) / n
			rows = append(rows, row)
		}
		if cfg.Progress != nil {
			cfg.Progress(ci+1, len(ks))
		}
	}
	return rows, nil
}

// runTail feeds decoded boundary tensors to the tail and returns the last
// graph output.
func runTail(ctx context.Context, ex *model.Extractor, tail *partition.Piece, g *model.Graph, decoded []*tensor.Dense) (*tensor.Dense, error) {
	outs, err := ex.Run(ctx, decoded...)
	if err != nil {
		return nil, err
	}
	last := g.Outputs[len(g.Outputs)-1].Name
	for i, o := range tail.Graph.Outputs {
		if o.Name == last {
			return outs[i], nil
		}
	}
	return nil, fmt.Errorf("cutbench: the tail does not produce %q", last)
}

func argmax(t *tensor.Dense) int {
	d := t.Data().([]float32)
	best := 0
	for i := range d {
		if d[i] > d[best] {
			best = i
		}
	}
	return best
}
