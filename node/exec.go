package node

import (
	"context"
	"fmt"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
	"gorgonia.org/tensor"
)

// headResult is what the edge computed for a plan: every tensor the head
// produced or was given, by name.
type headResult struct {
	k       int
	idx     []int  // the head's node set
	set     string // formatRanges of idx
	values  map[string]*tensor.Dense
	elapsed time.Duration
}

// headSet returns the edge's node set of plan p.
func headSet(p scheduler.Plan) []int {
	if p.K >= 0 {
		idx := make([]int, p.K)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return p.Head
}

// runHead runs the plan's head on the inputs (device-stretched).
func (n *Node) runHead(ctx context.Context, m *Model, p scheduler.Plan, inputs []*tensor.Dense, prev *headResult) (*headResult, error) {
	set := headSet(p)
	key := formatRanges(set)
	if prev != nil && prev.set == key {
		return prev, nil
	}
	h := &headResult{k: p.K, idx: set, set: key, values: make(map[string]*tensor.Dense)}
	for i, in := range m.Graph.Inputs {
		h.values[in.Name] = inputs[i]
	}
	if len(set) == 0 {
		return h, nil
	}
	pr, err := m.pieceSet(set)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	hin := make([]*tensor.Dense, len(pr.piece.Graph.Inputs))
	for i, vi := range pr.piece.Graph.Inputs {
		hin[i] = h.values[vi.Name]
	}
	outs, err := pr.run(ctx, hin)
	if err != nil {
		return nil, fmt.Errorf("node: head of %s: %w", m.ID, err)
	}
	if err := n.cfg.Device.Emulate(ctx, time.Since(start), n.deviceLatency(m, set)); err != nil {
		return nil, err
	}
	h.elapsed = time.Since(start)
	for i, vi := range pr.piece.Graph.Outputs {
		h.values[vi.Name] = outs[i]
	}
	return h, nil
}

// tailSet is the complement of the head set.
func tailSet(m *Model, head []int) []int {
	in := make([]bool, m.Nodes())
	for _, i := range head {
		in[i] = true
	}
	var idx []int
	for i := range in {
		if !in[i] {
			idx = append(idx, i)
		}
	}
	return idx
}

// runLocal finishes the model here: the whole model, or the tail after a
// head already computed for a failed offload.
func (n *Node) runLocal(ctx context.Context, m *Model, inputs []*tensor.Dense, h *headResult, res *InferResult) error {
	var set []int
	if h == nil {
		set = make([]int, m.Nodes())
		for i := range set {
			set[i] = i
		}
		h = &headResult{values: make(map[string]*tensor.Dense)}
		for i, in := range m.Graph.Inputs {
			h.values[in.Name] = inputs[i]
		}
	} else {
		set = tailSet(m, h.idx)
	}
	start := time.Now()
	if len(set) > 0 {
		pr, err := m.pieceSet(set)
		if err != nil {
			return err
		}
		in := make([]*tensor.Dense, len(pr.piece.Graph.Inputs))
		for i, vi := range pr.piece.Graph.Inputs {
			in[i] = h.values[vi.Name]
		}
		outs, err := pr.run(ctx, in)
		if err != nil {
			return fmt.Errorf("node: run %s locally: %w", m.ID, err)
		}
		if err := n.cfg.Device.Emulate(ctx, time.Since(start), n.deviceLatency(m, set)); err != nil {
			return err
		}
		for i, vi := range pr.piece.Graph.Outputs {
			h.values[vi.Name] = outs[i]
		}
	}
	res.Outputs = res.Outputs[:0]
	for _, o := range m.Graph.Outputs {
		res.Outputs = append(res.Outputs, h.values[o.Name])
	}
	var compute, over time.Duration
	if st := n.state(m); st != nil {
		compute = st.profile.HeadLatency(m.Nodes())
		if st.overhead != nil {
			over = st.overhead.value()
		}
	}
	res.Plan = scheduler.Plan{Policy: res.Policy, K: m.Nodes(), Predicted: scheduler.Breakdown{
		Overhead: over, EdgeCompute: compute, Total: over + compute},
		Accuracy: scheduler.Accuracy{Fidelity: scheduler.Exact, Lower: 1, Budget: res.Plan.Accuracy.Budget}}
	res.Measured = Measured{Planning: res.Measured.Planning, EdgeCompute: h.elapsed + time.Since(start)}
	res.BytesSent = 0
	return nil
}
