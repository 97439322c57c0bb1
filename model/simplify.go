package model

import (
	"errors"
	"fmt"
	"math"

	"gorgonia.org/tensor"
)

// defaultOpset is the opset assumed when a graph does not say.
const defaultOpset = 17

func opsetOf(g *Graph) int64 {
	if g.OpsetVersion <= 0 {
		return defaultOpset
	}
	return g.OpsetVersion
}

// analysis is the result of walking a graph: what is known of every tensor.
type analysis struct {
	vals   map[string]*tval
	anon   map[*Node][]*tval // outputs of nodes with omitted ("") outputs
	folded int               // elements of data created by folding so far
}

// analyze infers the shape of every tensor of g (nodes must be in
// topological order), folding constants into the values as it goes. It does
// not modify g. inputShapes overrides graph input shapes; unknown dims are 1.
func analyze(g *Graph, inputShapes map[string][]int) (*analysis, error) {
	a := &analysis{vals: make(map[string]*tval, len(g.Initializers)+2*len(g.Nodes))}
	for name, t := range g.Initializers {
		v, err := denseToVal(name, t)
		if err != nil {
			return nil, err
		}
		a.vals[name] = v
	}
	for _, in := range g.Inputs {
		if _, ok := a.vals[in.Name]; ok {
			continue // an initializer listed as input (IR < 4): a constant
		}
		shape := in.Shape
		if s, ok := inputShapes[in.Name]; ok {
			shape = s
		}
		shape = cloneInts(shape)
		for i, d := range shape {
			if d < 0 {
				shape[i] = 1
			}
		}
		if _, err := checkedNumel(shape, MaxTensorElements); err != nil {
			return nil, fmt.Errorf("model: graph input %q: %w", in.Name, err)
		}
		a.vals[in.Name] = &tval{shape: shape, dt: dtFloat}
	}
	for name := range inputShapes {
		found := false
		for _, in := range g.Inputs {
			if in.Name == name {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("model: input shape given for %q, which is not a graph input", name)
		}
	}
	opset := opsetOf(g)
	for _, n := range g.Nodes {
		if err := a.node(n, opset); err != nil {
			return nil, nodeErr(n, err)
		}
	}
	for _, o := range g.Outputs {
		if _, ok := a.vals[o.Name]; !ok {
			return nil, fmt.Errorf("model: graph output %q is not produced by any node", o.Name)
		}
	}
	return a, nil
}

func (a *analysis) node(n *Node, opset int64) error {
	def := registry[n.Op]
	if def == nil {
		return fmt.Errorf("%w %q", ErrUnsupportedOp, n.Op)
	}
	c := &nodeCtx{n: n, opset: opset, in: make([]*tval, len(n.Inputs)), out: make([]*tval, len(n.Outputs))}
	present := 0
	for i, name := range n.Inputs {
		if name == "" {
			continue
		}
		v, ok := a.vals[name]
		if !ok {
			return fmt.Errorf("input %d %q is not available (not produced before this node)", i, name)
		}
		c.in[i] = promoteInput(def, i, v)
		present++
	}
	for i := 0; i < def.minIn; i++ {
		if c.input(i) == nil {
			return shapeErrf("required input %d is missing (node has %d inputs)", i, len(n.Inputs))
		}
	}
	if len(n.Outputs) == 0 {
		return fmt.Errorf("node has no outputs")
	}
	for i := range c.out {
		c.out[i] = &tval{}
	}
	if err := def.infer(c); err != nil {
		return err
	}
	allConst := true
	for _, v := range c.in {
		if v != nil && !v.konst {
			allConst = false
		}
	}
	for i, v := range c.out {
		if n.Outputs[i] == "" {
			continue
		}
		if v.dt == 0 {
			return fmt.Errorf("output %d %q: %w", i, n.Outputs[i], unsupportedf("output not computed"))
		}
		if _, err := checkedNumel(v.shape, MaxTensorElements); err != nil {
			return fmt.Errorf("output %q: %w", n.Outputs[i], err)
		}
	}
	if allConst && present > 0 && !c.out[0].konst && def.build != nil {
		if err := foldByLayer(c, def); err != nil {
			return err
		}
	}
	for _, o := range c.out {
		if o.konst && o.numel() > 0 && !aliasesInput(o, c.in) {
			a.folded += o.numel()
			if a.folded > maxFoldTotal {
				return fmt.Errorf("constant folding creates more than %d elements: %w", maxFoldTotal, ErrTooLarge)
			}
		}
	}
	for i, name := range n.Outputs {
		if name == "" {
			if a.anon == nil {
				a.anon = map[*Node][]*tval{}
			}
			a.anon[n] = c.out
			continue
		}
		if _, dup := a.vals[name]; dup {
			return fmt.Errorf("output %q is already defined", name)
		}
		a.vals[name] = c.out[i]
	}
	return nil
}

// foldByLayer computes a node's outputs by running its layer on constant
// inputs, when the outputs are small enough to keep as initializers.
func foldByLayer(c *nodeCtx, def *opDef) error {
	total := 0
	for _, o := range c.out {
		if o.dt != dtFloat {
			return nil
		}
		total += o.numel()
	}
	if total > maxFoldElements {
		return nil // left to run at run time
	}
	l, err := def.build(c)
	if err != nil {
		return err
	}
	in := make([][]float32, len(c.in))
	for i, v := range c.in {
		if v != nil && v.dt == dtFloat {
			in[i] = v.f
		}
	}
	out := make([][]float32, len(c.out))
	for i, o := range c.out {
		out[i] = make([]float32, o.numel())
	}
	var scratch []float32
	if s, ok := l.(scratchUser); ok {
		scratch = make([]float32, s.scratchLen())
	}
	l.forward(in, out, scratch)
	for i, o := range c.out {
		o.konst = true
		o.f = out[i]
	}
	return nil
}

// copyGraph returns a copy of g that shares only immutable data (tensors).
func copyGraph(g *Graph) *Graph {
	ng := &Graph{
		Name:         g.Name,
		Inputs:       make([]ValueInfo, len(g.Inputs)),
		Outputs:      make([]ValueInfo, len(g.Outputs)),
		Nodes:        make([]*Node, len(g.Nodes)),
		Initializers: make(map[string]*tensor.Dense, len(g.Initializers)),
		Shapes:       make(map[string][]int),
		OpsetVersion: g.OpsetVersion,
	}
	for i, v := range g.Inputs {
		ng.Inputs[i] = ValueInfo{Name: v.Name, Shape: cloneInts(v.Shape)}
	}
	for i, v := range g.Outputs {
		ng.Outputs[i] = ValueInfo{Name: v.Name, Shape: cloneInts(v.Shape)}
	}
	for i, n := range g.Nodes {
		if n == nil {
			continue
		}
		nn := &Node{Name: n.Name, Op: n.Op,
			Inputs:  append([]string(nil), n.Inputs...),
			Outputs: append([]string(nil), n.Outputs...),
			Attrs:   make(map[string]Attribute, len(n.Attrs)),
		}
		for k, a := range n.Attrs {
			nn.Attrs[k] = a
		}
		ng.Nodes[i] = nn
	}
	for k, t := range g.Initializers {
		ng.Initializers[k] = t
	}
	return ng
}

// Simplify returns a runtime-ready copy of g: nodes in canonical topological
// order, every tensor's shape inferred (Shapes filled for inputs,
// initializers and every node output), constant subgraphs folded into
// initializers, BatchNormalization folded into the preceding Conv when that
// Conv's output has no other consumer, Identity/Dropout removed, dead nodes
// and unused initializers dropped. g itself is not modified.
//
// inputShapes optionally overrides graph input shapes (e.g. a batch size);
// unknown (-1) dims default to 1. Errors name the node, op and tensor.
func Simplify(g *Graph, inputShapes map[string][]int) (*Graph, error) {
	if g == nil {
		return nil, errors.New("model: nil graph")
	}
	for i, n := range g.Nodes {
		if n == nil {
			return nil, fmt.Errorf("model: node %d is nil", i)
		}
	}
	ng := copyGraph(g)
	// Initializers listed as inputs (IR < 4) are constants here.
	ins := ng.Inputs[:0]
	for _, in := range ng.Inputs {
		if _, ok := ng.Initializers[in.Name]; !ok {
			ins = append(ins, in)
		}
	}
	ng.Inputs = ins
	for i, n := range ng.Nodes {
		if n.Name == "" {
			n.Name = fmt.Sprintf("%s_%d", n.Op, i)
		}
	}
	if err := ng.Sort(); err != nil {
		return nil, err
	}
	for i, in := range ng.Inputs {
		if s, ok := inputShapes[in.Name]; ok {
			ng.Inputs[i].Shape = cloneInts(s)
		}
		for j, d := range ng.Inputs[i].Shape {
			if d < 0 {
				ng.Inputs[i].Shape[j] = 1
			}
		}
	}
	a, err := analyze(ng, inputShapes)
	if err != nil {
		return nil, err
	}
	isOutput := make(map[string]bool, len(ng.Outputs))
	for _, o := range ng.Outputs {
		isOutput[o.Name] = true
	}

	// 1. Drop folded nodes: their outputs become initializers.
	kept := ng.Nodes[:0]
	for _, n := range ng.Nodes {
		allConst := true
		for _, o := range n.Outputs {
			if o != "" && !a.vals[o].konst {
				allConst = false
			}
		}
		if allConst {
			for _, o := range n.Outputs {
				if o != "" {
					ng.Initializers[o] = valToDense(a.vals[o])
				}
			}
			continue
		}
		kept = append(kept, n)
	}
	ng.Nodes = kept

	// 2. Remove Identity and inference-mode Dropout.
	if err := removeIdentities(ng, isOutput); err != nil {
		return nil, err
	}

	// 3. Fold BatchNormalization into a preceding Conv.
	if err := foldBatchNorm(ng, a, isOutput); err != nil {
		return nil, err
	}

	// 4. Drop dead nodes and unused initializers.
	pruneGraph(ng)

	// 5. Final inference on the rewritten graph fills Shapes.
	if err := InferShapes(ng); err != nil {
		return nil, err
	}
	for i, o := range ng.Outputs {
		ng.Outputs[i].Shape = cloneInts(ng.Shapes[o.Name])
	}
	return ng, nil
}

func isIdentityLike(n *Node) bool {
	return n.Op == "Identity" || n.Op == "Dropout"
}

func removeIdentities(g *Graph, isOutput map[string]bool) error {
	alias := map[string]string{}
	resolve := func(s string) string {
		for {
			r, ok := alias[s]
			if !ok {
				return s
			}
			s = r
		}
	}
	consumed := map[string]bool{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			consumed[in] = true
		}
	}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if in != "" {
				n.Inputs[i] = resolve(in)
			}
		}
		if isIdentityLike(n) {
			if n.Op == "Dropout" && len(n.Outputs) > 1 && n.Outputs[1] != "" && (consumed[n.Outputs[1]] || isOutput[n.Outputs[1]]) {
				return nodeErr(n, unsupportedf("Dropout mask output %q is used", n.Outputs[1]))
			}
			if !isOutput[n.Outputs[0]] {
				alias[n.Outputs[0]] = n.Inputs[0]
				continue
			}
		}
		kept = append(kept, n)
	}
	g.Nodes = kept
	// Identities that produce a graph output: rename the producer's output
	// when that is safe, else keep the Identity as a copy.
	producers := g.Producers()
	kept = g.Nodes[:0]
	for _, n := range g.Nodes {
		if !isIdentityLike(n) {
			kept = append(kept, n)
			continue
		}
		x, y := n.Inputs[0], n.Outputs[0]
		p, ok := producers[x]
		if !ok || isOutput[x] {
			n.Op = "Identity"
			n.Outputs = n.Outputs[:1]
			kept = append(kept, n)
			continue
		}
		for k, o := range g.Nodes[p].Outputs {
			if o == x {
				g.Nodes[p].Outputs[k] = y
			}
		}
		for _, m := range g.Nodes {
			for k, in := range m.Inputs {
				if in == x {
					m.Inputs[k] = y
				}
			}
		}
	}
	g.Nodes = kept
	return nil
}

// foldBatchNorm folds BatchNormalization nodes into the Conv producing their
// input when that Conv's output has no other consumer.
func foldBatchNorm(g *Graph, a *analysis, isOutput map[string]bool) error {
	uses := map[string]int{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			uses[in]++
		}
	}
	producers := g.Producers()
	drop := map[*Node]bool{}
	for _, bn := range g.Nodes {
		if bn.Op != "BatchNormalization" || len(bn.Inputs) < 5 {
			continue
		}
		if len(bn.Outputs) > 1 {
			extra := false
			for _, o := range bn.Outputs[1:] {
				if o != "" {
					extra = true
				}
			}
			if extra {
				continue
			}
		}
		x := bn.Inputs[0]
		pi, ok := producers[x]
		if !ok || uses[x] != 1 || isOutput[x] {
			continue
		}
		conv := g.Nodes[pi]
		if conv.Op != "Conv" || drop[conv] {
			continue
		}
		wv := a.vals[conv.Input(1)]
		if wv == nil || !wv.konst || wv.dt != dtFloat || len(wv.shape) < 3 {
			continue
		}
		var bv *tval
		if b := conv.Input(2); b != "" {
			bv = a.vals[b]
			if bv == nil || !bv.konst || bv.dt != dtFloat {
				continue
			}
		}
		params := make([][]float32, 4)
		okp := true
		oc := wv.shape[0]
		for k := 0; k < 4; k++ {
			v := a.vals[bn.Inputs[1+k]]
			if v == nil || !v.konst || v.dt != dtFloat || len(v.f) != oc {
				okp = false
				break
			}
			params[k] = v.f
		}
		if !okp {
			continue
		}
		eps := float64(bn.AttrFloat("epsilon", 1e-5))
		scale, bias, mean, vr := params[0], params[1], params[2], params[3]
		per := len(wv.f) / oc
		nw := make([]float32, len(wv.f))
		nb := make([]float32, oc)
		for o := 0; o < oc; o++ {
			s := float64(scale[o]) / math.Sqrt(float64(vr[o])+eps)
			for j := 0; j < per; j++ {
				nw[o*per+j] = float32(float64(wv.f[o*per+j]) * s)
			}
			b0 := 0.0
			if bv != nil {
				b0 = float64(bv.f[o])
			}
			nb[o] = float32((b0-float64(mean[o]))*s + float64(bias[o]))
		}
		wName := uniqueName(g, conv.Name+"_bnfold_w")
		bName := uniqueName(g, conv.Name+"_bnfold_b")
		g.Initializers[wName] = valToDense(constF(cloneInts(wv.shape), nw))
		g.Initializers[bName] = valToDense(constF([]int{oc}, nb))
		for len(conv.Inputs) < 3 {
			conv.Inputs = append(conv.Inputs, "")
		}
		conv.Inputs[1], conv.Inputs[2] = wName, bName
		conv.Outputs[0] = bn.Outputs[0]
		drop[bn] = true
	}
	if len(drop) > 0 {
		kept := g.Nodes[:0]
		for _, n := range g.Nodes {
			if !drop[n] {
				kept = append(kept, n)
			}
		}
		g.Nodes = kept
	}
	return nil
}

func uniqueName(g *Graph, base string) string {
	name := base
	for i := 1; ; i++ {
		if _, ok := g.Initializers[name]; !ok {
			if _, ok := g.Producers()[name]; !ok {
				return name
			}
		}
		name = fmt.Sprintf("%s_%d", base, i)
	}
}

// pruneGraph removes nodes whose outputs nobody needs and initializers no
// node or output reads.
func pruneGraph(g *Graph) {
	need := map[string]bool{}
	for _, o := range g.Outputs {
		need[o.Name] = true
	}
	keep := make([]bool, len(g.Nodes))
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		for _, o := range n.Outputs {
			if o != "" && need[o] {
				keep[i] = true
			}
		}
		if keep[i] {
			for _, in := range n.Inputs {
				if in != "" {
					need[in] = true
				}
			}
		}
	}
	kept := g.Nodes[:0]
	for i, n := range g.Nodes {
		if keep[i] {
			kept = append(kept, n)
		}
	}
	g.Nodes = kept
	for name := range g.Initializers {
		if !need[name] {
			delete(g.Initializers, name)
		}
	}
}

// InferShapes fills g.Shapes for every graph input, initializer and node
// output of g, whose nodes must be in topological order. Graph input shapes
// with unknown (-1) dims are taken as 1. It is used by partition on pieces of
// a simplified graph.
func InferShapes(g *Graph) error {
	if g == nil {
		return errors.New("model: nil graph")
	}
	a, err := analyze(g, nil)
	if err != nil {
		return err
	}
	if g.Shapes == nil {
		g.Shapes = make(map[string][]int, len(a.vals))
	}
	for name, v := range a.vals {
		g.Shapes[name] = cloneInts(v.shape)
	}
	return nil
}

// promoteInput converts an int64 constant exponent of Pow to float32.
func promoteInput(def *opDef, i int, v *tval) *tval {
	if def.floatExponent && i == 1 && v.konst && v.dt == dtInt64 {
		return constF(v.shape, v.asFloats())
	}
	return v
}

// aliasesInput reports whether o's data is one of the inputs' data (Reshape
// and friends pass data through without copying).
func aliasesInput(o *tval, in []*tval) bool {
	for _, v := range in {
		if v == nil || !v.konst || v.numel() == 0 {
			continue
		}
		if o.dt == dtFloat && v.dt == dtFloat && &o.f[0] == &v.f[0] {
			return true
		}
		if o.dt == dtInt64 && v.dt == dtInt64 && &o.i[0] == &v.i[0] {
			return true
		}
	}
	return false
}
