package partition

import (
	"fmt"
	"time"

	"github.com/edgesplit/edgesplit/model/zoo"
)

// GPTWork is the work of one part of a GPT in one call, counted as the
// analytic reference device prices it: multiply-accumulates, float32 bytes
// read and written (weights, activations, key/value caches) and graph nodes
// run.
type GPTWork struct {
	MACs  float64
	Bytes float64
	Nodes int
}

// Latency is w's time on the analytic reference device: ReferencePerNode
// per node, MACs at ReferenceMACsPerSec, bytes at ReferenceBytesPerSec (the
// rule of Analytic).
func (w GPTWork) Latency() time.Duration {
	return time.Duration(w.Nodes)*ReferencePerNode + time.Duration((w.MACs/ReferenceMACsPerSec+w.Bytes/ReferenceBytesPerSec)*1e9)
}

// GPTCall is the work of one call of a GPT, by part: the embedding (token
// lookup and position add), one transformer block (every block does the
// same work) and the head (final LayerNorm, the Vocab projection of the
// last row and its Softmax).
type GPTCall struct {
	Embed, Block, Head GPTWork
}

// Nodes of each part in zoo.BuildGPT's graph, simplified: the embedding's
// lookup and position add; a block's two LayerNorms, four attention
// projections and two MLP layers (MatMul + bias Add each), the heads'
// reshapes and transposes, scores, scale, mask, Softmax, context, Gelu and
// two residual Adds; the head's LayerNorm, MatMul, Add and Softmax.
const (
	gptEmbedNodes = 2
	gptBlockNodes = 30
	gptHeadNodes  = 4
)

// AnalyticGPTPrefill is the work of prefilling a window of rows tokens
// (positions 0..rows−1) through a GPT of configuration c, counting only
// what generation needs: the window's rows (no padding to the context),
// the causal half of the attention scores, the head on the last row.
// Per block that is rows·(4·Dim² + 2·Dim·MLP) + rows·(rows+1)·Dim MACs
// (Q·Kᵀ and the context over rows·(rows+1)/2 pairs), the block's weights
// read once, its activations, its Heads·rows·(rows+1)/2 scores and the
// keys and values it writes to its cache. The embedding is a table lookup.
// zoo's graphs as the engine runs them pad to the context, compute every
// score and the head on every row and embed by a one-hot MatMul: more
// work, which profiles measured on the engine include.
func AnalyticGPTPrefill(c zoo.GPTConfig, rows int) (GPTCall, error) {
	if err := c.Validate(); err != nil {
		return GPTCall{}, fmt.Errorf("partition: analytic GPT: %w", err)
	}
	if rows < 1 || rows > c.Context {
		return GPTCall{}, fmt.Errorf("partition: analytic GPT prefill of %d rows, want 1..%d", rows, c.Context)
	}
	r, pairs := float64(rows), float64(rows)*float64(rows+1)/2
	return gptCall(c, r, pairs, 0), nil
}

// AnalyticGPTStep is the work of one decode step at position pos
// (0..Context−1) of a GPT of configuration c: one row through every part,
// attending to the pos cached positions and itself — per block 4·Dim² +
// 2·Dim·MLP + 2·(pos+1)·Dim MACs, the block's weights, and its key/value
// cache of pos positions read.
func AnalyticGPTStep(c zoo.GPTConfig, pos int) (GPTCall, error) {
	if err := c.Validate(); err != nil {
		return GPTCall{}, fmt.Errorf("partition: analytic GPT: %w", err)
	}
	if pos < 0 || pos >= c.Context {
		return GPTCall{}, fmt.Errorf("partition: analytic GPT step at position %d, want 0..%d", pos, c.Context-1)
	}
	return gptCall(c, 1, float64(pos+1), float64(pos)), nil
}

// gptCall counts rows rows attending over pairs (query, key) pairs, with
// cached positions read from the cache.
func gptCall(c zoo.GPTConfig, rows, pairs, cached float64) GPTCall {
	d, m, h, v := float64(c.Dim), float64(c.MLP), float64(c.Heads), float64(c.Vocab)
	const f32 = 4
	weights := 4*d*d + 2*d*m + 4*d + m + d + 4*d // projections, MLP, their biases, two LayerNorms
	// Activations read and written per row: LayerNorms 2·D each, the four
	// projections and their bias Adds 4·D each, the heads' transposes and
	// the merge 8·D, Q·Kᵀ and the context 4·D, the residual Adds 3·D each,
	// the MLP D + 2·MLP (fc1 and its Add) + 2·MLP (Gelu) + MLP + 2·D (fc2
	// and its Add).
	act := rows * (42*d + 6*m)
	scores := 8 * h * pairs            // written, scaled, masked, softmaxed, read by the context
	cache := 2*rows*d + 2*cached*d     // keys and values written, the cached ones read
	head := d*v + v + 2*d              // weights
	headAct := 2*d + d + v + 2*v + 2*v // LayerNorm, MatMul in/out, Add, Softmax (one row)
	return GPTCall{
		Embed: GPTWork{Bytes: f32 * (2*rows*d + 3*rows*d), Nodes: gptEmbedNodes}, // lookup, position Add
		Block: GPTWork{MACs: rows*(4*d*d+2*d*m) + 2*pairs*d, Bytes: f32 * (weights + act + scores + cache), Nodes: gptBlockNodes},
		Head:  GPTWork{MACs: d * v, Bytes: f32 * (head + headAct), Nodes: gptHeadNodes},
	}
}
