package model

import (
	"math"
	"slices"

	"github.com/edgesplit/edgesplit/model/internal/kern"
)

// Compile-time fusion of element-wise chains that exporters write for
// activations ONNX added late: x·clip(x+3, 0, 6)/6 (or ·(1/6)) and
// x·HardSigmoid(x) are HardSwish-like gates, x·Sigmoid(x) is SiLU/Swish;
// and of runs of such gates and scalar arithmetic (x·s, x+s, x−s, s−x, x/s,
// s/x with constant scalars s — learnable affine blocks as PP-LCNetV3 writes
// them). The graph keeps its nodes (so cuts and exports see what the file
// said); only the steps are fused.

// chainFusion is one recognised chain: nodes[0] runs the whole chain from x
// to y, the other nodes are fused into it.
type chainFusion struct {
	nodes []int
	x, y  string
	op    *chainOp
}

// stageKind is what one stage of a chain computes.
type stageKind uint8

const (
	stageClipGate   stageKind = iota // x·clip(x+add)·mul: Add, Clip, Mul, then Div or Mul
	stageGated                       // x·act(x): HardSwish as x·HardSigmoid(x), SiLU as x·Sigmoid(x)
	stageScalar                      // x op s, or s op x when left
	stageAffine                      // (x·s)+b: a Mul then an Add of scalars
	stageAffineGate                  // affine, clip gate, affine in one pass (either affine may be the identity)
)

// chainStage is one stage of a chain: one node (scalar arithmetic) or the
// nodes of one gate.
type chainStage struct {
	kind stageKind
	act  kern.Activation // stageClipGate's Clip, stageGated's activation
	cl   clamper         // stageClipGate: act as clampAct applies it
	add  float32         // stageClipGate
	mul  float32         // stageClipGate: the last Mul's constant, or the Div's reciprocal
	op   binOp           // stageScalar: opAdd, opSub, opMul or opDiv
	s    float32         // stageScalar's constant
	left bool            // stageScalar: s op x
	b    float32         // stageAffine's addend
	// stageAffineGate: x ← (x·ps)+pb, then the clip gate, then (x·qs)+qb;
	// an absent affine is (·1)+(−0), which changes no value (−0 included).
	ps, pb, qs, qb float32
}

// negZero is −0: v + negZero == v for every v, −0 included.
var negZero = float32(math.Copysign(0, -1))

// fuseStages merges runs of stages into single passes that perform the
// same float32 operations in the same order: a scalar Mul then a scalar
// Add become one affine stage (the conversion in (x·s)+b keeps it two
// roundings, never an FMA), and affine stages around a clip gate join it.
func fuseStages(in []chainStage) []chainStage {
	var r []chainStage
	for i := 0; i < len(in); i++ {
		st := in[i]
		if st.kind == stageScalar && st.op == opMul && i+1 < len(in) && in[i+1].kind == stageScalar && in[i+1].op == opAdd {
			// Add and Mul by a scalar commute with their operand order.
			st = chainStage{kind: stageAffine, s: st.s, b: in[i+1].s}
			i++
		}
		r = append(r, st)
	}
	var out []chainStage
	for i := 0; i < len(r); i++ {
		st := r[i]
		var pre *chainStage
		if st.kind == stageAffine && i+1 < len(r) && r[i+1].kind == stageClipGate {
			pre = &r[i]
			i++
			st = r[i]
		}
		if st.kind != stageClipGate {
			out = append(out, st)
			continue
		}
		g := st
		g.kind, g.ps, g.pb, g.qs, g.qb = stageAffineGate, 1, negZero, 1, negZero
		if pre != nil {
			g.ps, g.pb = pre.s, pre.b
		}
		if i+1 < len(r) && r[i+1].kind == stageAffine {
			g.qs, g.qb = r[i+1].s, r[i+1].b
			i++
		}
		out = append(out, g)
	}
	return out
}

// chainOp computes a recognised chain with exactly the float32 operations,
// in the order, that the unfused nodes perform — so a fused run is
// bit-identical to running the nodes one by one (which is what a graph cut
// inside the chain does). It works block by block so the intermediate
// values stay in L1.
type chainOp struct {
	stages []chainStage
}

// chainBlock is the number of values a chain carries through all its
// stages at a time (16 KiB: stays in L1 with the stage's scratch).
const chainBlock = 4096

// apply computes y = chain(x); x and y may be the same slice.
func (c *chainOp) apply(x, y []float32) {
	var xb [chainBlock]float32
	x = x[:len(y)]
	same := len(y) > 0 && &x[0] == &y[0]
	for off := 0; off < len(y); off += chainBlock {
		n := min(chainBlock, len(y)-off)
		t := y[off : off+n]
		if !same {
			copy(t, x[off:off+n])
		}
		for i := range c.stages {
			c.stages[i].apply(t, xb[:n])
		}
	}
}

// apply runs the stage on t in place; tmp is scratch of t's length.
func (st *chainStage) apply(t, tmp []float32) {
	switch st.kind {
	case stageClipGate:
		// The same float32 operations as the nodes: Add, Clip (clampAct),
		// Mul, then Div or Mul — where Div by a constant is a multiply by
		// its reciprocal in both the fused and the unfused form.
		a, m, cl := st.add, st.mul, st.cl
		for i, v := range t {
			u := cl.clamp(v + a)
			u = v * u
			t[i] = u * m
		}
	case stageGated:
		copy(tmp, t)
		st.act.Apply(t)
		for i, v := range tmp {
			t[i] = v * t[i]
		}
	case stageScalar:
		scalarRow(st.op, st.left, t, st.s)
	case stageAffine:
		sc, b := st.s, st.b
		for i, v := range t {
			t[i] = float32(v*sc) + b
		}
	case stageAffineGate:
		if st.cl.zeroLo && !math.Signbit(float64(st.act.Beta)) {
			// The same arithmetic, 8 lanes at a time.
			kern.AffineClipGate(t, kern.Gate{PS: st.ps, PB: st.pb, A: st.add, Hi: st.act.Beta, M: st.mul, QS: st.qs, QB: st.qb})
			return
		}
		a, m, cl := st.add, st.mul, st.cl
		ps, pb, qs, qb := st.ps, st.pb, st.qs, st.qb
		for i, v := range t {
			v = float32(v*ps) + pb
			u := cl.clamp(v + a)
			u = v * u
			u = u * m
			t[i] = float32(u*qs) + qb
		}
	}
}

// scalarRow computes t[i] = t[i] op s (s op t[i] when left) in place: the
// operations binRow performs with one scalar operand.
func scalarRow(op binOp, left bool, t []float32, s float32) {
	switch op {
	case opAdd:
		for i, v := range t {
			t[i] = v + s
		}
	case opMul:
		for i, v := range t {
			t[i] = v * s
		}
	case opSub:
		if left {
			for i, v := range t {
				t[i] = s - v
			}
			return
		}
		for i, v := range t {
			t[i] = v - s
		}
	case opDiv:
		if left {
			for i, v := range t {
				t[i] = s / v
			}
			return
		}
		for i, v := range t {
			t[i] = v / s
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
			op := chainStage{kind: stageClipGate}
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
			op.act, op.cl = act, newClamper(act.Alpha, act.Beta)
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
			r = append(r, chainFusion{nodes: []int{i, j, m, d}, x: x, y: dn.Outputs[0], op: &chainOp{stages: []chainStage{op}}})
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
			r = append(r, chainFusion{nodes: []int{i, m}, x: x, y: f.g.Nodes[m].Outputs[0], op: &chainOp{stages: []chainStage{{kind: stageGated, act: act}}}})
		}
	}
	return r
}

// scalarStage reports whether n is Add, Sub, Mul or Div of a computed
// float32 tensor x and a constant float32 scalar, giving x's shape; it
// returns the stage and x. Div by a constant runs as the binary layer runs
// it: a multiply by the reciprocal when that is a normal float32.
func (f *fusionCtx) scalarStage(n *Node) (chainStage, string, bool) {
	st := chainStage{kind: stageScalar}
	op, ok := arithOp(n.Op)
	if !ok || len(n.Inputs) != 2 || len(n.Outputs) != 1 {
		return st, "", false
	}
	st.op = op
	a, b, y := f.a.vals[n.Inputs[0]], f.a.vals[n.Inputs[1]], f.a.vals[n.Outputs[0]]
	if a == nil || b == nil || y == nil || a.dt != dtFloat || b.dt != dtFloat {
		return st, "", false
	}
	xi := 0
	switch {
	case !a.konst && b.konst && b.numel() == 1:
		st.s = b.f[0]
	case a.konst && a.numel() == 1 && !b.konst:
		st.s, st.left, xi = a.f[0], true, 1
	default:
		return st, "", false
	}
	x := f.a.vals[n.Inputs[xi]]
	if !equalInts(y.shape, x.shape) {
		return st, "", false
	}
	if st.op == opDiv && !st.left {
		if r, ok := divRecip(st.s); ok {
			st.op, st.s = opMul, r
		}
	}
	return st, n.Inputs[xi], true
}

// findChains returns the element-wise chains to fuse: the gates
// findHardSwish finds and single scalar-arithmetic nodes, joined into
// maximal runs where each link's output feeds only the next link.
func (f *fusionCtx) findChains() []chainFusion {
	segs := f.findHardSwish()
	claimed := map[int]bool{}
	for _, s := range segs {
		for _, k := range s.nodes {
			claimed[k] = true
		}
	}
	for i, n := range f.g.Nodes {
		if claimed[i] {
			continue
		}
		if st, x, ok := f.scalarStage(n); ok {
			segs = append(segs, chainFusion{nodes: []int{i}, x: x, y: n.Outputs[0], op: &chainOp{stages: []chainStage{st}}})
		}
	}
	byX := map[string][]int{}
	for k, s := range segs {
		byX[s.x] = append(byX[s.x], k)
	}
	next := make([]int, len(segs))
	hasPrev := make([]bool, len(segs))
	for k, s := range segs {
		next[k] = -1
		if f.isOutput[s.y] {
			continue
		}
		for _, j := range byX[s.y] {
			if f.consumersAre(s.y, segs[j].nodes...) {
				next[k] = j
				hasPrev[j] = true
				break
			}
		}
	}
	var r []chainFusion
	for k := range segs {
		if hasPrev[k] {
			continue
		}
		ch := chainFusion{x: segs[k].x, op: &chainOp{}}
		for j := k; j >= 0; j = next[j] {
			ch.nodes = append(ch.nodes, segs[j].nodes...)
			ch.op.stages = append(ch.op.stages, segs[j].op.stages...)
			ch.y = segs[j].y
		}
		ch.op.stages = fuseStages(ch.op.stages)
		r = append(r, ch)
	}
	slices.SortFunc(r, func(a, b chainFusion) int { return a.nodes[0] - b.nodes[0] })
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
