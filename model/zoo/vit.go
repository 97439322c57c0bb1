package zoo

import (
	"fmt"
	"math"

	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// vitOpset is the opset of the ViT graphs: LayerNormalization needs 17 and
// Gelu 20 (so ReduceMean takes its axes as an input).
const vitOpset = 20

// ViTConfig sizes a Vision Transformer (pre-norm blocks, mean-pooled tokens
// instead of a class token) on Channels×Size×Size images.
type ViTConfig struct {
	Channels, Size int // input image: 1×Channels×Size×Size
	Patch          int // patch side; Size must be a multiple
	Dim            int // token width
	Depth          int // transformer blocks
	Heads          int // attention heads; Dim must be a multiple
	MLP            int // hidden width of each block's MLP
	Classes        int
}

// ViTTinyConfig is the configuration of the zoo's "vit-tiny": 7×7 patches of
// a 28×28 MNIST image (16 tokens), width 64, 4 blocks of 4 heads, MLP 128,
// 10 classes — 138,890 parameters, sized to train on 2 CPU cores.
var ViTTinyConfig = ViTConfig{Channels: 1, Size: 28, Patch: 7, Dim: 64, Depth: 4, Heads: 4, MLP: 128, Classes: 10}

// Validate reports a configuration whose shapes do not fit.
func (c ViTConfig) Validate() error {
	for _, v := range []int{c.Channels, c.Size, c.Patch, c.Dim, c.Depth, c.Heads, c.MLP, c.Classes} {
		if v <= 0 || v > 1<<16 {
			return fmt.Errorf("zoo: ViT config %+v: every size must be in 1..65536", c)
		}
	}
	if c.Size%c.Patch != 0 || c.Dim%c.Heads != 0 {
		return fmt.Errorf("zoo: ViT config %+v: Size must be a multiple of Patch and Dim of Heads", c)
	}
	return nil
}

// ViTTiny is "vit-tiny" (ViTTinyConfig) with weights drawn from seed.
func ViTTiny(seed uint64) *model.Graph { return vitTiny(weights(seed)) }

func vitTiny(m mode) *model.Graph { return vit("vit-tiny", ViTTinyConfig, m) }

// BuildViT returns a ViT of configuration c named name, weights drawn from
// seed. Graph (opset 20): Conv Patch×Patch stride Patch (+bias) →
// Reshape/Transpose to tokens → Add position embedding → Depth × [x +
// MHA(LayerNorm(x)); x + MLP(LayerNorm(x))] → LayerNorm → ReduceMean over
// tokens → Gemm Classes → Softmax ("probs"). Attention is written out in
// MatMul, Reshape, Transpose, Mul (by 1/√head width) and Softmax over the
// last axis; the MLP is MatMul + Add, Gelu (Erf form), MatMul + Add.
func BuildViT(name string, c ViTConfig, seed uint64) (*model.Graph, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return vit(name, c, weights(seed)), nil
}

func vit(name string, c ViTConfig, m mode) *model.Graph {
	b := newBuilder(name, m, InputName, []int{1, c.Channels, c.Size, c.Size})
	b.g.OpsetVersion = vitOpset
	grid := c.Size / c.Patch
	t := grid * grid
	x := b.conv(InputName, c.Dim, c.Patch, c.Patch, 0, 1, true) // 1×D×g×g
	x = b.reshape(x, "tokens", 0, c.Dim, t)
	x = b.transpose(x, "tokens", 0, 2, 1) // 1×T×D
	pos := b.param("pos_embed", []int{1, t, c.Dim}, b.normal(0.02))
	x = b.node("Add", "pos_add", []string{x, pos}, "pos_add.out", b.shape(x), nil)
	for i := 1; i <= c.Depth; i++ {
		p := fmt.Sprintf("blk%d.", i)
		x = b.add(x, b.attention(b.layerNorm(x, p+"ln1"), p+"attn.", c.Heads, ""))
		h := b.linear(b.layerNorm(x, p+"ln2"), c.MLP, p+"mlp.fc1")
		h = b.node("Gelu", p+"mlp.gelu", []string{h}, p+"mlp.gelu.out", b.shape(h), nil)
		x = b.add(x, b.linear(h, c.Dim, p+"mlp.fc2"))
	}
	x = b.layerNorm(x, "ln")
	axes := b.int64s("pool.axes", 1)
	x = b.node("ReduceMean", "pool", []string{x, axes}, "pool.out", []int{1, c.Dim}, map[string]model.Attribute{"keepdims": intAttr(0)})
	x = b.gemm(x, c.Classes)
	b.softmax(x, ProbsName)
	return b.finish(ProbsName)
}

// attention is multi-head self-attention of x (1×T×D) with heads heads:
// softmax(Q·Kᵀ/√dh + mask)·V per head, then the output projection; mask
// (a T×T initializer, broadcast over heads) is left out when empty.
func (b *builder) attention(x, p string, heads int, mask string) string {
	s := b.shape(x)
	t, d := s[1], s[2]
	dh := d / heads
	split := func(y, name string, perm ...int) string {
		y = b.reshape(y, name+".heads", 0, t, heads, dh)
		return b.transpose(y, name+".heads", perm...)
	}
	q := split(b.linear(x, d, p+"q"), p+"q", 0, 2, 1, 3) // 1×H×T×dh
	k := split(b.linear(x, d, p+"k"), p+"k", 0, 2, 3, 1) // 1×H×dh×T
	v := split(b.linear(x, d, p+"v"), p+"v", 0, 2, 1, 3) // 1×H×T×dh
	sc := b.node("MatMul", p+"scores", []string{q, k}, p+"scores.out", []int{1, heads, t, t}, nil)
	sc = b.node("Mul", p+"scale", []string{sc, b.scalar(p+"scale.k", float32(1/math.Sqrt(float64(dh))))}, p+"scale.out", b.shape(sc), nil)
	if mask != "" {
		sc = b.node("Add", p+"mask", []string{sc, mask}, p+"mask.out", b.shape(sc), nil)
	}
	sc = b.node("Softmax", p+"softmax", []string{sc}, p+"softmax.out", b.shape(sc), map[string]model.Attribute{"axis": intAttr(-1)})
	o := b.node("MatMul", p+"context", []string{sc, v}, p+"context.out", []int{1, heads, t, dh}, nil)
	o = b.transpose(o, p+"merge", 0, 2, 1, 3) // 1×T×H×dh
	o = b.reshape(o, p+"merge", 0, t, d)
	return b.linear(o, d, p+"proj")
}

// linear is MatMul by an in×out weight (Glorot normal) plus a zero bias, as
// exporters write a Linear on a 3-D tensor.
func (b *builder) linear(x string, out int, name string) string {
	s := b.shape(x)
	in := s[len(s)-1]
	w := b.param(name+".weight", []int{in, out}, b.normal(math.Sqrt(2/float64(in+out))))
	ys := append(append([]int(nil), s[:len(s)-1]...), out)
	y := b.node("MatMul", name, []string{x, w}, name+".mm", ys, nil)
	bias := b.param(name+".bias", []int{out}, constant(0))
	return b.node("Add", name+".add", []string{y, bias}, name+".out", ys, nil)
}

// layerNorm is LayerNormalization over the last axis (scale 1, bias 0).
func (b *builder) layerNorm(x, name string) string {
	d := b.shape(x)[len(b.shape(x))-1]
	scale := b.param(name+".weight", []int{d}, constant(1))
	bias := b.param(name+".bias", []int{d}, constant(0))
	return b.node("LayerNormalization", name, []string{x, scale, bias}, name+".out", b.shape(x),
		map[string]model.Attribute{"axis": intAttr(-1), "epsilon": floatAttr(1e-5)})
}

// reshape reshapes x to shape (0 keeps the batch), node name+".reshape".
func (b *builder) reshape(x, name string, shape ...int) string {
	out := make([]int, len(shape))
	for i, d := range shape {
		out[i] = d
		if d == 0 {
			out[i] = b.shape(x)[i]
		}
	}
	spec := b.int64s(name+".shape", shape...)
	return b.node("Reshape", name+".reshape", []string{x, spec}, name+".reshape.out", out, nil)
}

// transpose permutes x's axes, node name+".transpose".
func (b *builder) transpose(x, name string, perm ...int) string {
	s := b.shape(x)
	out := make([]int, len(perm))
	for i, p := range perm {
		out[i] = s[p]
	}
	return b.node("Transpose", name+".transpose", []string{x}, name+".transpose.out", out, map[string]model.Attribute{"perm": ints(perm...)})
}

// int64s adds a 1-D int64 initializer (a shape or axes input; real data
// in skeleton mode too, as model.Simplify keeps it).
func (b *builder) int64s(name string, v ...int) string {
	d := make([]int64, len(v))
	for i, x := range v {
		d[i] = int64(x)
	}
	b.g.Initializers[name] = tensor.New(tensor.WithShape(len(d)), tensor.WithBacking(d))
	b.shapes[name] = []int{len(d)}
	return name
}
