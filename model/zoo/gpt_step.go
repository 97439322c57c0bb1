package zoo

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// Tensor names of a GPT's decode-step graph (GPTStep), which runs one new
// token against a key/value cache of Context slots per block.
const (
	// StepTokenName is its token input: 1×1×Vocab, one-hot.
	StepTokenName = "step_token"
	// StepPositionName is the new token's position: 1×1×Context, one-hot.
	StepPositionName = "step_position"
	// StepMaskName is added to every block's attention scores over the
	// Context cache slots followed by the token itself: 1×1×1×(Context+1),
	// 0 for a slot the token sees (the filled ones and itself), −Inf for
	// the rest.
	StepMaskName = "step_mask"
)

// PastKeysName is block i's (1-based) key cache input of a step graph,
// 1×Heads×(Dim/Heads)×Context (keys as columns, the layout the full graph's
// attention multiplies by); in the full graph it is the name of the
// block's keys over the window (GPTWithCache exposes them).
func PastKeysName(block int) string { return fmt.Sprintf("blk%d.attn.k.heads.transpose.out", block) }

// PastValuesName is block i's value cache, 1×Heads×Context×(Dim/Heads); in
// the full graph, the block's values over the window.
func PastValuesName(block int) string { return fmt.Sprintf("blk%d.attn.v.heads.transpose.out", block) }

// StepKeysName is the step graph's output of block i's key for the new
// token, 1×Heads×(Dim/Heads)×1: the column to write into slot position of
// the key cache.
func StepKeysName(block int) string { return fmt.Sprintf("blk%d.step_k", block) }

// StepValuesName is block i's value for the new token, 1×Heads×1×(Dim/Heads).
func StepValuesName(block int) string { return fmt.Sprintf("blk%d.step_v", block) }

// BlockPrefix is the prefix of every node and weight name of block i
// (1-based) in the GPT graphs.
func BlockPrefix(block int) string { return fmt.Sprintf("blk%d.", block) }

// ErrNotGPT is returned (wrapped) for a graph that is not laid out like
// BuildGPT's.
var ErrNotGPT = errors.New("zoo: not a GPT graph")

// GPTConfigOf recovers the configuration of a graph built by BuildGPT (or
// read back from its ONNX export): the sizes come from its input and
// weights, the heads from block 1's head reshape.
func GPTConfigOf(g *model.Graph) (GPTConfig, error) {
	var c GPTConfig
	if g == nil || len(g.Inputs) != 1 || g.Inputs[0].Name != TokensName || len(g.Inputs[0].Shape) != 3 {
		return c, fmt.Errorf("%w: want one input %q of 1×context×vocab", ErrNotGPT, TokensName)
	}
	c.Context, c.Vocab = g.Inputs[0].Shape[1], g.Inputs[0].Shape[2]
	emb, ok := g.Initializers["tok_embed"]
	if !ok || len(emb.Shape()) != 2 {
		return c, fmt.Errorf("%w: no 2-D tok_embed", ErrNotGPT)
	}
	c.Dim = emb.Shape()[1]
	for g.Initializers[BlockPrefix(c.Depth+1)+"ln1.weight"] != nil {
		c.Depth++
	}
	if fc1, ok := g.Initializers[BlockPrefix(1)+"mlp.fc1.weight"]; ok && len(fc1.Shape()) == 2 {
		c.MLP = fc1.Shape()[1]
	}
	if hs, ok := g.Initializers[BlockPrefix(1)+"attn.q.heads.shape"]; ok {
		if v, ok := hs.Data().([]int64); ok && len(v) == 4 {
			c.Heads = int(v[2])
		}
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%w: %v", ErrNotGPT, err)
	}
	return c, nil
}

// GPTWithCache returns g (a GPT graph, unchanged) with every block's keys
// and values over the window as extra outputs after the probabilities
// (PastKeysName(1), PastValuesName(1), …): run on a prompt, it fills a
// step graph's caches. The graph shares g's nodes and weights.
func GPTWithCache(g *model.Graph) (*model.Graph, error) {
	c, err := GPTConfigOf(g)
	if err != nil {
		return nil, err
	}
	dh := c.Dim / c.Heads
	out := *g
	out.Outputs = append([]model.ValueInfo(nil), g.Outputs...)
	for i := 1; i <= c.Depth; i++ {
		out.Outputs = append(out.Outputs,
			model.ValueInfo{Name: PastKeysName(i), Shape: []int{1, c.Heads, dh, c.Context}},
			model.ValueInfo{Name: PastValuesName(i), Shape: []int{1, c.Heads, c.Context, dh}})
	}
	return &out, nil
}

// GPTStep returns the decode-step graph of the GPT g, sharing g's weights:
// inputs StepTokenName, StepPositionName, StepMaskName, then each block's
// key and value caches (PastKeysName(i), PastValuesName(i)); outputs
// NextName (1×1×Vocab: the probabilities of the token after the new one),
// then each block's StepKeysName(i) and StepValuesName(i). It computes for
// the new token what the full graph computes at its position when the
// caches hold the keys and values of the positions before it.
func GPTStep(g *model.Graph) (*model.Graph, error) {
	c, err := GPTConfigOf(g)
	if err != nil {
		return nil, err
	}
	b := newBuilder(g.Name+".step", mode{skeleton: true}, StepTokenName, []int{1, 1, c.Vocab})
	b.g.OpsetVersion = vitOpset
	dh := c.Dim / c.Heads
	b.g.Inputs = append(b.g.Inputs,
		model.ValueInfo{Name: StepPositionName, Shape: []int{1, 1, c.Context}},
		model.ValueInfo{Name: StepMaskName, Shape: []int{1, 1, 1, c.Context + 1}})
	b.shapes[StepPositionName] = []int{1, 1, c.Context}
	b.shapes[StepMaskName] = []int{1, 1, 1, c.Context + 1}
	for i := 1; i <= c.Depth; i++ {
		k, v := PastKeysName(i), PastValuesName(i)
		b.g.Inputs = append(b.g.Inputs, model.ValueInfo{Name: k, Shape: []int{1, c.Heads, dh, c.Context}},
			model.ValueInfo{Name: v, Shape: []int{1, c.Heads, c.Context, dh}})
		b.shapes[k] = []int{1, c.Heads, dh, c.Context}
		b.shapes[v] = []int{1, c.Heads, c.Context, dh}
	}
	emb := b.param("tok_embed", []int{c.Vocab, c.Dim}, nil)
	x := b.node("MatMul", "tok_embed.lookup", []string{StepTokenName, emb}, "tok_embed.out", []int{1, 1, c.Dim}, nil)
	// The position embedding of the new token: its one-hot position
	// times the 1×Context×Dim table.
	pos := b.param("pos_embed", []int{1, c.Context, c.Dim}, nil)
	pe := b.node("MatMul", "pos_embed.lookup", []string{StepPositionName, pos}, "pos_embed.out", []int{1, 1, c.Dim}, nil)
	x = b.node("Add", "pos_add", []string{x, pe}, "pos_add.out", b.shape(x), nil)
	var outs []string
	for i := 1; i <= c.Depth; i++ {
		p := BlockPrefix(i)
		a, k, v := b.stepAttention(b.layerNorm(x, p+"ln1"), p+"attn.", c.Heads, i)
		outs = append(outs, k, v)
		x = b.add(x, a)
		h := b.linear(b.layerNorm(x, p+"ln2"), c.MLP, p+"mlp.fc1")
		h = b.node("Gelu", p+"mlp.gelu", []string{h}, p+"mlp.gelu.out", b.shape(h), nil)
		x = b.add(x, b.linear(h, c.Dim, p+"mlp.fc2"))
	}
	x = b.layerNorm(x, "ln")
	x = b.linear(x, c.Vocab, "head")
	b.node("Softmax", "next.softmax", []string{x}, NextName, b.shape(x), map[string]model.Attribute{"axis": intAttr(-1)})
	step := b.finish(append([]string{NextName}, outs...)...)
	// The weights are g's: every parameter the skeleton placeholders
	// stand for, checked for shape.
	for name, ph := range step.Initializers {
		if len(ph.Shape()) != 0 || ph.Dtype() != tensor.Float32 || isStructural(name) {
			continue
		}
		w, ok := g.Initializers[name]
		if !ok {
			return nil, fmt.Errorf("%w: no weight %q", ErrNotGPT, name)
		}
		if want := b.shapes[name]; !equalShape(w.Shape(), want) {
			return nil, fmt.Errorf("%w: weight %q is %v, want %v", ErrNotGPT, name, w.Shape(), want)
		}
		step.Initializers[name] = w
	}
	step.Shapes = nil // inferred on compile, from the real weights
	return step, nil
}

// isStructural reports the scalar constants of the structure (the
// attention scale), which are real data in skeleton mode.
func isStructural(name string) bool { return strings.HasSuffix(name, ".scale.k") }

func equalShape(s tensor.Shape, want []int) bool {
	if len(s) != len(want) {
		return false
	}
	for i := range want {
		if s[i] != want[i] {
			return false
		}
	}
	return true
}

// stepAttention is attention (vit.go) for one new token: its query against
// the block's cached keys and values followed by its own, masked by
// StepMaskName. It returns the attention output and the names of the new
// key column and value row.
func (b *builder) stepAttention(x, p string, heads, block int) (out, k, v string) {
	d := b.shape(x)[2]
	dh := d / heads
	q := b.transpose(b.reshape(b.linear(x, d, p+"q"), p+"q.heads", 0, 1, heads, dh), p+"q.heads", 0, 2, 1, 3) // 1×H×1×dh
	kr := b.reshape(b.linear(x, d, p+"k"), p+"k.heads", 0, 1, heads, dh)
	k = b.node("Transpose", p+"k.heads.transpose", []string{kr}, StepKeysName(block), []int{1, heads, dh, 1},
		map[string]model.Attribute{"perm": ints(0, 2, 3, 1)})
	vr := b.reshape(b.linear(x, d, p+"v"), p+"v.heads", 0, 1, heads, dh)
	v = b.node("Transpose", p+"v.heads.transpose", []string{vr}, StepValuesName(block), []int{1, heads, 1, dh},
		map[string]model.Attribute{"perm": ints(0, 2, 1, 3)})
	ctx := b.shape(PastKeysName(block))[3]
	keys := b.node("Concat", p+"keys", []string{PastKeysName(block), k}, p+"keys.out", []int{1, heads, dh, ctx + 1},
		map[string]model.Attribute{"axis": intAttr(3)})
	vals := b.node("Concat", p+"values", []string{PastValuesName(block), v}, p+"values.out", []int{1, heads, ctx + 1, dh},
		map[string]model.Attribute{"axis": intAttr(2)})
	sc := b.node("MatMul", p+"scores", []string{q, keys}, p+"scores.out", []int{1, heads, 1, ctx + 1}, nil)
	sc = b.node("Mul", p+"scale", []string{sc, b.scalar(p+"scale.k", float32(1/math.Sqrt(float64(dh))))}, p+"scale.out", b.shape(sc), nil)
	sc = b.node("Add", p+"mask", []string{sc, StepMaskName}, p+"mask.out", b.shape(sc), nil)
	sc = b.node("Softmax", p+"softmax", []string{sc}, p+"softmax.out", b.shape(sc), map[string]model.Attribute{"axis": intAttr(-1)})
	o := b.node("MatMul", p+"context", []string{sc, vals}, p+"context.out", []int{1, heads, 1, dh}, nil)
	o = b.transpose(o, p+"merge", 0, 2, 1, 3)
	o = b.reshape(o, p+"merge", 0, 1, d)
	return b.linear(o, d, p+"proj"), k, v
}
