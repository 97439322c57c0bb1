package zoo

import (
	"fmt"
	"math"

	"github.com/edgesplit/edgesplit/model"
	"gorgonia.org/tensor"
)

// GPTConfig sizes a GPT-style causal language model (pre-norm blocks,
// learned position embeddings, an untied output head) over a vocabulary of
// Vocab tokens and a context of Context positions.
type GPTConfig struct {
	Vocab   int // tokens; the input is 1×Context×Vocab one-hot rows
	Context int // positions per window
	Dim     int // token width
	Depth   int // transformer blocks
	Heads   int // attention heads; Dim must be a multiple
	MLP     int // hidden width of each block's MLP
}

// GPTTinyConfig is the configuration of the zoo's "gpt-tiny": a character
// model over the 97-token ASCII vocabulary of model/lm (printable ASCII,
// newline, unknown), 64 positions, width 64, 2 blocks of 4 heads, MLP 256 —
// 116,705 parameters, sized to train on 2 CPU cores.
var GPTTinyConfig = GPTConfig{Vocab: 97, Context: 64, Dim: 64, Depth: 2, Heads: 4, MLP: 256}

// Tensor names of the GPT graphs.
const (
	// TokensName is the input of a GPT graph: 1×Context×Vocab, row t the
	// one-hot encoding of the token at position t (all zeros for a
	// position past the end of the text, which no earlier position sees).
	TokensName = "tokens"
	// NextName is its output: 1×Context×Vocab, row t the probabilities of
	// the token at position t+1.
	NextName = "next"
	// CausalMaskName is the Context×Context mask added to every block's
	// attention scores: 0 on and below the diagonal, −Inf above.
	CausalMaskName = "causal_mask"
)

// Validate reports a configuration whose shapes do not fit.
func (c GPTConfig) Validate() error {
	for _, v := range []int{c.Vocab, c.Context, c.Dim, c.Depth, c.Heads, c.MLP} {
		if v <= 0 || v > 1<<16 {
			return fmt.Errorf("zoo: GPT config %+v: every size must be in 1..65536", c)
		}
	}
	if c.Dim%c.Heads != 0 {
		return fmt.Errorf("zoo: GPT config %+v: Dim must be a multiple of Heads", c)
	}
	if c.Context > 4096 {
		return fmt.Errorf("zoo: GPT config %+v: context of at most 4096 positions", c)
	}
	return nil
}

// GPTTiny is "gpt-tiny" (GPTTinyConfig) with weights drawn from seed.
func GPTTiny(seed uint64) *model.Graph { return gptTiny(weights(seed)) }

func gptTiny(m mode) *model.Graph { return gpt("gpt-tiny", GPTTinyConfig, m) }

// BuildGPT returns a GPT of configuration c named name, weights drawn from
// seed. Graph (opset 20): tokens (one-hot) MatMul the embedding table →
// Add position embedding → Depth × [x + causal MHA(LayerNorm(x)); x +
// MLP(LayerNorm(x))] → LayerNorm → MatMul + Add to Vocab logits → Softmax
// over the last axis (NextName). The embedding is a MatMul of one-hot rows
// because the engine's activations are float32: each row picks exactly one
// row of the table (the other products are zeros). Attention adds
// CausalMaskName to its scaled scores before the Softmax, so position t
// attends to positions ≤ t only and a window's prefix is computed exactly as
// if the window ended there.
func BuildGPT(name string, c GPTConfig, seed uint64) (*model.Graph, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return gpt(name, c, weights(seed)), nil
}

func gpt(name string, c GPTConfig, m mode) *model.Graph {
	b := newBuilder(name, m, TokensName, []int{1, c.Context, c.Vocab})
	b.g.OpsetVersion = vitOpset
	t := c.Context
	emb := b.param("tok_embed", []int{c.Vocab, c.Dim}, b.normal(0.02))
	x := b.node("MatMul", "tok_embed.lookup", []string{TokensName, emb}, "tok_embed.out", []int{1, t, c.Dim}, nil)
	pos := b.param("pos_embed", []int{1, t, c.Dim}, b.normal(0.02))
	x = b.node("Add", "pos_add", []string{x, pos}, "pos_add.out", b.shape(x), nil)
	mask := make([]float32, t*t)
	for i := 0; i < t; i++ {
		for j := i + 1; j < t; j++ {
			mask[i*t+j] = float32(math.Inf(-1))
		}
	}
	// The mask is real data in skeleton mode too (it is a constant of the
	// structure, not a weight).
	b.g.Initializers[CausalMaskName] = tensor.New(tensor.WithShape(t, t), tensor.WithBacking(mask))
	b.shapes[CausalMaskName] = []int{t, t}
	for i := 1; i <= c.Depth; i++ {
		p := fmt.Sprintf("blk%d.", i)
		x = b.add(x, b.attention(b.layerNorm(x, p+"ln1"), p+"attn.", c.Heads, CausalMaskName))
		h := b.linear(b.layerNorm(x, p+"ln2"), c.MLP, p+"mlp.fc1")
		h = b.node("Gelu", p+"mlp.gelu", []string{h}, p+"mlp.gelu.out", b.shape(h), nil)
		x = b.add(x, b.linear(h, c.Dim, p+"mlp.fc2"))
	}
	x = b.layerNorm(x, "ln")
	x = b.linear(x, c.Vocab, "head")
	b.node("Softmax", "next.softmax", []string{x}, NextName, b.shape(x), map[string]model.Attribute{"axis": intAttr(-1)})
	return b.finish(NextName)
}
