package model

import (
	"fmt"

	"gorgonia.org/tensor"
)

// dtype is the element type of a tensor inside the engine. Everything that
// runs is float32; int64 exists for shape arithmetic folded at load time.
type dtype uint8

const (
	dtFloat dtype = iota + 1
	dtInt64
)

func (d dtype) String() string {
	switch d {
	case dtFloat:
		return "float32"
	case dtInt64:
		return "int64"
	}
	return "unknown"
}

// tval is what shape inference knows about one tensor: its shape and element
// type, and its data when it is a load-time constant.
type tval struct {
	shape []int
	dt    dtype
	konst bool
	f     []float32 // data when konst && dt == dtFloat
	i     []int64   // data when konst && dt == dtInt64
}

func (v *tval) numel() int { return prod(v.shape) }

// prod multiplies dims (callers have validated them with numel).
func prod(dims []int) int {
	p := 1
	for _, d := range dims {
		p *= d
	}
	return p
}

// checkedNumel returns the element count of shape, or an error when a
// dimension is negative or the count exceeds limit.
func checkedNumel(shape []int, limit int) (int, error) {
	if len(shape) > maxRank {
		return 0, fmt.Errorf("%w: rank %d exceeds %d", ErrUnsupportedOp, len(shape), maxRank)
	}
	p := 1
	for _, d := range shape {
		if d < 0 {
			return 0, shapeErrf("negative dimension in %v", shape)
		}
		if d == 0 {
			p = 0
			continue
		}
		if p > limit/d {
			return 0, fmt.Errorf("%w: shape %v has more than %d elements", ErrTooLarge, shape, limit)
		}
		p *= d
	}
	return p, nil
}

// constF returns a float32 constant value.
func constF(shape []int, data []float32) *tval {
	if data == nil {
		data = []float32{}
	}
	return &tval{shape: shape, dt: dtFloat, konst: true, f: data}
}

// constI returns an int64 constant value.
func constI(shape []int, data []int64) *tval {
	if data == nil {
		data = []int64{}
	}
	return &tval{shape: shape, dt: dtInt64, konst: true, i: data}
}

// ints converts an int64 slice to ints.
func ints(x []int64) []int {
	r := make([]int, len(x))
	for i, v := range x {
		r[i] = int(v)
	}
	return r
}

func cloneInts(x []int) []int {
	r := make([]int, len(x))
	copy(r, x)
	return r
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// denseToVal converts an initializer into a constant value. float64/int32 and
// friends are converted to the engine's float32/int64.
func denseToVal(name string, t *tensor.Dense) (v *tval, err error) {
	if t == nil {
		return nil, fmt.Errorf("model: initializer %q is nil", name)
	}
	defer func() {
		// gorgonia panics on some malformed tensors; report, don't crash.
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("model: initializer %q is malformed: %v", name, r)
		}
	}()
	shape := cloneInts([]int(t.Shape()))
	if t.IsScalar() {
		shape = []int{}
	}
	n, err := checkedNumel(shape, MaxTensorElements)
	if err != nil {
		return nil, fmt.Errorf("model: initializer %q: %w", name, err)
	}
	if n == 0 {
		switch t.Dtype() {
		case tensor.Float32, tensor.Float64:
			return constF(shape, nil), nil
		default:
			return constI(shape, nil), nil
		}
	}
	short := func(have int) error {
		return fmt.Errorf("model: initializer %q: %w: %d values for shape %v", name, ErrShape, have, shape)
	}
	switch d := t.Data().(type) {
	case []float32:
		if len(d) < n {
			return nil, short(len(d))
		}
		return constF(shape, d[:n]), nil
	case float32:
		return constF(shape, []float32{d}), nil
	case []int64:
		if len(d) < n {
			return nil, short(len(d))
		}
		return constI(shape, d[:n]), nil
	case int64:
		return constI(shape, []int64{d}), nil
	case []float64:
		if len(d) < n {
			return nil, short(len(d))
		}
		return constF(shape, convertTo[float32](d[:n])), nil
	case float64:
		return constF(shape, []float32{float32(d)}), nil
	case []int32:
		if len(d) < n {
			return nil, short(len(d))
		}
		return constI(shape, convertTo[int64](d[:n])), nil
	case int32:
		return constI(shape, []int64{int64(d)}), nil
	case []int:
		if len(d) < n {
			return nil, short(len(d))
		}
		return constI(shape, convertTo[int64](d[:n])), nil
	case []uint8:
		if len(d) < n {
			return nil, short(len(d))
		}
		return constI(shape, convertTo[int64](d[:n])), nil
	case []int8:
		if len(d) < n {
			return nil, short(len(d))
		}
		return constI(shape, convertTo[int64](d[:n])), nil
	case []bool:
		if len(d) < n {
			return nil, short(len(d))
		}
		r := make([]int64, n)
		for i := range r {
			if d[i] {
				r[i] = 1
			}
		}
		return constI(shape, r), nil
	}
	return nil, fmt.Errorf("model: initializer %q has unsupported element type %v", name, t.Dtype())
}

// valToDense converts a constant value into a tensor for Graph.Initializers.
func valToDense(v *tval) *tensor.Dense {
	shape := v.shape
	if v.dt == dtInt64 {
		data := v.i
		if len(shape) == 0 {
			return tensor.New(tensor.WithShape(), tensor.WithBacking([]int64{data[0]}))
		}
		return tensor.New(tensor.WithShape(cloneInts(shape)...), tensor.WithBacking(data))
	}
	data := v.f
	if len(shape) == 0 {
		return tensor.New(tensor.WithShape(), tensor.WithBacking([]float32{data[0]}))
	}
	return tensor.New(tensor.WithShape(cloneInts(shape)...), tensor.WithBacking(data))
}

// asInt64s returns the constant data of v as int64 (floats are truncated).
func (v *tval) asInt64s() []int64 {
	if v.dt == dtInt64 {
		return v.i
	}
	r := make([]int64, len(v.f))
	for i, x := range v.f {
		r[i] = int64(x)
	}
	return r
}

// asFloats returns the constant data of v as float32.
func (v *tval) asFloats() []float32 {
	if v.dt == dtFloat {
		return v.f
	}
	r := make([]float32, len(v.i))
	for i, x := range v.i {
		r[i] = float32(x)
	}
	return r
}

// scalarFloat returns the single value of a constant, for attribute-like inputs.
func (v *tval) scalarFloat() (float32, bool) {
	if v == nil || !v.konst || v.numel() != 1 {
		return 0, false
	}
	if v.dt == dtFloat {
		return v.f[0], true
	}
	return float32(v.i[0]), true
}

// convertTo returns a copy of d with every value converted to To.
func convertTo[To int64 | float32, From float64 | int32 | int | uint8 | int8](d []From) []To {
	r := make([]To, len(d))
	for i, v := range d {
		r[i] = To(v)
	}
	return r
}
