package node

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"gorgonia.org/tensor"
)

// codecTable is an edge's codec costs for one model: speeds measured at
// start, ratios per prefix cut measured at start on a seeded input — or,
// when the model is calibrated, the ratios, speeds and agreement measured on
// its calibration inputs — and then learned from every boundary sent.
type codecTable struct {
	mu     sync.Mutex
	codecs []scheduler.CodecModel // CutRatios filled, len = nodes+1
}

// snapshot returns a copy the scheduler can read while sends update the table.
func (t *codecTable) snapshot() []scheduler.CodecModel {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.codecs)
	for i := range out {
		out[i].CutRatios = slices.Clone(out[i].CutRatios)
	}
	return out
}

// observe folds the ratio of one real send at prefix cut k into the table
// (scheduler.ObserveCutRatio).
func (t *codecTable) observe(codec string, k int, raw, wire int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	scheduler.ObserveCutRatio(t.codecs, codec, k, raw, wire)
}

// newCodecTable measures each codec's ratio at every prefix cut of m: it runs
// m once on a seeded input with every boundary tensor kept as an output, and
// encodes each cut's boundary with each preset.
func newCodecTable(ctx context.Context, m *Model, base []scheduler.CodecModel) (*codecTable, error) {
	cuts, err := partition.Cuts(m.Graph)
	if err != nil {
		return nil, err
	}
	g := *m.Graph
	g.Outputs = nil
	seen := map[string]bool{}
	for _, c := range cuts {
		for _, name := range c.Boundary {
			if !seen[name] {
				seen[name] = true
				g.Outputs = append(g.Outputs, model.ValueInfo{Name: name, Shape: m.Graph.Shapes[name]})
			}
		}
	}
	net, err := model.Compile(&g, model.Options{})
	if err != nil {
		return nil, err
	}
	inputs := make([]*tensor.Dense, len(g.Inputs))
	for i, in := range g.Inputs {
		inputs[i] = model.UniformTensor(in.Shape, uint64(7+i))
	}
	outs, err := net.NewExtractor().Run(ctx, inputs...)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*tensor.Dense, len(outs))
	for i, o := range g.Outputs {
		byName[o.Name] = outs[i]
	}
	for i, in := range g.Inputs {
		byName[in.Name] = inputs[i]
	}
	t := &codecTable{codecs: slices.Clone(base)}
	var buf []byte
	ts := make([]*tensor.Dense, 0, 4)
	for i := range t.codecs {
		c := &t.codecs[i]
		p, err := tensorcodec.ParsePreset(c.Name)
		if err != nil {
			return nil, err
		}
		c.CutRatios = make([]float64, len(cuts))
		for k, cut := range cuts {
			if k == len(cuts)-1 {
				break // edge-only sends nothing
			}
			ts = ts[:0]
			for _, name := range cut.Boundary {
				ts = append(ts, byName[name])
			}
			var st tensorcodec.Stats
			if buf, st, err = tensorcodec.EncodePreset(buf[:0], p, ts...); err != nil {
				return nil, err
			}
			c.CutRatios[k] = st.Ratio()
		}
	}
	if m.Calibration != nil {
		t.codecs = m.Calibration.Apply(t.codecs)
	}
	return t, nil
}

// CutCodecs returns the codec costs an edge would plan model m with at
// start: base's speeds, each codec's ratio at every prefix cut (measured on
// a seeded input), and, when m is calibrated, the ratios, speeds and
// agreement its calibration measured on real inputs.
func CutCodecs(ctx context.Context, m *Model, base []scheduler.CodecModel) ([]scheduler.CodecModel, error) {
	t, err := newCodecTable(ctx, m, base)
	if err != nil {
		return nil, err
	}
	return t.snapshot(), nil
}

// calibrate replaces the table's figures by a calibration's (fetched from
// a peer after start).
func (t *codecTable) calibrate(c *scheduler.Calibration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.codecs = c.Apply(t.codecs)
}

// overheadWindow is scheduler.OverheadWindow, the residuals the overhead
// estimate takes the median of.
const overheadWindow = scheduler.OverheadWindow

// overheadEstimate is an edge's fixed per-request cost for one model
// (scheduler.OverheadLearner), under a lock.
type overheadEstimate struct {
	mu sync.Mutex
	o  scheduler.OverheadLearner
}

func (o *overheadEstimate) observe(residual time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.o.Observe(residual)
}

func (o *overheadEstimate) value() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.o.Value()
}

// calibrateOverhead runs model m edge-only a few times at start, as a
// request would, to seed the overhead estimate.
func (n *Node) calibrateOverhead(ctx context.Context, m *Model, o *overheadEstimate) error {
	x := make([]*tensor.Dense, len(m.Graph.Inputs))
	for i, in := range m.Graph.Inputs {
		x[i] = model.UniformTensor(in.Shape, uint64(3+i))
	}
	compute := n.profileOf(m).HeadLatency(m.Nodes())
	var res InferResult
	for i := range 6 {
		start := time.Now()
		if err := n.runLocal(ctx, m, x, nil, &res); err != nil {
			return err
		}
		if i > 0 { // the first run compiles the piece
			o.observe(time.Since(start) - compute)
		}
	}
	return nil
}
