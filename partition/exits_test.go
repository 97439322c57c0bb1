package partition_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/partition"
	"gorgonia.org/tensor"
)

func lenetExits(t testing.TB) *model.Graph {
	t.Helper()
	g, err := model.Simplify(zoo.LenetExits(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestExits(t *testing.T) {
	g := lenetExits(t)
	exits, err := partition.Exits(g)
	if err != nil {
		t.Fatal(err)
	}
	want := []partition.Exit{
		{Name: zoo.Exit1Name, Output: 0, End: 9, Probs: true, Bytes: 40},
		{Name: zoo.Exit2Name, Output: 1, End: 15, Probs: true, Bytes: 40},
		{Name: zoo.ProbsName, Output: 2, End: 22, Probs: true, Bytes: 40},
	}
	if !slices.Equal(exits, want) {
		t.Fatalf("exits = %+v, want %+v", exits, want)
	}
	bad := *g
	bad.Outputs = append(slices.Clone(g.Outputs), model.ValueInfo{Name: "input", Shape: []int{1, 1, 28, 28}})
	if _, err := partition.Exits(&bad); !errors.Is(err, partition.ErrExit) {
		t.Fatalf("an output no node produces: err %v, want ErrExit", err)
	}
}

func TestPrefixCuts(t *testing.T) {
	g := lenetExits(t)
	for _, tc := range []struct {
		end, k      int
		boundary    []string
		bytes, back int64
	}{
		// the tail [0,9) also returns block 1's output, which exit 2 reads
		{9, 0, []string{"input"}, 3136, 4704 + 40},
		{9, 3, []string{"maxpool1.out"}, 4704, 40},
		{9, 9, nil, 0, 0},
		// exit2's tail also returns exit1 and what the final head reads
		{15, 3, []string{"maxpool1.out"}, 4704, 40 + 1600 + 40},
		{15, 12, []string{"maxpool3.out"}, 1600, 40},
		// past exit1 its probabilities need not travel
		{22, 12, []string{"maxpool3.out"}, 1600, 40 + 40},
		{22, 22, nil, 0, 0},
	} {
		cuts, err := partition.PrefixCuts(g, tc.end)
		if err != nil {
			t.Fatal(err)
		}
		if len(cuts) != tc.end+1 {
			t.Fatalf("end %d: %d cuts", tc.end, len(cuts))
		}
		c := cuts[tc.k]
		if c.K != tc.k || !slices.Equal(c.Boundary, tc.boundary) || c.Bytes != tc.bytes || c.ResultBytes != tc.back {
			t.Errorf("end %d K %d: boundary %v (%d B), result %d B; want %v (%d B), %d B", tc.end, tc.k, c.Boundary, c.Bytes, c.ResultBytes, tc.boundary, tc.bytes, tc.back)
		}
	}
	// The full model's prefix cuts carry what Cuts carries, less the graph
	// outputs already computed.
	full, err := partition.Cuts(g)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := partition.PrefixCuts(g, len(g.Nodes))
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < len(g.Nodes); k++ {
		got := slices.DeleteFunc(slices.Clone(full[k].Boundary), func(s string) bool { return s == zoo.Exit1Name || s == zoo.Exit2Name })
		if !slices.Equal(pc[k].Boundary, got) {
			t.Errorf("K %d: prefix boundary %v, Cuts' %v", k, pc[k].Boundary, full[k].Boundary)
		}
	}
	for _, end := range []int{0, -1, len(g.Nodes) + 1} {
		if _, err := partition.PrefixCuts(g, end); !errors.Is(err, partition.ErrRange) {
			t.Errorf("end %d: err %v, want ErrRange", end, err)
		}
	}
}

func TestConfidence(t *testing.T) {
	mk := func(v ...float32) *tensor.Dense {
		return tensor.New(tensor.WithShape(1, len(v)), tensor.WithBacking(v))
	}
	for _, tc := range []struct {
		name  string
		in    *tensor.Dense
		probs bool
		class int
		conf  float64
	}{
		{"probabilities", mk(0.1, 0.7, 0.2), true, 1, 0.7},
		{"logits", mk(0, float32(math.Log(3)), 0), false, 1, 0.6},
		{"ties take the first", mk(0.5, 0.5), true, 0, 0.5},
	} {
		class, conf, err := partition.Confidence(tc.in, tc.probs)
		if err != nil || class != tc.class || math.Abs(float64(conf)-tc.conf) > 1e-6 {
			t.Errorf("%s: class %d conf %v err %v; want %d %v", tc.name, class, conf, err, tc.class, tc.conf)
		}
	}
	for name, in := range map[string]*tensor.Dense{"nil": nil, "NaN": mk(0.2, float32(math.NaN())), "empty": tensor.New(tensor.WithShape(0), tensor.WithBacking([]float32{}))} {
		if _, _, err := partition.Confidence(in, true); !errors.Is(err, partition.ErrExit) {
			t.Errorf("%s: err %v, want ErrExit", name, err)
		}
	}
}

// TestExitRunner checks, for every terminal exit and cut, that the staged
// run answers exactly what the whole model computes at the exit it says,
// never stopping early above a threshold of 1 and always stopping at the
// first edge-side exit at 0.
func TestExitRunner(t *testing.T) {
	g := lenetExits(t)
	exits, err := partition.Exits(g)
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.Compile(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	x := randTensor(rng, 1, 1, 28, 28)
	ref, err := net.NewExtractor().Run(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for term, e := range exits {
		for k := 0; k <= e.End; k++ {
			r, err := partition.NewExitRunner(g, exits, k, term, model.Options{})
			if err != nil {
				t.Fatalf("term %d k %d: %v", term, k, err)
			}
			edge := 0
			for i := 0; i < term; i++ {
				if exits[i].End <= k {
					edge++
				}
			}
			if r.EdgeExits() != edge {
				t.Fatalf("term %d k %d: %d edge exits, want %d", term, k, r.EdgeExits(), edge)
			}
			first := term // the first exit Run may stop at
			if edge > 0 {
				first = 0
			}
			for _, tc := range []struct {
				early     int
				threshold float64
				wantExit  int
			}{{edge, 1.5, term}, {edge, 0, first}, {0, 0, term}} {
				out, err := r.Run(ctx, tc.early, tc.threshold, x)
				if err != nil {
					t.Fatalf("term %d k %d: %v", term, k, err)
				}
				if out.Exit != tc.wantExit {
					t.Fatalf("term %d k %d early %d threshold %v: answered at exit %d, want %d", term, k, tc.early, tc.threshold, out.Exit, tc.wantExit)
				}
				if onEdge := k == e.End || out.Exit < term; out.OnEdge != onEdge || (out.Boundary == nil) != onEdge {
					t.Fatalf("term %d k %d: on edge %v with %d boundary tensors", term, k, out.OnEdge, len(out.Boundary))
				}
				want := ref[exits[out.Exit].Output].Data().([]float32)
				got := out.Output.Data().([]float32)
				for i := range want {
					if math.Abs(float64(got[i]-want[i])) > 1e-6 {
						t.Fatalf("term %d k %d exit %d: output %v, whole model %v", term, k, out.Exit, got, want)
					}
				}
			}
		}
	}
	if _, err := partition.NewExitRunner(g, exits, 10, 0, model.Options{}); !errors.Is(err, partition.ErrRange) {
		t.Errorf("cut past the terminal exit: err %v, want ErrRange", err)
	}
	if _, err := partition.NewExitRunner(g, exits, 0, 3, model.Options{}); !errors.Is(err, partition.ErrExit) {
		t.Errorf("terminal exit out of range: err %v, want ErrExit", err)
	}
	r, err := partition.NewExitRunner(g, exits, 5, 2, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx, 0, 1, x, x); err == nil {
		t.Error("two inputs for a one-input model: no error")
	}
}
