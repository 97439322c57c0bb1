package partition_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/partition"
	"gorgonia.org/tensor"
)

func randTensor(rng *rand.Rand, shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]float32, n)
	for i := range data {
		data[i] = rng.Float32()*2 - 1
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

func node(name, op string, in, out []string, attrs map[string]model.Attribute) *model.Node {
	return &model.Node{Name: name, Op: op, Inputs: in, Outputs: out, Attrs: attrs}
}

func ints(v ...int64) model.Attribute { return model.Attribute{Kind: model.AttrInts, Ints: v} }

// residualGraph is a small ResNet-style block model:
// x → conv1 → relu1 → conv2 → relu2 → conv3 → add(relu1) → relu3 → gap → flatten → gemm → y
func residualGraph(t testing.TB) *model.Graph {
	rng := rand.New(rand.NewPCG(1, 2))
	g := model.NewGraph("residual")
	g.Inputs = []model.ValueInfo{{Name: "x", Shape: []int{1, 3, 16, 16}}}
	g.Outputs = []model.ValueInfo{{Name: "y", Shape: []int{1, 10}}}
	g.Initializers["w1"] = randTensor(rng, 8, 3, 3, 3)
	g.Initializers["b1"] = randTensor(rng, 8)
	g.Initializers["w2"] = randTensor(rng, 8, 8, 3, 3)
	g.Initializers["w3"] = randTensor(rng, 8, 8, 1, 1)
	g.Initializers["fw"] = randTensor(rng, 10, 8)
	g.Initializers["fb"] = randTensor(rng, 10)
	pad1 := map[string]model.Attribute{"kernel_shape": ints(3, 3), "pads": ints(1, 1, 1, 1)}
	g.Nodes = []*model.Node{
		node("conv1", "Conv", []string{"x", "w1", "b1"}, []string{"c1"}, pad1),
		node("relu1", "Relu", []string{"c1"}, []string{"r1"}, nil),
		node("conv2", "Conv", []string{"r1", "w2"}, []string{"c2"}, pad1),
		node("relu2", "Relu", []string{"c2"}, []string{"r2"}, nil),
		node("conv3", "Conv", []string{"r2", "w3"}, []string{"c3"}, map[string]model.Attribute{"kernel_shape": ints(1, 1)}),
		node("add", "Add", []string{"c3", "r1"}, []string{"s"}, nil),
		node("relu3", "Relu", []string{"s"}, []string{"r3"}, nil),
		node("gap", "GlobalAveragePool", []string{"r3"}, []string{"p"}, nil),
		node("flatten", "Flatten", []string{"p"}, []string{"f"}, nil),
		node("fc", "Gemm", []string{"f", "fw", "fb"}, []string{"y"}, map[string]model.Attribute{"transB": {Kind: model.AttrInt, Int: 1}}),
	}
	sg, err := model.Simplify(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func TestCutsResidual(t *testing.T) {
	g := residualGraph(t)
	cuts, err := partition.Cuts(g)
	if err != nil {
		t.Fatal(err)
	}
	if len(cuts) != len(g.Nodes)+1 {
		t.Fatalf("got %d cuts for %d nodes", len(cuts), len(g.Nodes))
	}
	// Inside the residual block (after relu1 and before add) two tensors cross.
	want := map[int][]string{
		0:  {"x"},
		2:  {"r1"},
		3:  {"r1", "c2"},
		4:  {"r1", "r2"},
		5:  {"r1", "c3"},
		6:  {"s"},
		10: {"y"},
	}
	for k, b := range want {
		if !slices.Equal(cuts[k].Boundary, b) {
			t.Errorf("K=%d: boundary %v, want %v", k, cuts[k].Boundary, b)
		}
	}
	if cuts[3].Bytes != 2*4*8*16*16 {
		t.Errorf("K=3 bytes = %d, want %d", cuts[3].Bytes, 2*4*8*16*16)
	}
	single := partition.SingleTensorCuts(cuts)
	for _, k := range single {
		if k >= 3 && k <= 5 {
			t.Errorf("K=%d inside the residual block listed as a single-tensor cut", k)
		}
	}
}

func TestSplitBitIdentical(t *testing.T) {
	g := residualGraph(t)
	rng := rand.New(rand.NewPCG(3, 4))
	x := randTensor(rng, 1, 3, 16, 16)
	ctx := context.Background()
	net, err := model.Compile(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := net.NewExtractor().Run(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ref[0].Data().([]float32))
	for k := 0; k <= len(g.Nodes); k++ {
		r, err := partition.NewRunner(g, k, model.Options{})
		if err != nil {
			t.Fatalf("K=%d: %v", k, err)
		}
		for run := range 2 { // a second run must not be disturbed by the first
			outs, boundary, err := r.Run(ctx, x)
			if err != nil {
				t.Fatalf("K=%d run %d: %v", k, run, err)
			}
			if len(boundary) != len(r.Tail().Graph.Inputs) {
				t.Fatalf("K=%d: %d boundary tensors for %d tail inputs", k, len(boundary), len(r.Tail().Graph.Inputs))
			}
			got := outs[0].Data().([]float32)
			if !slices.Equal(got, want) {
				t.Fatalf("K=%d run %d: split output %v differs from unsplit %v", k, run, got, want)
			}
		}
	}
}

func TestSegmentErrors(t *testing.T) {
	g := residualGraph(t)
	for _, tc := range []struct{ from, to int }{{-1, 2}, {3, 2}, {0, len(g.Nodes) + 1}} {
		if _, err := partition.Segment(g, tc.from, tc.to); !errors.Is(err, partition.ErrRange) {
			t.Errorf("Segment(%d,%d): err %v, want ErrRange", tc.from, tc.to, err)
		}
	}
	if _, err := partition.NewRunner(g, 99, model.Options{}); !errors.Is(err, partition.ErrRange) {
		t.Errorf("NewRunner(99): err %v, want ErrRange", err)
	}
}

func TestStaticProfile(t *testing.T) {
	g := residualGraph(t)
	p, err := partition.Static(g)
	if err != nil {
		t.Fatal(err)
	}
	if p.InputBytes != 4*3*16*16 || p.OutputBytes != 4*10 {
		t.Errorf("input/output bytes %d/%d", p.InputBytes, p.OutputBytes)
	}
	// conv1: 8 out channels × 16×16 × (3×3×3) MACs.
	if got, want := p.Nodes[0].MACs, int64(8*16*16*27); got != want {
		t.Errorf("conv1 MACs = %d, want %d", got, want)
	}
	if got, want := p.Nodes[0].Params, int64(8*27+8); got != want {
		t.Errorf("conv1 params = %d, want %d", got, want)
	}
}

func TestMeasure(t *testing.T) {
	g := residualGraph(t)
	x := randTensor(rand.New(rand.NewPCG(5, 6)), 1, 3, 16, 16)
	p, err := partition.Measure(context.Background(), g, []*tensor.Dense{x}, partition.ProfileConfig{Runs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Nodes) != len(g.Nodes) {
		t.Fatalf("%d node profiles for %d nodes", len(p.Nodes), len(g.Nodes))
	}
	if p.Nodes[0].Latency <= 0 {
		t.Errorf("conv1 latency %v, want > 0", p.Nodes[0].Latency)
	}
	if p.HeadLatency(len(p.Nodes)) != p.TailLatency(0) {
		t.Errorf("head(N) %v != tail(0) %v", p.HeadLatency(len(p.Nodes)), p.TailLatency(0))
	}
}

func TestAnalyticProfile(t *testing.T) {
	g := residualGraph(t)
	p, err := partition.Analytic(g)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := partition.Static(g)
	if p.Device != partition.ReferenceDeviceName || len(p.Nodes) != len(s.Nodes) {
		t.Fatalf("device %q, %d nodes", p.Device, len(p.Nodes))
	}
	// conv1 reads the 3×16×16 input, writes 8×16×16, reads 8·27+8 weights.
	n := p.Nodes[0]
	bytes := float64(4*3*16*16 + n.OutBytes + 4*n.Params)
	want := partition.ReferencePerNode + time.Duration((float64(n.MACs)/partition.ReferenceMACsPerSec+bytes/partition.ReferenceBytesPerSec)*1e9)
	if n.Latency != want {
		t.Errorf("conv1 latency %v, want %v", n.Latency, want)
	}
	for i, n := range p.Nodes {
		if n.Latency < partition.ReferencePerNode {
			t.Errorf("node %d latency %v below the per-node cost", i, n.Latency)
		}
		m := s.Nodes[i]
		m.Latency = n.Latency
		if m != n {
			t.Errorf("node %d: analytic %+v, static %+v", i, n, m)
		}
	}
}
