package model

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"
)

// randomDAG builds a chain of shape-preserving ops on 1×4×6×6 where every
// node may also read an earlier tensor (residual adds, concats + 1×1 convs),
// exercising liveness with long-lived skip connections.
func randomDAG(rng *rand.Rand, n int) *Graph {
	g := NewGraph(fmt.Sprintf("dag%d", n))
	g.Inputs = []ValueInfo{{Name: "x", Shape: []int{1, 4, 6, 6}}}
	avail := []string{"x"}
	for i := 0; i < n; i++ {
		out := fmt.Sprintf("t%d", i)
		a := avail[len(avail)-1]
		b := avail[rng.Intn(len(avail))]
		name := fmt.Sprintf("n%d", i)
		switch rng.Intn(6) {
		case 0:
			g.Nodes = append(g.Nodes, nd("Add", name, []string{a, b}, []string{out}, nil))
		case 1:
			g.Nodes = append(g.Nodes, nd("Mul", name, []string{a, b}, []string{out}, nil))
		case 2:
			w := fmt.Sprintf("w%d", i)
			g.Initializers[w] = randDense(rng, 4, 4, 3, 3)
			g.Nodes = append(g.Nodes, nd("Conv", name, []string{a, w}, []string{out}, attrs{"pads": aInts(1, 1, 1, 1)}))
		case 3:
			g.Nodes = append(g.Nodes, nd("Tanh", name, []string{a}, []string{out}, nil))
		case 4:
			c := fmt.Sprintf("cat%d", i)
			w := fmt.Sprintf("w%d", i)
			g.Initializers[w] = randDense(rng, 4, 8, 1, 1)
			g.Nodes = append(g.Nodes,
				nd("Concat", name+"c", []string{a, b}, []string{c}, attrs{"axis": aInt(1)}),
				nd("Conv", name, []string{c, w}, []string{out}, nil))
		case 5:
			g.Nodes = append(g.Nodes, nd("Relu", name, []string{a}, []string{out}, nil))
		}
		avail = append(avail, out)
	}
	g.Outputs = []ValueInfo{{Name: avail[len(avail)-1]}, {Name: avail[len(avail)/2]}}
	return g
}

func TestArenaReuseMatchesNoReuse(t *testing.T) {
	rng := rand.New(rand.NewSource(20))
	for trial := 0; trial < 20; trial++ {
		g := randomDAG(rng, 5+rng.Intn(25))
		x := randDense(rng, 1, 4, 6, 6)
		for _, fuse := range []bool{false, true} {
			reuse := runOnce(t, g, Options{NoFusion: !fuse}, x)
			plain := runOnce(t, g, Options{NoFusion: !fuse, noReuse: true}, x)
			for k := range reuse {
				for i := range reuse[k] {
					if reuse[k][i] != plain[k][i] && !(reuse[k][i] != reuse[k][i] && plain[k][i] != plain[k][i]) {
						t.Fatalf("trial %d (%s, fuse=%v): output %d differs at %d: %v vs %v", trial, g.Name, fuse, k, i, reuse[k][i], plain[k][i])
					}
				}
			}
		}
		a, err := Compile(g, Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Compile(g, Options{noReuse: true})
		if err != nil {
			t.Fatal(err)
		}
		if a.ArenaBytes() > b.ArenaBytes() {
			t.Fatalf("reuse arena %d > no-reuse arena %d", a.ArenaBytes(), b.ArenaBytes())
		}
	}
}

func TestArenaIsSmallerWithReuse(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	g := NewGraph("chain")
	g.Inputs = []ValueInfo{{Name: "x", Shape: []int{1, 64, 32, 32}}}
	prev := "x"
	for i := 0; i < 10; i++ {
		out := fmt.Sprintf("t%d", i)
		g.Nodes = append(g.Nodes, nd("Sigmoid", fmt.Sprintf("s%d", i), []string{prev}, []string{out}, nil))
		prev = out
	}
	g.Outputs = []ValueInfo{{Name: prev}}
	a, err := Compile(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Compile(g, Options{noReuse: true})
	if err != nil {
		t.Fatal(err)
	}
	// In place: the whole chain lives in the input's buffer.
	if a.ArenaBytes() != 64*32*32*4 || b.ArenaBytes() != 11*64*32*32*4 {
		t.Fatalf("arena %d bytes with reuse, %d without", a.ArenaBytes(), b.ArenaBytes())
	}
	x := randDense(rng, 1, 64, 32, 32)
	out := runOnce(t, g, Options{}, x)
	out2 := runOnce(t, g, Options{noReuse: true}, x)
	assertClose(t, "chain", out[0], out2[0], 0)
}

func TestConcurrentExtractors(t *testing.T) {
	rng := rand.New(rand.NewSource(22))
	g := smallCNN(rng)
	net, err := Compile(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	xs := make([][]float32, 4)
	want := make([][]float32, 4)
	for i := range xs {
		x := randDense(rng, 1, 3, 8, 8)
		xs[i] = x.Float32s()
		want[i] = refSmallCNN(g, xs[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			ex := net.NewExtractor()
			for it := 0; it < 20; it++ {
				k := (w + it) % 4
				out, err := ex.Run(context.Background(), denseF([]int{1, 3, 8, 8}, xs[k]))
				if err != nil {
					errs <- err
					return
				}
				for i, v := range out[0].Float32s() {
					if d := v - want[k][i]; d > 1e-3 || d < -1e-3 {
						errs <- fmt.Errorf("worker %d: output %d = %v, want %v", w, i, v, want[k][i])
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestRunProfileAndCost(t *testing.T) {
	rng := rand.New(rand.NewSource(23))
	g := smallCNN(rng)
	net, err := Compile(g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sg := net.Graph()
	times := make([]time.Duration, len(sg.Nodes))
	ex := net.NewExtractor()
	x := randDense(rng, 1, 3, 8, 8)
	out, err := ex.RunProfile(context.Background(), times, x)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "profile", out[0].Float32s(), refSmallCNN(g, x.Float32s()), 1e-4)
	for i, n := range sg.Nodes {
		fused := n.Op == "Relu" // both Relus follow a Conv
		if fused != (times[i] == 0) && fused {
			t.Errorf("node %s: time %v (fused=%v)", n.Name, times[i], fused)
		}
	}
	if _, err := ex.RunProfile(context.Background(), times[:1], x); err == nil {
		t.Fatal("short times slice accepted")
	}
	// Costs: conv1 = 8·8·8 outputs × 27 taps; its params are w1 + b1.
	want := map[string][2]int64{
		"conv1": {8 * 8 * 8 * 27, 8*27 + 8},
		"conv2": {8 * 4 * 4 * 72, 8*72 + 8},
		"fc":    {10 * 128, 1280 + 10},
		"pool":  {8 * 4 * 4 * 4, 0},
		"flat":  {0, 0},
	}
	for i, n := range sg.Nodes {
		if w, ok := want[n.Name]; ok {
			m, p := NodeCost(sg, i)
			if m != w[0] || p != w[1] {
				t.Errorf("NodeCost(%s) = %d MACs, %d params; want %d, %d", n.Name, m, p, w[0], w[1])
			}
		}
	}
	if ops := SupportedOps(); len(ops) < 40 || ops[0] > ops[1] {
		t.Errorf("SupportedOps = %v", ops)
	}
}
