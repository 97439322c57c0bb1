package partition_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/partition"
	"gorgonia.org/tensor"
)

// vitBlockCuts returns the block boundaries of the simplified ViT g with
// depth blocks, found from its node names: the start of every block (the
// first node named zoo.BlockPrefix(b); for block 1 that is right after the
// patch and position embedding) and the start of the head (the final
// LayerNorm "ln", right after the last block).
func vitBlockCuts(t *testing.T, g *model.Graph, depth int) []int {
	t.Helper()
	var ks []int
	for b := 1; b <= depth+1; b++ {
		match := func(n *model.Node) bool { return n.Name == "ln" }
		if b <= depth {
			prefix := zoo.BlockPrefix(b)
			match = func(n *model.Node) bool { return strings.HasPrefix(n.Name, prefix) }
		}
		k := slices.IndexFunc(g.Nodes, match)
		if k < 0 || (len(ks) > 0 && k <= ks[len(ks)-1]) {
			t.Fatalf("block %d of %d: no start after the one before (index %d)", b, depth, k)
		}
		ks = append(ks, k)
	}
	return ks
}

// TestViTSplitBitIdentical splits vit-tiny (seeded weights) at every block
// boundary — after the patch embedding, between blocks and before the head
// — and checks each boundary is one [1,T,D] hidden state (the residual
// stream: pre-norm blocks keep nothing else alive across them) and that
// head + tail give outputs bit-identical (==) to the unsplit model on
// several inputs. It then does the same at every other position, where
// inside a block two or more tensors cross (the residual plus the branch
// being computed; the Runner passes them all) and the answer must still be
// bit-identical.
func TestViTSplitBitIdentical(t *testing.T) {
	ctx := context.Background()
	c := zoo.ViTTinyConfig
	g, err := model.Simplify(zoo.ViTTiny(3), nil)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.Compile(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(16, 3))
	inputs := 4
	if testing.Short() {
		inputs = 2
	}
	var xs []*tensor.Dense
	var want [][]float32
	ex := net.NewExtractor()
	for range inputs {
		x := randTensor(rng, 1, c.Channels, c.Size, c.Size)
		out, err := ex.Run(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
		want = append(want, slices.Clone(out[0].Data().([]float32)))
	}
	cuts, err := partition.Cuts(g)
	if err != nil {
		t.Fatal(err)
	}
	tokens := c.Size / c.Patch * (c.Size / c.Patch)
	check := func(k int) {
		t.Helper()
		r, err := partition.NewRunner(g, k, model.Options{})
		if err != nil {
			t.Fatalf("K=%d: %v", k, err)
		}
		for i, x := range xs {
			outs, _, err := r.Run(ctx, x)
			if err != nil {
				t.Fatalf("K=%d input %d: %v", k, i, err)
			}
			if got := outs[0].Data().([]float32); !slices.Equal(got, want[i]) {
				t.Fatalf("K=%d input %d: split output %v differs from unsplit %v", k, i, got, want[i])
			}
		}
	}
	blocks := vitBlockCuts(t, g, c.Depth)
	for i, k := range blocks {
		b := cuts[k].Boundary
		if len(b) != 1 {
			t.Fatalf("block boundary %d (K=%d) carries %v, want one tensor", i, k, b)
		}
		if s := g.Shapes[b[0]]; !slices.Equal(s, []int{1, tokens, c.Dim}) {
			t.Errorf("block boundary %d (K=%d): %s has shape %v, want [1 %d %d]", i, k, b[0], s, tokens, c.Dim)
		}
		check(k)
	}
	t.Logf("block boundaries K=%v of %d nodes", blocks, len(g.Nodes))
	multi := 0
	for k := 0; k <= len(g.Nodes); k++ {
		if slices.Contains(blocks, k) {
			continue
		}
		if len(cuts[k].Boundary) > 1 {
			multi++
		}
		if testing.Short() && len(cuts[k].Boundary) > 1 && k%7 != 0 {
			continue // a sample of the inner cuts
		}
		check(k)
	}
	if multi == 0 {
		t.Error("no cut inside a block carries more than one tensor")
	}
}
