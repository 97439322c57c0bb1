package model

import (
	"context"
	"fmt"
	"testing"
)

// byteSource hands out fuzz bytes as small choices.
type byteSource struct {
	b []byte
	i int
}

func (s *byteSource) next() int {
	if s.i >= len(s.b) {
		return 0
	}
	v := int(s.b[s.i])
	s.i++
	return v
}

func (s *byteSource) pick(n int) int { return s.next() % n }

// smallInt returns a value in [-2, 6], values exporters rarely write but
// that must be rejected cleanly.
func (s *byteSource) smallInt() int64 { return int64(s.pick(9)) - 2 }

// FuzzCompile builds graphs of CNN ops with fuzzed attributes, shapes and
// wiring, and checks that Compile and Run never panic: bad graphs must come
// back as errors.
func FuzzCompile(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{3, 3, 1, 1, 1, 1, 0, 0, 2, 2, 9, 9, 9})
	f.Add([]byte{17, 200, 3, 4, 5, 1, 1, 0, 0, 7, 7, 7, 7, 7, 7})
	f.Add([]byte("conv pool gemm reshape resize pad"))
	ops := []string{"Conv", "Relu", "MaxPool", "AveragePool", "Add", "Mul", "Concat", "Flatten", "Reshape",
		"Transpose", "Softmax", "Pad", "Resize", "ConvTranspose", "Gemm", "Slice", "Gather", "Squeeze",
		"Unsqueeze", "GlobalAveragePool", "BatchNormalization", "Clip", "Split", "ReduceMean", "Expand", "Tile",
		"DepthToSpace", "MatMul", "Upsample", "LRN"}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &byteSource{b: data}
		g := NewGraph("fuzz")
		g.OpsetVersion = int64(7 + s.pick(12))
		shape := []int{1 + s.pick(2), 1 + s.pick(4), 1 + s.pick(6), 1 + s.pick(6)}
		g.Inputs = []ValueInfo{{Name: "x", Shape: shape}}
		avail := []string{"x"}
		nNodes := 1 + s.pick(5)
		for i := 0; i < nNodes; i++ {
			op := ops[s.pick(len(ops))]
			a := avail[s.pick(len(avail))]
			out := fmt.Sprintf("t%d", i)
			at := attrs{}
			ins := []string{a}
			ints := func(n int) Attribute {
				v := make([]int64, n)
				for k := range v {
					v[k] = s.smallInt()
				}
				return aInts(v...)
			}
			konst := func(shape ...int) string {
				name := fmt.Sprintf("k%d_%d", i, len(ins))
				d := make([]float32, prod(shape))
				for k := range d {
					d[k] = float32(s.smallInt())
				}
				g.Initializers[name] = denseF(shape, d)
				return name
			}
			ikonst := func(n int) string {
				name := fmt.Sprintf("i%d_%d", i, len(ins))
				d := make([]int64, n)
				for k := range d {
					d[k] = s.smallInt()
				}
				g.Initializers[name] = denseI([]int{n}, d)
				return name
			}
			switch op {
			case "Conv", "ConvTranspose":
				ins = append(ins, konst(1+s.pick(4), 1+s.pick(4), 1+s.pick(3), 1+s.pick(3)))
				if s.pick(2) == 0 {
					at["pads"] = ints(4)
				}
				if s.pick(2) == 0 {
					at["strides"] = ints(2)
				}
				if s.pick(3) == 0 {
					at["group"] = aInt(s.smallInt())
				}
				if s.pick(3) == 0 {
					at["auto_pad"] = aStr([]string{"SAME_UPPER", "SAME_LOWER", "VALID", "BOGUS"}[s.pick(4)])
				}
			case "MaxPool", "AveragePool":
				at["kernel_shape"] = ints(2)
				if s.pick(2) == 0 {
					at["pads"] = ints(4)
				}
				at["ceil_mode"] = aInt(int64(s.pick(2)))
			case "Add", "Mul", "MatMul":
				ins = append(ins, avail[s.pick(len(avail))])
			case "Concat":
				ins = append(ins, avail[s.pick(len(avail))])
				at["axis"] = aInt(s.smallInt())
			case "Reshape", "Expand", "Tile":
				ins = append(ins, ikonst(s.pick(5)))
			case "Transpose":
				at["perm"] = ints(4)
			case "Pad":
				ins = append(ins, ikonst(8))
				at["mode"] = aStr([]string{"constant", "reflect", "edge", "wrap"}[s.pick(4)])
			case "Resize", "Upsample":
				ins = append(ins, "", konst(4))
				at["mode"] = aStr([]string{"nearest", "linear", "cubic"}[s.pick(3)])
			case "Gemm":
				ins = append(ins, konst(1+s.pick(4), 1+s.pick(4)))
				at["transB"] = aInt(int64(s.pick(2)))
			case "Slice":
				ins = append(ins, ikonst(2), ikonst(2), ikonst(2))
			case "Gather":
				ins = append(ins, ikonst(1+s.pick(3)))
				at["axis"] = aInt(s.smallInt())
			case "Squeeze", "Unsqueeze":
				ins = append(ins, ikonst(1+s.pick(2)))
			case "BatchNormalization":
				c := 1 + s.pick(4)
				ins = append(ins, konst(c), konst(c), konst(c), konst(c))
			case "Clip":
				ins = append(ins, konst(), konst())
			case "Split":
				at["axis"] = aInt(s.smallInt())
			case "ReduceMean", "Softmax", "Flatten":
				at["axis"] = aInt(s.smallInt())
				at["axes"] = ints(1)
			case "DepthToSpace":
				at["blocksize"] = aInt(s.smallInt())
			case "LRN":
				at["size"] = aInt(s.smallInt())
			}
			g.Nodes = append(g.Nodes, nd(op, fmt.Sprintf("n%d", i), ins, []string{out}, at))
			avail = append(avail, out)
		}
		g.Outputs = []ValueInfo{{Name: avail[len(avail)-1]}}
		net, err := Compile(g, Options{})
		if err != nil {
			return
		}
		x := denseF(shape, make([]float32, prod(shape)))
		if _, err := net.NewExtractor().Run(context.Background(), x); err != nil {
			t.Fatalf("compiled graph failed to run: %v", err)
		}
	})
}
