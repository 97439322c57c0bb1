package onnx

import (
	"fmt"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model"
)

// legacyBroadcastOps used the "broadcast"/"axis" attributes before opset 7.
var legacyBroadcastOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true,
	"And": true, "Or": true, "Xor": true, "Equal": true, "Greater": true, "Less": true,
}

// upgradeLegacy rewrites node forms of opsets before 7 that differ from
// later ones only in spelling, so the engine sees one form:
//   - Add/Sub/Mul/Div/... with broadcast=1 and axis: B is reshaped (a new
//     initializer, or a Reshape node for a graph input of known shape) so that
//     NumPy broadcasting gives the old result; broadcast/axis are dropped.
//   - Gemm's broadcast, BatchNormalization's and Dropout's is_test, and every
//     consumed_inputs attribute are dropped (no meaning at inference).
//   - BatchNormalization with spatial=0 is refused.
func upgradeLegacy(g *model.Graph) error {
	if g.OpsetVersion >= 7 {
		return nil
	}
	shapes := map[string][]int{}
	for _, in := range g.Inputs {
		if in.Shape != nil {
			shapes[in.Name] = in.Shape
		}
	}
	for name, t := range g.Initializers {
		shapes[name] = append([]int{}, t.Shape()...)
	}
	var extra []*model.Node
	for _, n := range g.Nodes {
		delete(n.Attrs, "consumed_inputs")
		switch {
		case n.Op == "BatchNormalization":
			if n.AttrInt("spatial", 1) != 1 {
				return fmt.Errorf("%w: node %s has spatial=0 (per-activation batch norm)", ErrUnsupported, n)
			}
			delete(n.Attrs, "spatial")
			delete(n.Attrs, "is_test")
		case n.Op == "Dropout":
			delete(n.Attrs, "is_test")
		case n.Op == "Gemm":
			delete(n.Attrs, "broadcast")
		case n.Op == "PRelu" && len(n.Inputs) == 2:
			// Before opset 7 a 1-D slope of C values applies per channel
			// (axis 1); since then it broadcasts NumPy-style from the right.
			t, ok := g.Initializers[n.Inputs[1]]
			sx, okX := shapes[n.Inputs[0]]
			if !ok || t.Dims() != 1 || t.Size() == 1 {
				continue
			}
			if !okX {
				return fmt.Errorf("%w: node %s has a pre-opset-7 per-channel slope, which edgesplit translates only when X's shape is known", ErrUnsupported, n)
			}
			if len(sx) < 2 {
				continue
			}
			newShape := make([]int, len(sx)-1)
			newShape[0] = t.Size()
			for i := 1; i < len(newShape); i++ {
				newShape[i] = 1
			}
			name := fmt.Sprintf("%s__bcast_%s", n.Inputs[1], n.Name)
			c := t.Clone().(*tensor.Dense)
			if err := c.Reshape(newShape...); err != nil {
				return fmt.Errorf("%w: node %s: reshaping slope to %v: %v", ErrMalformed, n, newShape, err)
			}
			g.Initializers[name] = c
			n.Inputs[1] = name
		case legacyBroadcastOps[n.Op]:
			axisAttr, hasAxis := n.Attrs["axis"]
			bc := n.AttrInt("broadcast", 0)
			delete(n.Attrs, "broadcast")
			delete(n.Attrs, "axis")
			if bc == 0 || !hasAxis || len(n.Inputs) < 2 {
				continue // suffix broadcasting, the same as NumPy's
			}
			a, b := n.Inputs[0], n.Inputs[1]
			sa, okA := shapes[a]
			sb, okB := shapes[b]
			if !okA || !okB {
				return fmt.Errorf("%w: node %s uses pre-opset-7 broadcasting with axis=%d, which edgesplit translates only when both input shapes are known", ErrUnsupported, n, axisAttr.Int)
			}
			axis := int(axisAttr.Int)
			if axis < 0 {
				axis += len(sa)
			}
			trail := len(sa) - axis - len(sb)
			if axis < 0 || trail < 0 {
				return fmt.Errorf("%w: node %s: axis %d does not fit shapes %v and %v", ErrMalformed, n, axisAttr.Int, sa, sb)
			}
			if trail == 0 {
				continue
			}
			newShape := append(append([]int{}, sb...), make([]int, trail)...)
			for i := len(sb); i < len(newShape); i++ {
				newShape[i] = 1
			}
			name := fmt.Sprintf("%s__bcast_%s", b, n.Name)
			if t, ok := g.Initializers[b]; ok {
				c := t.Clone().(*tensor.Dense)
				if err := c.Reshape(newShape...); err != nil {
					return fmt.Errorf("%w: node %s: reshaping %q to %v: %v", ErrMalformed, n, b, newShape, err)
				}
				g.Initializers[name] = c
			} else {
				shp := make([]int64, len(newShape))
				for i, d := range newShape {
					shp[i] = int64(d)
				}
				shapeName := name + "_shape"
				g.Initializers[shapeName] = tensor.New(tensor.WithShape(len(shp)), tensor.WithBacking(shp))
				extra = append(extra, &model.Node{
					Name: name, Op: "Reshape", Inputs: []string{b, shapeName}, Outputs: []string{name},
				})
			}
			n.Inputs[1] = name
		}
	}
	g.Nodes = append(extra, g.Nodes...)
	return nil
}
