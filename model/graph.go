package model

import (
	"fmt"
	"math"
	"sort"

	"gorgonia.org/tensor"
)

// AttrKind says which field of an Attribute holds its value.
type AttrKind uint8

// The attribute kinds, mirroring ONNX's AttributeProto types that CNNs use.
const (
	AttrInt AttrKind = iota + 1
	AttrFloat
	AttrString
	AttrInts
	AttrFloats
	AttrTensor
)

func (k AttrKind) String() string {
	switch k {
	case AttrInt:
		return "int"
	case AttrFloat:
		return "float"
	case AttrString:
		return "string"
	case AttrInts:
		return "ints"
	case AttrFloats:
		return "floats"
	case AttrTensor:
		return "tensor"
	}
	return fmt.Sprintf("AttrKind(%d)", uint8(k))
}

// Attribute is one named node attribute. Exactly the field named by Kind is
// meaningful.
type Attribute struct {
	Kind   AttrKind
	Int    int64
	Float  float32
	String string
	Ints   []int64
	Floats []float32
	Tensor *tensor.Dense
}

// Node is one operator application. Inputs and Outputs name tensors of the
// graph; an empty input name marks an omitted optional input (as in ONNX).
type Node struct {
	Name    string
	Op      string // ONNX operator type, e.g. "Conv", "Relu"
	Inputs  []string
	Outputs []string
	Attrs   map[string]Attribute
}

// ValueInfo names a graph input or output and its shape. A dimension of -1 is
// unknown until an input is bound (only the batch dimension may be unknown).
type ValueInfo struct {
	Name  string
	Shape []int
}

// Graph is a model as plain data. Nodes are kept in canonical topological
// order (see Graph.Sort); Initializers hold the constant tensors (weights),
// float32 or int64; Shapes holds the inferred shape of every tensor once
// InferShapes has run.
//
// A Graph is not safe for concurrent mutation; Compile copies what it needs.
type Graph struct {
	Name         string
	Inputs       []ValueInfo
	Outputs      []ValueInfo
	Nodes        []*Node
	Initializers map[string]*tensor.Dense
	Shapes       map[string][]int
	// OpsetVersion is the ONNX default-domain opset the graph was written
	// against (0 when unknown; treated as the newest supported).
	OpsetVersion int64
}

// NewGraph returns an empty graph ready to be filled in.
func NewGraph(name string) *Graph {
	return &Graph{
		Name:         name,
		Initializers: make(map[string]*tensor.Dense),
		Shapes:       make(map[string][]int),
	}
}

// AttrInt returns the int attribute name of n, or def when it is absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrInt {
		return a.Int
	}
	return def
}

// AttrFloat returns the float attribute name of n, or def when it is absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrFloat {
		return a.Float
	}
	return def
}

// AttrString returns the string attribute name of n, or def when it is absent.
func (n *Node) AttrString(name string, def string) string {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrString {
		return a.String
	}
	return def
}

// AttrInts returns the ints attribute name of n, or nil when it is absent.
func (n *Node) AttrInts(name string) []int64 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrInts {
		return a.Ints
	}
	return nil
}

// AttrFloats returns the floats attribute name of n, or nil when it is absent.
func (n *Node) AttrFloats(name string) []float32 {
	if a, ok := n.Attrs[name]; ok && a.Kind == AttrFloats {
		return a.Floats
	}
	return nil
}

// Input returns the i-th input name of n, or "" when absent.
func (n *Node) Input(i int) string {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return ""
}

// String names the node for error messages: "node 12 \"conv1\" (Conv)" style
// without the index.
func (n *Node) String() string {
	return fmt.Sprintf("%q (%s)", n.Name, n.Op)
}

// IsInitializer reports whether name is a constant tensor of g.
func (g *Graph) IsInitializer(name string) bool {
	_, ok := g.Initializers[name]
	return ok
}

// Producers maps every tensor produced by a node to that node's index.
func (g *Graph) Producers() map[string]int {
	p := make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				p[o] = i
			}
		}
	}
	return p
}

// Sort puts g.Nodes into the canonical topological order: Kahn's algorithm
// that always takes the ready node that appears first in the current order,
// so a graph already in topological order (as ONNX requires) keeps its order,
// and the result depends only on the graph. It returns an error naming a
// tensor that is consumed but never produced, or a node on a cycle.
func (g *Graph) Sort() error {
	avail := make(map[string]bool, len(g.Initializers)+len(g.Inputs))
	for name := range g.Initializers {
		avail[name] = true
	}
	for _, in := range g.Inputs {
		avail[in.Name] = true
	}
	producers := make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if j, dup := producers[o]; dup {
				return fmt.Errorf("model: tensor %q is produced by both node %s and node %s", o, g.Nodes[j], n)
			}
			if avail[o] {
				return fmt.Errorf("model: node %s overwrites graph input or initializer %q", n, o)
			}
			producers[o] = i
		}
	}
	// pending[i] counts inputs of node i not yet available.
	pending := make([]int, len(g.Nodes))
	consumers := make(map[string][]int)
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in == "" || avail[in] {
				continue
			}
			if _, ok := producers[in]; !ok {
				return fmt.Errorf("model: node %s reads tensor %q, which no node, input or initializer provides", n, in)
			}
			pending[i]++
			consumers[in] = append(consumers[in], i)
		}
	}
	ready := make([]int, 0, len(g.Nodes)) // kept sorted ascending
	for i := range g.Nodes {
		if pending[i] == 0 {
			ready = append(ready, i)
		}
	}
	order := make([]*Node, 0, len(g.Nodes))
	for len(ready) > 0 {
		i := ready[0]
		ready = ready[1:]
		order = append(order, g.Nodes[i])
		for _, o := range g.Nodes[i].Outputs {
			for _, c := range consumers[o] {
				pending[c]--
				if pending[c] == 0 {
					k := sort.SearchInts(ready, c)
					ready = append(ready, 0)
					copy(ready[k+1:], ready[k:])
					ready[k] = c
				}
			}
		}
	}
	if len(order) != len(g.Nodes) {
		for i, n := range g.Nodes {
			if pending[i] > 0 {
				return fmt.Errorf("model: node %s is on a cycle", n)
			}
		}
	}
	g.Nodes = order
	return nil
}

// IsAdditiveMask reports whether the initializer t is an additive mask (a
// causal attention mask, say): float32 data holding −Inf, which no trained
// weight can hold. Trainers keep such a tensor constant and parameter counts
// leave it out.
func IsAdditiveMask(t *tensor.Dense) bool {
	d, ok := t.Data().([]float32)
	if !ok || t.Dims() == 0 {
		return false
	}
	for _, v := range d {
		if math.IsInf(float64(v), -1) {
			return true
		}
	}
	return false
}
