package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// InitKind selects a weight initialisation scheme.
type InitKind string

// The initialisation schemes.
const (
	// InitHe draws Conv/Gemm weights from N(0, 2/fan_in) (Kaiming normal,
	// for ReLU networks).
	InitHe InitKind = "he"
	// InitGlorot draws them from U(−a, a), a = √(6/(fan_in+fan_out))
	// (Xavier uniform).
	InitGlorot InitKind = "glorot"
)

// Init re-draws the weights of every Conv, Gemm and MatMul by a 2-D
// initializer of g from seed with the given scheme, sets the Conv and Gemm
// biases to zero and resets batch and layer norms to the identity (scale 1,
// bias 0, mean 0, var 1). Weights that an Add broadcasts (a MatMul's bias,
// a position embedding) are kept. Nodes are visited in order, so
// the result depends only on the graph, kind and seed. Initializers are
// replaced by new tensors.
func Init(g *model.Graph, kind InitKind, seed uint64) error {
	if kind != InitHe && kind != InitGlorot {
		return fmt.Errorf("train: unknown init %q (want he or glorot)", kind)
	}
	rng := rand.New(rand.NewPCG(seed, 0x1a17))
	fill := func(name string, f func(i int) float32) error {
		t, ok := g.Initializers[name]
		if !ok {
			return fmt.Errorf("train: init: %q is not an initializer", name)
		}
		if _, ok := t.Data().([]float32); !ok || t.Dims() == 0 {
			return fmt.Errorf("train: init: %q is not a float32 tensor", name)
		}
		d := make([]float32, t.Shape().TotalSize())
		for i := range d {
			d[i] = f(i)
		}
		g.Initializers[name] = tensor.New(tensor.WithShape(t.Shape().Clone()...), tensor.WithBacking(d))
		return nil
	}
	fillWeight := func(name string, fanIn, fanOut int) error {
		if kind == InitHe {
			std := math.Sqrt(2 / float64(fanIn))
			return fill(name, func(int) float32 { return float32(rng.NormFloat64() * std) })
		}
		a := math.Sqrt(6 / float64(fanIn+fanOut))
		return fill(name, func(int) float32 { return float32((2*rng.Float64() - 1) * a) })
	}
	zero := func(int) float32 { return 0 }
	one := func(int) float32 { return 1 }
	for _, n := range g.Nodes {
		var fanIn, fanOut int
		switch n.Op {
		case "Conv":
			t, ok := g.Initializers[n.Input(1)]
			if !ok || t.Dims() != 4 {
				return fmt.Errorf("train: init: node %s: weight %q is not a 4-D initializer", n, n.Input(1))
			}
			s := t.Shape()
			group := int(max(n.AttrInt("group", 1), 1))
			fanIn = s[1] * s[2] * s[3]
			fanOut = s[0] / group * s[2] * s[3]
		case "Gemm":
			t, ok := g.Initializers[n.Input(1)]
			if !ok || t.Dims() != 2 {
				return fmt.Errorf("train: init: node %s: weight %q is not a 2-D initializer", n, n.Input(1))
			}
			s := t.Shape()
			fanIn, fanOut = s[1], s[0]
			if n.AttrInt("transB", 0) == 0 {
				fanIn, fanOut = s[0], s[1]
			}
		case "MatMul":
			t, ok := g.Initializers[n.Input(1)]
			if !ok {
				continue // activation × activation (attention): nothing to draw
			}
			if t.Dims() != 2 {
				return fmt.Errorf("train: init: node %s: weight %q is not a 2-D initializer", n, n.Input(1))
			}
			s := t.Shape()
			fanIn, fanOut = s[0], s[1]
			if err := fillWeight(n.Input(1), fanIn, fanOut); err != nil {
				return err
			}
			continue
		case "LayerNormalization":
			for i, f := range []func(int) float32{one, zero} {
				if n.Input(1+i) != "" {
					if err := fill(n.Input(1+i), f); err != nil {
						return err
					}
				}
			}
			continue
		case "BatchNormalization":
			for i, f := range []func(int) float32{one, zero, zero, one} {
				if err := fill(n.Input(1+i), f); err != nil {
					return err
				}
			}
			continue
		default:
			continue
		}
		if err := fillWeight(n.Input(1), fanIn, fanOut); err != nil {
			return err
		}
		if n.Input(2) != "" {
			if err := fill(n.Input(2), zero); err != nil {
				return err
			}
		}
	}
	return nil
}
