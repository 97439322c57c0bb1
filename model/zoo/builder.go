package zoo

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// opset is the ONNX default-domain opset every zoo graph is written against.
const opset = 13

// mode says how a builder makes a graph: with weights drawn from seed
// (Build), or as a skeleton (Skeleton: no weights, simplified as it goes).
type mode struct {
	seed     uint64
	skeleton bool
}

// weights is the mode of Build: weights drawn from seed.
func weights(seed uint64) mode { return mode{seed: seed} }

// builder appends nodes and seeded initializers to a graph while tracking the
// static shape (batch included) of every tensor it creates. In skeleton
// mode it draws no weights (param adds a placeholder), folds each
// BatchNormalization into the Conv before it and leaves Dropout out, as
// model.Simplify would.
type builder struct {
	g        *model.Graph
	rng      *rand.Rand
	shapes   map[string][]int
	count    map[string]int
	skeleton bool
}

func newBuilder(name string, m mode, input string, shape []int) *builder {
	g := model.NewGraph(name)
	g.OpsetVersion = opset
	g.Inputs = []model.ValueInfo{{Name: input, Shape: append([]int(nil), shape...)}}
	b := &builder{
		g:        g,
		rng:      rand.New(rand.NewPCG(m.seed, 0x9e3779b97f4a7c15^uint64(len(name)))),
		shapes:   map[string][]int{input: append([]int(nil), shape...)},
		count:    map[string]int{},
		skeleton: m.skeleton,
	}
	return b
}

// uniq returns prefix followed by a per-prefix counter: "conv1", "conv2"...
func (b *builder) uniq(prefix string) string {
	b.count[prefix]++
	return fmt.Sprintf("%s%d", prefix, b.count[prefix])
}

func (b *builder) shape(x string) []int { return b.shapes[x] }

// param adds a float32 initializer filled by f; in skeleton mode a 0-D
// placeholder, the shape recorded only in b.shapes.
func (b *builder) param(name string, shape []int, f func() float32) string {
	if b.skeleton {
		b.g.Initializers[name] = tensor.New(tensor.FromScalar(float32(0)))
		b.shapes[name] = append([]int(nil), shape...)
		return name
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = f()
	}
	b.g.Initializers[name] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	b.shapes[name] = append([]int(nil), shape...)
	return name
}

// scalar adds a 0-D float32 initializer.
func (b *builder) scalar(name string, v float32) string {
	b.g.Initializers[name] = tensor.New(tensor.FromScalar(v))
	b.shapes[name] = []int{}
	return name
}

func (b *builder) normal(std float64) func() float32 {
	return func() float32 { return float32(b.rng.NormFloat64() * std) }
}

func (b *builder) uniform(lo, hi float64) func() float32 {
	return func() float32 { return float32(lo + (hi-lo)*b.rng.Float64()) }
}

func constant(v float32) func() float32 { return func() float32 { return v } }

func ints(v ...int) model.Attribute {
	a := model.Attribute{Kind: model.AttrInts, Ints: make([]int64, len(v))}
	for i, x := range v {
		a.Ints[i] = int64(x)
	}
	return a
}

func intAttr(v int) model.Attribute { return model.Attribute{Kind: model.AttrInt, Int: int64(v)} }

func floatAttr(v float32) model.Attribute { return model.Attribute{Kind: model.AttrFloat, Float: v} }

func (b *builder) node(op, name string, inputs []string, out string, outShape []int, attrs map[string]model.Attribute) string {
	if attrs == nil {
		attrs = map[string]model.Attribute{}
	}
	b.g.Nodes = append(b.g.Nodes, &model.Node{Name: name, Op: op, Inputs: inputs, Outputs: []string{out}, Attrs: attrs})
	b.shapes[out] = outShape
	return out
}

// conv adds a Conv node with He-normal weights (fan-in = C/group·k·k) and,
// when bias is set, a zero bias. It returns the output tensor name.
func (b *builder) conv(x string, outC, k, stride, pad, group int, bias bool) string {
	s := b.shape(x)
	name := b.uniq("conv")
	inC := s[1]
	fanIn := inC / group * k * k
	w := b.param(name+".weight", []int{outC, inC / group, k, k}, b.normal(math.Sqrt(2/float64(fanIn))))
	inputs := []string{x, w}
	if bias {
		inputs = append(inputs, b.param(name+".bias", []int{outC}, constant(0)))
	}
	oh := (s[2]+2*pad-k)/stride + 1
	ow := (s[3]+2*pad-k)/stride + 1
	return b.node("Conv", name, inputs, name+".out", []int{s[0], outC, oh, ow}, map[string]model.Attribute{
		"kernel_shape": ints(k, k),
		"strides":      ints(stride, stride),
		"pads":         ints(pad, pad, pad, pad),
		"dilations":    ints(1, 1),
		"group":        intAttr(group),
	})
}

// bn adds an inference-form BatchNormalization with plausible seeded
// statistics: scale ∈ [0.5, 1.5), bias ∈ [-0.1, 0.1), mean ∈ [-0.1, 0.1),
// var ∈ [0.5, 1.5). In skeleton mode it folds into the Conv that made x,
// when there is one, as model.Simplify does.
func (b *builder) bn(x string) string {
	c := b.shape(x)[1]
	name := b.uniq("bn")
	if b.skeleton {
		if out, ok := b.foldBN(x, name+".out"); ok {
			return out
		}
	}
	scale := b.param(name+".weight", []int{c}, b.uniform(0.5, 1.5))
	bias := b.param(name+".bias", []int{c}, b.uniform(-0.1, 0.1))
	mean := b.param(name+".running_mean", []int{c}, b.uniform(-0.1, 0.1))
	variance := b.param(name+".running_var", []int{c}, b.uniform(0.5, 1.5))
	return b.node("BatchNormalization", name, []string{x, scale, bias, mean, variance}, name+".out", b.shape(x),
		map[string]model.Attribute{"epsilon": floatAttr(1e-5), "momentum": floatAttr(0.9)})
}

// foldBN rewrites the last node, when it is the Conv that made x (which
// nothing else has read yet), the way model.Simplify folds a
// BatchNormalization into it: new weight and bias initializers named after
// the conv, and out as its output. It reports whether it did.
func (b *builder) foldBN(x, out string) (string, bool) {
	conv := b.g.Nodes[len(b.g.Nodes)-1]
	if conv.Op != "Conv" || conv.Outputs[0] != x {
		return "", false
	}
	wShape := b.shapes[conv.Inputs[1]]
	for len(conv.Inputs) < 3 {
		conv.Inputs = append(conv.Inputs, "")
	}
	for _, old := range conv.Inputs[1:] {
		if old != "" {
			delete(b.g.Initializers, old)
			delete(b.shapes, old)
		}
	}
	conv.Inputs[1] = b.param(conv.Name+"_bnfold_w", wShape, nil)
	conv.Inputs[2] = b.param(conv.Name+"_bnfold_b", wShape[:1], nil)
	conv.Outputs[0] = out
	b.shapes[out] = b.shapes[x]
	delete(b.shapes, x)
	return out, true
}

func (b *builder) relu(x string) string {
	name := b.uniq("relu")
	return b.node("Relu", name, []string{x}, name+".out", b.shape(x), nil)
}

// relu6 is Clip(x, 0, 6) in the opset-11+ input form.
func (b *builder) relu6(x string) string {
	name := b.uniq("clip")
	lo := b.scalar(name+".min", 0)
	hi := b.scalar(name+".max", 6)
	return b.node("Clip", name, []string{x, lo, hi}, name+".out", b.shape(x), nil)
}

func (b *builder) maxPool(x string, k, stride, pad int) string {
	s := b.shape(x)
	name := b.uniq("maxpool")
	oh := (s[2]+2*pad-k)/stride + 1
	ow := (s[3]+2*pad-k)/stride + 1
	return b.node("MaxPool", name, []string{x}, name+".out", []int{s[0], s[1], oh, ow}, map[string]model.Attribute{
		"kernel_shape": ints(k, k),
		"strides":      ints(stride, stride),
		"pads":         ints(pad, pad, pad, pad),
	})
}

func (b *builder) globalAvgPool(x string) string {
	s := b.shape(x)
	name := b.uniq("gap")
	return b.node("GlobalAveragePool", name, []string{x}, name+".out", []int{s[0], s[1], 1, 1}, nil)
}

func (b *builder) flatten(x string) string {
	s := b.shape(x)
	name := b.uniq("flatten")
	n := 1
	for _, d := range s[1:] {
		n *= d
	}
	return b.node("Flatten", name, []string{x}, name+".out", []int{s[0], n}, map[string]model.Attribute{"axis": intAttr(1)})
}

// gemm adds a fully connected layer Y = X·Wᵀ + b (transB = 1, W is out×in as
// ONNX exporters write it) with He-normal weights and zero bias.
func (b *builder) gemm(x string, out int) string {
	s := b.shape(x)
	name := b.uniq("fc")
	w := b.param(name+".weight", []int{out, s[1]}, b.normal(math.Sqrt(2/float64(s[1]))))
	bias := b.param(name+".bias", []int{out}, constant(0))
	return b.node("Gemm", name, []string{x, w, bias}, name+".out", []int{s[0], out}, map[string]model.Attribute{
		"alpha":  floatAttr(1),
		"beta":   floatAttr(1),
		"transB": intAttr(1),
	})
}

// dropout adds an opset-13 Dropout; a ratio other than the default 0.5 is a
// scalar initializer input, as ONNX ≥ 12 requires.
func (b *builder) dropout(x string, ratio float32) string {
	name := b.uniq("dropout")
	if b.skeleton {
		return x // inference-mode Dropout is the identity: Simplify drops it
	}
	inputs := []string{x}
	if ratio != 0.5 {
		inputs = append(inputs, b.scalar(name+".ratio", ratio))
	}
	return b.node("Dropout", name, inputs, name+".out", b.shape(x), nil)
}

func (b *builder) add(x, y string) string {
	name := b.uniq("add")
	return b.node("Add", name, []string{x, y}, name+".out", b.shape(x), nil)
}

// softmax adds a Softmax over the class axis whose output is named out.
func (b *builder) softmax(x, out string) string {
	name := b.uniq("softmax")
	return b.node("Softmax", name, []string{x}, out, b.shape(x), map[string]model.Attribute{"axis": intAttr(1)})
}

// rename makes the last node's output the graph output name out.
func (b *builder) rename(x, out string) string {
	last := b.g.Nodes[len(b.g.Nodes)-1]
	if last.Outputs[0] != x {
		panic("zoo: rename of a tensor the last node did not produce") // builder misuse, not input
	}
	last.Outputs[0] = out
	b.shapes[out] = b.shapes[x]
	delete(b.shapes, x)
	return out
}

// finish declares the graph outputs and returns the graph; a skeleton
// also gets every shape in Shapes and its nodes in canonical order.
func (b *builder) finish(outputs ...string) *model.Graph {
	for _, o := range outputs {
		b.g.Outputs = append(b.g.Outputs, model.ValueInfo{Name: o, Shape: append([]int(nil), b.shapes[o]...)})
	}
	if b.skeleton {
		b.g.Shapes = b.shapes
		if err := b.g.Sort(); err != nil {
			panic("zoo: skeleton of " + b.g.Name + ": " + err.Error()) // builder bug, not input
		}
	}
	return b.g
}
