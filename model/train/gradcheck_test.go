package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// tb is a tiny graph builder for the gradient checks.
type tb struct {
	g   *model.Graph
	rng *rand.Rand
	n   int
}

func newTB(shape ...int) *tb {
	g := model.NewGraph("gradcheck")
	g.Inputs = []model.ValueInfo{{Name: "x", Shape: shape}}
	return &tb{g: g, rng: rand.New(rand.NewPCG(42, 7))}
}

func (b *tb) init(shape []int, scale float64, offset float64) string {
	b.n++
	name := fmt.Sprintf("w%d", b.n)
	d := make([]float32, shapeSize(shape))
	for i := range d {
		d[i] = float32(offset + scale*b.rng.NormFloat64())
	}
	b.g.Initializers[name] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
	return name
}

func (b *tb) scalar(v float32) string {
	b.n++
	name := fmt.Sprintf("s%d", b.n)
	b.g.Initializers[name] = tensor.New(tensor.FromScalar(v))
	return name
}

// int64s adds a 1-D int64 initializer (a shape or axes input).
func (b *tb) int64s(v ...int64) string {
	b.n++
	name := fmt.Sprintf("i%d", b.n)
	b.g.Initializers[name] = tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(append([]int64(nil), v...)))
	return name
}

func (b *tb) op(op string, attrs map[string]model.Attribute, inputs ...string) string {
	b.n++
	out := fmt.Sprintf("t%d", b.n)
	if attrs == nil {
		attrs = map[string]model.Attribute{}
	}
	b.g.Nodes = append(b.g.Nodes, &model.Node{Name: fmt.Sprintf("n%d", b.n), Op: op, Inputs: inputs, Outputs: []string{out}, Attrs: attrs})
	return out
}

func ai(v ...int64) model.Attribute { return model.Attribute{Kind: model.AttrInts, Ints: v} }
func a1(v int64) model.Attribute    { return model.Attribute{Kind: model.AttrInt, Int: v} }
func af(v float32) model.Attribute  { return model.Attribute{Kind: model.AttrFloat, Float: v} }

// head adds Flatten → Gemm(classes) → Softmax as output name.
func (b *tb) head(x string, features, classes int, out string) {
	f := b.op("Flatten", map[string]model.Attribute{"axis": a1(1)}, x)
	z := b.op("Gemm", map[string]model.Attribute{"transB": a1(1)}, f,
		b.init([]int{classes, features}, 0.3, 0), b.init([]int{classes}, 0.1, 0))
	b.g.Nodes = append(b.g.Nodes, &model.Node{Name: "sm" + out, Op: "Softmax", Inputs: []string{z}, Outputs: []string{out},
		Attrs: map[string]model.Attribute{"axis": a1(1)}})
	b.g.Outputs = append(b.g.Outputs, model.ValueInfo{Name: out})
}

func conv(b *tb, x string, inC, outC, k int, attrs map[string]model.Attribute, bias bool) string {
	group := 1
	if a, ok := attrs["group"]; ok {
		group = int(a.Int)
	}
	attrs["kernel_shape"] = ai(int64(k), int64(k))
	in := []string{x, b.init([]int{outC, inC / group, k, k}, 0.4, 0)}
	if bias {
		in = append(in, b.init([]int{outC}, 0.1, 0))
	}
	return b.op("Conv", attrs, in...)
}

type gradCase struct {
	name    string
	batch   int
	build   func() *model.Graph
	weights []float64
}

func gradCases() []gradCase {
	return []gradCase{
		{"conv3x3_pad1_bias", 2, func() *model.Graph {
			b := newTB(1, 2, 5, 5)
			y := conv(b, "x", 2, 3, 3, map[string]model.Attribute{"pads": ai(1, 1, 1, 1)}, true)
			b.head(y, 3*5*5, 3, "out")
			return b.g
		}, nil},
		{"conv_stride2_asym_pads", 2, func() *model.Graph {
			b := newTB(1, 2, 6, 5)
			y := conv(b, "x", 2, 2, 3, map[string]model.Attribute{"pads": ai(1, 0, 0, 1), "strides": ai(2, 2)}, true)
			b.head(y, 2*3*2, 3, "out")
			return b.g
		}, nil},
		{"conv_groups2_dilation2", 2, func() *model.Graph {
			b := newTB(1, 4, 6, 6)
			y := conv(b, "x", 4, 2, 2, map[string]model.Attribute{"group": a1(2), "dilations": ai(2, 2), "pads": ai(1, 1, 1, 1)}, false)
			b.head(y, 2*6*6, 3, "out")
			return b.g
		}, nil},
		{"conv_depthwise", 2, func() *model.Graph {
			b := newTB(1, 3, 5, 5)
			y := conv(b, "x", 3, 3, 3, map[string]model.Attribute{"group": a1(3), "pads": ai(1, 1, 1, 1), "strides": ai(2, 2)}, true)
			b.head(y, 3*3*3, 3, "out")
			return b.g
		}, nil},
		{"conv1x1_direct", 2, func() *model.Graph {
			b := newTB(1, 3, 4, 4)
			y := conv(b, "x", 3, 2, 1, map[string]model.Attribute{}, true)
			b.head(y, 2*4*4, 3, "out")
			return b.g
		}, nil},
		{"gemm_transB0_alpha_beta", 3, func() *model.Graph {
			b := newTB(1, 6)
			y := b.op("Gemm", map[string]model.Attribute{"alpha": af(0.5), "beta": af(2)}, "x", b.init([]int{6, 4}, 0.5, 0), b.init([]int{1, 4}, 0.2, 0))
			b.head(y, 4, 3, "out")
			return b.g
		}, nil},
		{"relu", 2, func() *model.Graph {
			b := newTB(1, 2, 4, 4)
			y := b.op("Relu", nil, conv(b, "x", 2, 2, 3, map[string]model.Attribute{"pads": ai(1, 1, 1, 1)}, true))
			b.head(y, 2*4*4, 3, "out")
			return b.g
		}, nil},
		{"clip_relu6", 2, func() *model.Graph {
			b := newTB(1, 1, 4, 4)
			c := conv(b, "x", 1, 2, 3, map[string]model.Attribute{"pads": ai(1, 1, 1, 1)}, true)
			y := b.op("Clip", nil, c, b.scalar(-0.5), b.scalar(0.5))
			b.head(y, 2*4*4, 3, "out")
			return b.g
		}, nil},
		{"maxpool2x2", 2, func() *model.Graph {
			b := newTB(1, 2, 4, 4)
			y := b.op("MaxPool", map[string]model.Attribute{"kernel_shape": ai(2, 2), "strides": ai(2, 2)}, "x")
			b.head(y, 2*2*2, 3, "out")
			return b.g
		}, nil},
		{"maxpool3x3_s2_pad1", 2, func() *model.Graph {
			b := newTB(1, 2, 5, 5)
			y := b.op("MaxPool", map[string]model.Attribute{"kernel_shape": ai(3, 3), "strides": ai(2, 2), "pads": ai(1, 1, 1, 1)}, "x")
			b.head(y, 2*3*3, 3, "out")
			return b.g
		}, nil},
		{"avgpool_exclude_pad", 2, func() *model.Graph {
			b := newTB(1, 2, 4, 4)
			y := b.op("AveragePool", map[string]model.Attribute{"kernel_shape": ai(3, 3), "pads": ai(1, 1, 1, 1)}, "x")
			b.head(y, 2*4*4, 3, "out")
			return b.g
		}, nil},
		{"avgpool_include_pad_stride2", 2, func() *model.Graph {
			b := newTB(1, 2, 5, 5)
			y := b.op("AveragePool", map[string]model.Attribute{"kernel_shape": ai(3, 3), "strides": ai(2, 2),
				"pads": ai(1, 1, 1, 1), "count_include_pad": a1(1)}, "x")
			b.head(y, 2*3*3, 3, "out")
			return b.g
		}, nil},
		{"global_avg_pool", 2, func() *model.Graph {
			b := newTB(1, 3, 3, 4)
			y := b.op("GlobalAveragePool", nil, "x")
			b.head(y, 3, 3, "out")
			return b.g
		}, nil},
		{"add_residual_identity", 2, func() *model.Graph {
			b := newTB(1, 2, 4, 4)
			c := conv(b, "x", 2, 2, 3, map[string]model.Attribute{"pads": ai(1, 1, 1, 1)}, true)
			y := b.op("Add", nil, b.op("Identity", nil, c), "x")
			b.head(y, 2*4*4, 3, "out")
			return b.g
		}, nil},
		{"batchnorm_train", 4, func() *model.Graph {
			b := newTB(1, 2, 3, 3)
			c := conv(b, "x", 2, 3, 3, map[string]model.Attribute{"pads": ai(1, 1, 1, 1)}, false)
			y := b.op("BatchNormalization", map[string]model.Attribute{"epsilon": af(1e-3)}, c,
				b.init([]int{3}, 0.2, 1), b.init([]int{3}, 0.2, 0), b.init([]int{3}, 0, 0), b.init([]int{3}, 0, 1))
			b.head(y, 3*3*3, 3, "out")
			return b.g
		}, nil},
		{"dropout", 2, func() *model.Graph {
			b := newTB(1, 6)
			y := b.op("Dropout", nil, "x", b.scalar(0.3))
			b.head(y, 6, 3, "out")
			return b.g
		}, nil},
		{"reshape_transpose", 2, func() *model.Graph {
			b := newTB(1, 2, 3, 4)
			r := b.op("Reshape", nil, "x", b.int64s(0, 2, 12))
			y := b.op("Transpose", map[string]model.Attribute{"perm": ai(0, 2, 1)}, r)
			y = b.op("Reshape", nil, y, b.int64s(-1, 6, 4))
			b.head(y, 24, 3, "out")
			return b.g
		}, nil},
		{"matmul_weight_bias", 2, func() *model.Graph {
			b := newTB(1, 3, 4)
			y := b.op("MatMul", nil, "x", b.init([]int{4, 5}, 0.5, 0))
			y = b.op("Add", nil, y, b.init([]int{5}, 0.2, 0))
			b.head(y, 15, 3, "out")
			return b.g
		}, nil},
		{"position_embedding_add", 2, func() *model.Graph {
			b := newTB(1, 3, 4)
			y := b.op("Add", nil, b.init([]int{1, 3, 4}, 0.3, 0), "x")
			b.head(y, 12, 3, "out")
			return b.g
		}, nil},
		{"layernorm", 3, func() *model.Graph {
			b := newTB(1, 3, 6)
			y := b.op("LayerNormalization", map[string]model.Attribute{"axis": a1(-1), "epsilon": af(1e-3)}, "x",
				b.init([]int{6}, 0.3, 1), b.init([]int{6}, 0.2, 0))
			b.head(y, 18, 3, "out")
			return b.g
		}, nil},
		{"softmax_last_axis_scaled", 2, func() *model.Graph {
			b := newTB(1, 2, 5)
			y := b.op("Mul", nil, b.op("MatMul", nil, "x", b.init([]int{5, 4}, 0.5, 0)), b.scalar(1.5))
			y = b.op("Softmax", map[string]model.Attribute{"axis": a1(-1)}, y)
			b.head(y, 8, 3, "out")
			return b.g
		}, nil},
		{"gelu_erf", 2, func() *model.Graph {
			b := newTB(1, 8)
			y := b.op("Gelu", nil, b.op("MatMul", nil, "x", b.init([]int{8, 6}, 0.5, 0)))
			b.head(y, 6, 3, "out")
			return b.g
		}, nil},
		{"gelu_tanh", 2, func() *model.Graph {
			b := newTB(1, 8)
			y := b.op("Gelu", map[string]model.Attribute{"approximate": {Kind: model.AttrString, String: "tanh"}},
				b.op("MatMul", nil, "x", b.init([]int{8, 6}, 0.5, 0)))
			b.head(y, 6, 3, "out")
			return b.g
		}, nil},
		{"reduce_mean_tokens", 2, func() *model.Graph {
			b := newTB(1, 4, 5)
			y := b.op("ReduceMean", map[string]model.Attribute{"keepdims": a1(0)}, "x", b.int64s(1))
			z := b.op("ReduceMean", map[string]model.Attribute{"axes": ai(-1), "keepdims": a1(1)}, "x")
			b.head(y, 5, 3, "out")
			b.head(z, 4, 3, "out2")
			return b.g
		}, nil},
		{"self_attention_two_heads", 2, func() *model.Graph {
			// x: 3 tokens × 4; Q, K, V projections, 2 heads of width 2.
			b := newTB(1, 3, 4)
			heads := func(w string, perm ...int64) string {
				y := b.op("MatMul", nil, "x", w)
				y = b.op("Reshape", nil, y, b.int64s(0, 3, 2, 2))
				return b.op("Transpose", map[string]model.Attribute{"perm": ai(perm...)}, y)
			}
			q := heads(b.init([]int{4, 4}, 0.6, 0), 0, 2, 1, 3) // 2×3×2
			k := heads(b.init([]int{4, 4}, 0.6, 0), 0, 2, 3, 1) // 2×2×3
			v := heads(b.init([]int{4, 4}, 0.6, 0), 0, 2, 1, 3) // 2×3×2
			s := b.op("Softmax", map[string]model.Attribute{"axis": a1(-1)}, b.op("Mul", nil, b.op("MatMul", nil, q, k), b.scalar(0.7)))
			o := b.op("Transpose", map[string]model.Attribute{"perm": ai(0, 2, 1, 3)}, b.op("MatMul", nil, s, v))
			o = b.op("Reshape", nil, o, b.int64s(0, 3, 4))
			y := b.op("Add", nil, "x", o)
			b.head(y, 12, 3, "out")
			return b.g
		}, nil},
		{"causal_lm_positions", 2, func() *model.Graph {
			// A one-block GPT: causal mask (constant, −Inf above the
			// diagonal), a label per position.
			g, err := zoo.BuildGPT("gpt-grad", zoo.GPTConfig{Vocab: 3, Context: 4, Dim: 4, Depth: 1, Heads: 2, MLP: 6}, 5)
			if err != nil {
				panic(err)
			}
			// Embeddings of unit scale: at the zoo's 0.02 a ±2e-3 step
			// is 10 % of the LayerNorm's input and the central
			// difference is no longer accurate.
			for _, name := range []string{"tok_embed", "pos_embed"} {
				for i := range g.Initializers[name].Data().([]float32) {
					g.Initializers[name].Data().([]float32)[i] *= 40
				}
			}
			return g
		}, nil},
		{"two_exits_weighted", 2, func() *model.Graph {
			b := newTB(1, 1, 4, 4)
			c := b.op("Relu", nil, conv(b, "x", 1, 2, 3, map[string]model.Attribute{"pads": ai(1, 1, 1, 1)}, true))
			b.head(c, 2*4*4, 3, "exit1")
			p := b.op("MaxPool", map[string]model.Attribute{"kernel_shape": ai(2, 2), "strides": ai(2, 2)}, c)
			b.head(p, 2*2*2, 3, "final")
			return b.g
		}, []float64{0.3, 1}},
	}
}

// lossAndGrads runs forward+backward on worker 0 with the dropout generator
// reseeded identically every call, returning the mean loss, the parameter
// gradients and the input gradient.
func lossAndGrads(tr *Trainer, x []float32, labels []int) (float64, [][]float32, []float32) {
	w := tr.workers[0]
	tr.pcg[0].Seed(1, 2)
	if g := w.grad[tr.net.input]; g != nil {
		clear(g)
	}
	r := tr.runWorker(w, x, labels, len(labels)/tr.net.Positions())
	return r.loss / float64(len(labels)), w.pgrad, w.grad[tr.net.input]
}

func TestGradients(t *testing.T) {
	for _, c := range gradCases() {
		t.Run(c.name, func(t *testing.T) {
			net, err := newNet(c.build(), true)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := NewTrainer(net, Options{Batch: c.batch, Workers: 1, ExitWeights: c.weights})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			in := net.values[net.input].size
			x := make([]float32, c.batch*in)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			labels := make([]int, c.batch*net.Positions())
			for i := range labels {
				labels[i] = rng.IntN(3)
			}
			_, pg, xg := lossAndGrads(tr, x, labels)
			analytic := make([][]float32, 0, len(pg)+1)
			for _, g := range pg {
				analytic = append(analytic, append([]float32(nil), g...))
			}
			analytic = append(analytic, append([]float32(nil), xg...))
			targets := make([][]float32, 0, len(pg)+1)
			names := make([]string, 0, len(pg)+1)
			for _, p := range net.params {
				targets = append(targets, p.data)
				names = append(names, p.name)
			}
			targets = append(targets, x)
			names = append(names, "input")
			const eps = 2e-3
			checked := 0
			for ti, data := range targets {
				step := max(1, len(data)/12)
				for j := 0; j < len(data); j += step {
					orig := data[j]
					data[j] = orig + eps
					lp, _, _ := lossAndGrads(tr, x, labels)
					data[j] = orig - eps
					lm, _, _ := lossAndGrads(tr, x, labels)
					data[j] = orig
					l0, _, _ := lossAndGrads(tr, x, labels)
					num := (lp - lm) / (2 * eps)
					got := float64(analytic[ti][j])
					close := func(n float64) bool { return math.Abs(got-n) <= 1e-3+2e-2*math.Abs(n) }
					// A ReLU/max kink inside [x−ε, x+ε] spoils the central
					// difference; then one one-sided difference still holds.
					if !close(num) && !close((lp-l0)/eps) && !close((l0-lm)/eps) {
						t.Errorf("%s[%d]: backward %.6f, finite difference %.6f", names[ti], j, got, num)
					}
					checked++
				}
			}
			if checked < 10 {
				t.Fatalf("only %d coordinates checked", checked)
			}
		})
	}
}
