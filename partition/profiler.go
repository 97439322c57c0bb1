package partition

import (
	"context"
	"fmt"
	"time"

	"github.com/edgesplit/edgesplit/internal/stats"
	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// ProfileConfig configures Measure. The zero value is valid.
type ProfileConfig struct {
	// Runs is the number of timed runs per node; the median is kept. If zero,
	// defaults to 10.
	Runs int
	// Warmup is the number of untimed runs first. If zero, defaults to 2.
	Warmup int
	// Threads is the engine's intra-op thread count. If zero, 1.
	Threads int
	// Device names the device class the profile describes (default "local").
	Device string
}

func (c ProfileConfig) withDefaults() ProfileConfig {
	if c.Runs <= 0 {
		c.Runs = 10
	}
	if c.Warmup <= 0 {
		c.Warmup = 2
	}
	if c.Threads <= 0 {
		c.Threads = 1
	}
	if c.Device == "" {
		c.Device = "local"
	}
	return c
}

// SyntheticInputs returns inputs for g's inputs: uniform [0,1) values
// (input i drawn from seed 1+i), dynamic dimensions set to 1. Latency
// profiles do not depend on the values, so this is the one input every
// profile of a model without real data is measured on.
func SyntheticInputs(g *model.Graph) []*tensor.Dense {
	inputs := make([]*tensor.Dense, len(g.Inputs))
	for i, in := range g.Inputs {
		inputs[i] = model.UniformTensor(in.Shape, uint64(1+i))
	}
	return inputs
}

// MeasureSynthetic is Measure on SyntheticInputs(g).
func MeasureSynthetic(ctx context.Context, g *model.Graph, cfg ProfileConfig) (*Profile, error) {
	return Measure(ctx, g, SyntheticInputs(g), cfg)
}

// Measure profiles the simplified graph g on this machine: every node's
// median latency over cfg.Runs runs of the whole graph (nodes are compiled
// unfused, so each node's time is its own), its output bytes, MACs and
// parameters, and every cut position. inputs follow g.Inputs.
func Measure(ctx context.Context, g *model.Graph, inputs []*tensor.Dense, cfg ProfileConfig) (*Profile, error) {
	cfg = cfg.withDefaults()
	net, err := model.Compile(g, model.Options{Threads: cfg.Threads, NoFusion: true})
	if err != nil {
		return nil, fmt.Errorf("partition: profile: %w", err)
	}
	ng := net.Graph()
	if len(ng.Nodes) != len(g.Nodes) {
		return nil, fmt.Errorf("partition: profile: graph is not simplified (%d nodes became %d)", len(g.Nodes), len(ng.Nodes))
	}
	ex := net.NewExtractor()
	for range cfg.Warmup {
		if _, err := ex.Run(ctx, inputs...); err != nil {
			return nil, fmt.Errorf("partition: profile: %w", err)
		}
	}
	samples := make([][]time.Duration, len(g.Nodes))
	for i := range samples {
		samples[i] = make([]time.Duration, cfg.Runs)
	}
	times := make([]time.Duration, len(g.Nodes))
	for r := range cfg.Runs {
		if _, err := ex.RunProfile(ctx, times, inputs...); err != nil {
			return nil, fmt.Errorf("partition: profile: %w", err)
		}
		for i, d := range times {
			samples[i][r] = d
		}
	}
	p, err := Static(g)
	if err != nil {
		return nil, err
	}
	p.Device = cfg.Device
	for i := range p.Nodes {
		p.Nodes[i].Latency = stats.MedianInPlace(samples[i])
	}
	return p, nil
}

// Static returns the profile of g without latencies: output bytes, MACs,
// parameters and cuts, which depend only on the graph.
func Static(g *model.Graph) (*Profile, error) {
	cuts, err := Cuts(g)
	if err != nil {
		return nil, err
	}
	p := &Profile{Model: g.Name, Nodes: make([]NodeProfile, len(g.Nodes)), Cuts: cuts}
	for i, nd := range g.Nodes {
		macs, params := model.NodeCost(g, i)
		var out int64
		for _, o := range nd.Outputs {
			if o == "" {
				continue
			}
			s, err := shapeOf(g, o)
			if err != nil {
				return nil, err
			}
			out += 4 * numel(s)
		}
		p.Nodes[i] = NodeProfile{Index: i, Name: nd.Name, Op: nd.Op, OutBytes: out, MACs: macs, Params: params}
	}
	for _, in := range g.Inputs {
		p.InputBytes += 4 * numel(in.Shape)
	}
	for _, o := range g.Outputs {
		s, err := shapeOf(g, o.Name)
		if err != nil {
			return nil, err
		}
		p.OutputBytes += 4 * numel(s)
	}
	return p, nil
}
