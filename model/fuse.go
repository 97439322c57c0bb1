package model

import (
	"math"

	"github.com/edgesplit/edgesplit/model/internal/kern"
)

// Compile-time fusion of element-wise chains that exporters write for
// activations ONNX added late: x·clip(x+3, 0, 6)/6 (or ·(1/6)) and
// x·HardSigmoid(x) are HardSwish-like gates, x·Sigmoid(x) is SiLU/Swish. The graph keeps its nodes (so
// cuts and exports see what the file said); only the steps are fused.

// chainFusion is one recognised chain: nodes[0] runs the whole chain from x
// to y, the other nodes are fused into it.
type chainFusion struct {
	nodes []int
	x, y  string
	op    *chainOp
}

// chainOp computes a recognised chain with exactly the float32 operations,
// in the order, that the unfused nodes perform — so a fused run is
// bit-identical to running the nodes one by one (which is what a graph cut
// inside the chain does). It works block by block so the intermediate
// values stay in L1.
type chainOp struct {
	gated bool            // x·act(x): HardSwish as x·HardSigmoid(x), SiLU as x·Sigmoid(x) (else x·clip(x+add)·mul)
	act   kern.Activation // the Clip or HardSigmoid, applied by the same code as the unfused node
	add   float32
	mul   float32 // the last Mul's constant, or the Div's reciprocal
}

const chainBlock = 256

// apply computes y = chain(x); x and y may be the same slice.
func (c *chainOp) apply(x, y []float32) {
	if !c.gated {
		// The same float32 operations as the nodes: Add, Clip (clampAct),
		// Mul, then Div or Mul — where Div by a constant is a multiply by
		// its reciprocal in both the fused and the unfused form.
		a, m := c.add, c.mul
		cl := newClamper(c.act.Alpha, c.act.Beta)
		x = x[:len(y)]
		for i, v := range x {
			t := cl.clamp(v + a)
			t = v * t
			y[i] = t * m
		}
		return
	}
	var xb [chainBlock]float32
	for off := 0; off < len(y); off += chainBlock {
		n := min(chainBlock, len(y)-off)
		xs := xb[:n]
		copy(xs, x[off:off+n])
		t := y[off : off+n]
		copy(t, xs)
		c.act.Apply(t)
		for i, v := range xs {
			t[i] = v * t[i]
		}
	}
}

// chainLayer runs a chainOp as its own step.
type chainLayer struct{ op *chainOp }

func (l *chainLayer) forward(in, out [][]float32, _ []float32) { l.op.apply(in[0], out[0]) }

type fusionCtx struct {
	g         *Graph
	a         *analysis
	opset     int64
	consumers map[string][]int
	isOutput  map[string]bool
}

// sole returns the single consumer of tensor t, or -1.
func (f *fusionCtx) sole(t string) int {
	cs := f.consumers[t]
	if len(cs) != 1 || f.isOutput[t] {
		return -1
	}
	return cs[0]
}

// constScalar reports whether input k of node n is a float32 constant
// scalar equal to want (within rel. 1e-6), and returns its exact value.
func (f *fusionCtx) constScalar(n *Node, k int, want float64) (float32, bool) {
	v := f.a.vals[n.Input(k)]
	if v == nil || v.dt != dtFloat {
		return 0, false
	}
	x, ok := v.scalarFloat()
	return x, ok && math.Abs(float64(x)-want) <= 1e-6*math.Abs(want)
}

// other returns the input of a two-input node that is not t, and whether t
// is one of its inputs.
func other(n *Node, t string) (string, bool) {
	if len(n.Inputs) != 2 {
		return "", false
	}
	switch t {
	case n.Inputs[0]:
		return n.Inputs[1], true
	case n.Inputs[1]:
		return n.Inputs[0], true
	}
	return "", false
}

func (f *fusionCtx) findHardSwish() []chainFusion {
	var r []chainFusion
	for i, n := range f.g.Nodes {
		switch n.Op {
		case "Add":
			// x + 3 → Clip(0, 6) → Mul(x, ·) → Div 6 | Mul 1/6
			var x string
			op := &chainOp{}
			if k, ok := f.constScalar(n, 1, 3); ok {
				x, op.add = n.Inputs[0], k
			} else if k, ok := f.constScalar(n, 0, 3); ok {
				x, op.add = n.Inputs[1], k
			} else {
				continue
			}
			if v := f.a.vals[x]; v == nil || v.konst || len(f.a.vals[n.Outputs[0]].shape) != len(v.shape) || !equalInts(f.a.vals[n.Outputs[0]].shape, v.shape) {
				continue
			}
			j := f.sole(n.Outputs[0])
			if j < 0 || f.g.Nodes[j].Op != "Clip" || f.g.Nodes[j].Input(0) != n.Outputs[0] {
				continue
			}
			cn := f.g.Nodes[j]
			act, ok := clipAct(f.ctxOf(cn))
			if !ok || act.Alpha != 0 || act.Beta != 6 {
				continue
			}
			op.act = act
			m := f.sole(cn.Outputs[0])
			if m < 0 || f.g.Nodes[m].Op != "Mul" {
				continue
			}
			if o, ok := other(f.g.Nodes[m], cn.Outputs[0]); !ok || o != x {
				continue
			}
			d := f.sole(f.g.Nodes[m].Outputs[0])
			if d < 0 {
				continue
			}
			dn := f.g.Nodes[d]
			if dn.Input(0) != f.g.Nodes[m].Outputs[0] || len(dn.Inputs) != 2 {
				continue
			}
			if k, ok := f.constScalar(dn, 1, 6); ok && dn.Op == "Div" {
				op.mul = 1 / k
			} else if k, ok := f.constScalar(dn, 1, 1.0/6); ok && dn.Op == "Mul" {
				op.mul = k
			} else {
				continue
			}
			r = append(r, chainFusion{nodes: []int{i, j, m, d}, x: x, y: dn.Outputs[0], op: op})
		case "HardSigmoid", "Sigmoid":
			act, _ := registry[n.Op].act(f.ctxOf(n))
			x := n.Inputs[0]
			m := f.sole(n.Outputs[0])
			if m < 0 || f.g.Nodes[m].Op != "Mul" {
				continue
			}
			if o, ok := other(f.g.Nodes[m], n.Outputs[0]); !ok || o != x {
				continue
			}
			r = append(r, chainFusion{nodes: []int{i, m}, x: x, y: f.g.Nodes[m].Outputs[0], op: &chainOp{gated: true, act: act}})
		}
	}
	return r
}

func (f *fusionCtx) ctxOf(n *Node) *nodeCtx {
	c := &nodeCtx{n: n, opset: f.opset, in: make([]*tval, len(n.Inputs))}
	for k, name := range n.Inputs {
		if name != "" {
			c.in[k] = f.a.vals[name]
		}
	}
	return c
}

// consumersAre reports whether the consumers of t are exactly the nodes set.
func (f *fusionCtx) consumersAre(t string, nodes ...int) bool {
	cs := f.consumers[t]
	if f.isOutput[t] {
		return false
	}
	for _, c := range cs {
		found := false
		for _, n := range nodes {
			if c == n {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return len(cs) > 0
}
