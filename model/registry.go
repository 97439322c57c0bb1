package model

import (
	"sort"

	"github.com/edgesplit/edgesplit/model/internal/kern"
)

// layer is a prepared operator: parameters packed at Compile time, forward on
// arena slices. forward must not mutate the layer (a Net is shared by many
// Extractors) and must not allocate. in[i] is nil for an omitted input or an
// int64 constant consumed at build time; float32 constants are passed as
// their (read-only) data.
type layer interface {
	forward(in, out [][]float32, scratch []float32)
}

// scratchUser is a layer that needs scratch memory during forward.
type scratchUser interface {
	scratchLen() int
}

// nodeCtx is what an operator's inference and construction see of one node.
type nodeCtx struct {
	n       *Node
	opset   int64
	in      []*tval // nil for omitted optional inputs
	out     []*tval // one per output, filled by infer
	threads int
	pool    *kern.Pool      // the Net's workers, or nil when single-threaded
	act     kern.Activation // activation fused into this node (Conv, Gemm, ConvTranspose)
	chain   *chainOp        // element-wise chain run after this node (Conv)
}

// input returns input i, or nil when absent.
func (c *nodeCtx) input(i int) *tval {
	if i < len(c.in) {
		return c.in[i]
	}
	return nil
}

// opDef is one registry entry.
type opDef struct {
	// infer sets the shape and dtype of every output; when every input is a
	// constant it may also compute the outputs' data (fold).
	infer func(c *nodeCtx) error
	// build returns the runtime layer; nil for ops that only fold.
	build func(c *nodeCtx) (layer, error)
	// inplace: output 0 may share input 0's buffer (element-wise ops).
	inplace bool
	// minIn is the number of required inputs.
	minIn int
	// floatExponent: an int64 constant input 1 is used as float32 (Pow).
	floatExponent bool
	// act, when set, says this op is an activation that Conv/Gemm can fuse.
	act func(c *nodeCtx) (kern.Activation, bool)
}

var registry = map[string]*opDef{}

// register adds op definitions; called from init functions of the ops_*.go
// files (the table is immutable afterwards).
func register(name string, d *opDef) {
	registry[name] = d
}

// SupportedOps lists the op types the engine runs or folds (sorted).
func SupportedOps() []string {
	r := make([]string, 0, len(registry))
	for k := range registry {
		r = append(r, k)
	}
	sort.Strings(r)
	return r
}
