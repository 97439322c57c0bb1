package train

import (
	"errors"
	"fmt"
	"slices"

	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// ErrUnsupported is wrapped by New when a graph uses an operator, attribute
// or layout the trainer cannot differentiate.
var ErrUnsupported = errors.New("train: unsupported")

// TrainableOps lists the operators a training graph may contain. A Softmax
// that makes a graph output is fused into the loss; elsewhere it runs over
// the last axis (attention).
var TrainableOps = []string{
	"AveragePool", "BatchNormalization", "Clip", "Conv", "Dropout", "Flatten", "Gemm",
	"GlobalAveragePool", "Identity", "MaxPool", "Relu", "Add", "Softmax",
	"Gelu", "LayerNormalization", "MatMul", "Mul", "ReduceMean", "Reshape", "Transpose",
}

// value is one activation tensor; shapes exclude the batch dimension.
type value struct {
	name     string
	shape    []int
	size     int
	needGrad bool // some parameter lies upstream, so dL/dvalue is needed
}

// param is one trainable tensor (a float32 initializer); data is the master
// copy the optimiser updates.
type param struct {
	name  string
	shape []int
	data  []float32
}

// output is one graph output: the loss is softmax cross-entropy on logits,
// classes wide, at positions positions per sample (1 for a classifier; a
// language model's Context, each position with its own label).
type output struct {
	name      string
	logits    int  // value index of the logits
	softmax   bool // the graph applies Softmax to logits to make the output
	classes   int
	positions int
}

// Net is a graph compiled for training: layers with forward and backward
// passes over a batch, trainable parameters and batch-norm running
// statistics. It is not safe for concurrent use; Fit and Evaluate run their
// own worker goroutines internally.
type Net struct {
	g       *model.Graph
	values  []value
	vindex  map[string]int
	params  []*param
	pindex  map[string]int
	state   map[string][]float32 // BN running mean/var, by initializer name
	layers  []layer
	input   int
	outputs []output
}

func shapeSize(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// New compiles g for training. g must have exactly one input (N×C×H×W or
// N×F, batch first) and every node must be one of TrainableOps with
// supported attributes; errors name the node. g is not modified: the Net
// keeps its own copies of the weights (see Graph to write them back).
func New(g *model.Graph) (*Net, error) { return newNet(g, false) }

// newNet compiles g; inputGrad makes the input gradient available (for
// gradient checks).
func newNet(g *model.Graph, inputGrad bool) (*Net, error) {
	if g == nil {
		return nil, fmt.Errorf("train: nil graph")
	}
	if len(g.Inputs) != 1 {
		return nil, fmt.Errorf("%w: graph %q has %d inputs, want 1", ErrUnsupported, g.Name, len(g.Inputs))
	}
	if len(g.Outputs) == 0 {
		return nil, fmt.Errorf("train: graph %q has no outputs", g.Name)
	}
	in := g.Inputs[0]
	if len(in.Shape) < 2 {
		return nil, fmt.Errorf("%w: input %q has shape %v, want batch first and at least 2-D", ErrUnsupported, in.Name, in.Shape)
	}
	size := 1
	for _, d := range in.Shape[1:] {
		if d <= 0 || d > 1<<20 {
			return nil, fmt.Errorf("%w: input %q has shape %v; every non-batch dimension must be known", ErrUnsupported, in.Name, in.Shape)
		}
		if size *= d; size > 1<<26 {
			return nil, fmt.Errorf("%w: input %q of shape %v is too large to train", ErrUnsupported, in.Name, in.Shape)
		}
	}
	sorted := &model.Graph{Name: g.Name, Inputs: g.Inputs, Outputs: g.Outputs, Initializers: g.Initializers,
		Nodes: slices.Clone(g.Nodes)}
	if err := sorted.Sort(); err != nil {
		return nil, err
	}
	n := &Net{g: g, vindex: map[string]int{}, pindex: map[string]int{}, state: map[string][]float32{}}
	n.input = n.addValue(in.Name, in.Shape[1:])
	n.values[n.input].needGrad = inputGrad

	// Outputs made by a Softmax are trained on the Softmax's input.
	outSoftmax := map[string]bool{}
	isOutput := map[string]bool{}
	for _, o := range g.Outputs {
		isOutput[o.Name] = true
	}
	consumers := map[string]int{}
	for _, nd := range sorted.Nodes {
		for _, x := range nd.Inputs {
			consumers[x]++
		}
	}
	for _, nd := range sorted.Nodes {
		if nd.Op == "Softmax" && len(nd.Outputs) == 1 && isOutput[nd.Outputs[0]] && consumers[nd.Outputs[0]] == 0 {
			outSoftmax[nd.Outputs[0]] = true
		}
	}
	for _, nd := range sorted.Nodes {
		if nd.Op == "Softmax" && outSoftmax[nd.Outputs[0]] {
			if len(nd.Inputs) != 1 {
				return nil, fmt.Errorf("train: node %s: want 1 input", nd)
			}
			continue
		}
		l, err := n.compileNode(nd)
		if err != nil {
			return nil, err
		}
		n.layers = append(n.layers, l)
	}
	softmaxInput := map[string]string{}
	for _, nd := range sorted.Nodes {
		if nd.Op == "Softmax" && outSoftmax[nd.Outputs[0]] {
			softmaxInput[nd.Outputs[0]] = nd.Inputs[0]
			vi, ok := n.vindex[nd.Inputs[0]]
			if !ok {
				return nil, fmt.Errorf("train: node %s reads %q, which is not an activation", nd, nd.Inputs[0])
			}
			r := len(n.values[vi].shape)
			if r != 1 && r != 2 {
				return nil, fmt.Errorf("%w: node %s: Softmax over a %d-D activation; want N×classes or N×positions×classes", ErrUnsupported, nd, r+1)
			}
			if ax := nd.AttrInt("axis", -1); ax != int64(r) && ax != -1 {
				return nil, fmt.Errorf("%w: node %s: Softmax axis %d, want the last (%d)", ErrUnsupported, nd, ax, r)
			}
		}
	}
	for _, o := range g.Outputs {
		logits, sm := o.Name, false
		if in, ok := softmaxInput[o.Name]; ok {
			logits, sm = in, true
		}
		vi, ok := n.vindex[logits]
		if !ok {
			return nil, fmt.Errorf("train: graph output %q is not produced by any node", o.Name)
		}
		s := n.values[vi].shape
		o := output{name: o.Name, logits: vi, softmax: sm, classes: s[len(s)-1], positions: 1}
		switch {
		case len(s) == 2 && sm:
			o.positions = s[0]
		case len(s) != 1:
			return nil, fmt.Errorf("%w: graph output %q has per-sample shape %v, want [classes] (or [positions, classes] from a Softmax)", ErrUnsupported, o.name, s)
		}
		if len(n.outputs) > 0 && n.outputs[0].positions != o.positions {
			return nil, fmt.Errorf("%w: graph outputs %q and %q have %d and %d positions; all outputs need the same", ErrUnsupported, n.outputs[0].name, o.name, n.outputs[0].positions, o.positions)
		}
		n.outputs = append(n.outputs, o)
	}
	return n, nil
}

func (n *Net) addValue(name string, shape []int) int {
	n.values = append(n.values, value{name: name, shape: slices.Clone(shape), size: shapeSize(shape)})
	n.vindex[name] = len(n.values) - 1
	return len(n.values) - 1
}

// act returns the value index of an activation input of nd.
func (n *Net) act(nd *model.Node, i int) (int, error) {
	name := nd.Input(i)
	vi, ok := n.vindex[name]
	if !ok {
		if _, isInit := n.g.Initializers[name]; isInit {
			return 0, fmt.Errorf("%w: node %s: input %d (%q) is a constant; the trainer wants an activation there", ErrUnsupported, nd, i, name)
		}
		return 0, fmt.Errorf("train: node %s: input %d (%q) is not produced before it", nd, i, name)
	}
	return vi, nil
}

// floatInit returns the float32 data of initializer name (a copy) and its
// shape.
func (n *Net) floatInit(nd *model.Node, name string) ([]float32, []int, error) {
	t, ok := n.g.Initializers[name]
	if !ok {
		return nil, nil, fmt.Errorf("%w: node %s: %q must be an initializer (weights fed at run time are not trainable)", ErrUnsupported, nd, name)
	}
	d, ok := t.Data().([]float32)
	if !ok {
		if t.Dims() == 0 {
			if v, ok := t.ScalarValue().(float32); ok {
				return []float32{v}, nil, nil
			}
		}
		return nil, nil, fmt.Errorf("%w: node %s: initializer %q is %v, want float32", ErrUnsupported, nd, name, t.Dtype())
	}
	return slices.Clone(d), []int(t.Shape().Clone()), nil
}

// addParam registers initializer name as trainable (once; shared weights
// keep one parameter) after checking its element count.
func (n *Net) addParam(nd *model.Node, name string, want int) (int, error) {
	if pi, ok := n.pindex[name]; ok {
		if len(n.params[pi].data) != want {
			return 0, fmt.Errorf("train: node %s: %q has %d values, want %d", nd, name, len(n.params[pi].data), want)
		}
		return pi, nil
	}
	d, shape, err := n.floatInit(nd, name)
	if err != nil {
		return 0, err
	}
	if len(d) != want {
		return 0, fmt.Errorf("train: node %s: %q has shape %v (%d values), want %d values", nd, name, shape, len(d), want)
	}
	n.params = append(n.params, &param{name: name, shape: shape, data: d})
	n.pindex[name] = len(n.params) - 1
	return len(n.params) - 1, nil
}

func (n *Net) setOutput(nd *model.Node, shape []int, inputs ...int) (int, error) {
	if len(nd.Outputs) == 0 || nd.Outputs[0] == "" {
		return 0, fmt.Errorf("train: node %s has no output", nd)
	}
	for _, d := range shape {
		if d <= 0 {
			return 0, fmt.Errorf("train: node %s: output shape %v has a non-positive dimension", nd, shape)
		}
	}
	if shapeSize(shape) > 1<<26 {
		return 0, fmt.Errorf("%w: node %s: output of %v values per sample is too large to train", ErrUnsupported, nd, shape)
	}
	vi := n.addValue(nd.Outputs[0], shape)
	for _, in := range inputs {
		if n.values[in].needGrad {
			n.values[vi].needGrad = true
		}
	}
	return vi, nil
}

// Params returns the number of trainable parameters.
func (n *Net) Params() int {
	total := 0
	for _, p := range n.params {
		total += len(p.data)
	}
	return total
}

// Outputs returns the graph output names, in order.
func (n *Net) Outputs() []string {
	out := make([]string, len(n.outputs))
	for i, o := range n.outputs {
		out[i] = o.name
	}
	return out
}

// InputShape returns the per-sample input shape (batch dimension dropped).
func (n *Net) InputShape() []int { return slices.Clone(n.values[n.input].shape) }

// Classes returns the number of classes of output k.
func (n *Net) Classes(k int) int { return n.outputs[k].classes }

// Positions returns the number of labelled positions per sample: 1 for a
// classifier, the context of a language model whose output has one row of
// class probabilities per position. Step takes that many labels per sample.
func (n *Net) Positions() int { return n.outputs[0].positions }

// Graph returns a copy of the source graph whose initializers hold the
// current trained weights and batch-norm running statistics (new tensors;
// the source graph is untouched). Nodes and attributes are shared.
func (n *Net) Graph() *model.Graph {
	g := &model.Graph{
		Name: n.g.Name, Inputs: slices.Clone(n.g.Inputs), Outputs: slices.Clone(n.g.Outputs),
		Nodes: slices.Clone(n.g.Nodes), Initializers: make(map[string]*tensor.Dense, len(n.g.Initializers)),
		Shapes: map[string][]int{}, OpsetVersion: n.g.OpsetVersion,
	}
	for name, t := range n.g.Initializers {
		g.Initializers[name] = t
	}
	for _, p := range n.params {
		g.Initializers[p.name] = tensor.New(tensor.WithShape(p.shape...), tensor.WithBacking(slices.Clone(p.data)))
	}
	for name, d := range n.state {
		g.Initializers[name] = tensor.New(tensor.WithShape(len(d)), tensor.WithBacking(slices.Clone(d)))
	}
	return g
}
