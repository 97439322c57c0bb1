package zoo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"gorgonia.org/tensor"
)

func TestParamCounts(t *testing.T) {
	cases := []struct {
		name string
		want int64
		slow bool
	}{
		{"seed-cnn", 347146, false},
		{"lenet5", 61706, false},
		{"lenet-exits", 61706 + (8*6*9 + 8) + (8*7*7*10 + 10) + (400*10 + 10), false},
		// stem, three blocks (the last two with a projection), three exits
		{"resnet-exits", (72 + 16) + (2*(576+16) + 90) + (1152 + 2304 + 128 + 3*32 + 170) + (4608 + 9216 + 512 + 3*64 + 330), false},
		{"resnet18", 11689512, false},
		{"mobilenetv2", 3504872, false},
		{"vit-tiny", 3200 + 1024 + 4*(2*128+4*(64*64+64)+(64*128+128)+(128*64+64)) + 128 + 650, false},
		// embedding, positions, two blocks, final norm, head (the causal mask is no parameter)
		{"gpt-tiny", 97*64 + 64*64 + 2*(2*128+4*(64*64+64)+(64*256+256)+(256*64+64)) + 128 + (64*97 + 97), false},
		{"alexnet", 61100840, true},
		{"vgg16", 138357544, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.slow && testing.Short() {
				t.Skip("large model skipped in -short mode")
			}
			g, err := Build(c.name, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got := ParamCount(g); got != c.want {
				t.Errorf("%s: %d params, want %d", c.name, got, c.want)
			}
		})
	}
}

func TestBuildUnknown(t *testing.T) {
	_, err := Build("resnet1000", 1)
	if !errors.Is(err, ErrUnknownModel) {
		t.Fatalf("err = %v, want ErrUnknownModel", err)
	}
}

func TestDeterministic(t *testing.T) {
	a, b, c := SeedCNN(7), SeedCNN(7), SeedCNN(8)
	wa := a.Initializers["conv1.weight"].Data().([]float32)
	wb := b.Initializers["conv1.weight"].Data().([]float32)
	wc := c.Initializers["conv1.weight"].Data().([]float32)
	same := true
	for i := range wa {
		if wa[i] != wb[i] {
			t.Fatalf("same seed gave different weight %d: %v vs %v", i, wa[i], wb[i])
		}
		if wa[i] != wc[i] {
			same = false
		}
	}
	if same {
		t.Fatal("different seeds gave identical weights")
	}
}

func TestGraphsSort(t *testing.T) {
	for _, name := range Names() {
		if (name == "vgg16" || name == "alexnet") && testing.Short() {
			continue
		}
		g, err := Build(name, 3)
		if err != nil {
			t.Fatal(err)
		}
		before := make([]*model.Node, len(g.Nodes))
		copy(before, g.Nodes)
		if err := g.Sort(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := range before {
			if before[i] != g.Nodes[i] {
				t.Fatalf("%s: builder order is not canonical at node %d", name, i)
			}
		}
	}
}

func TestSimplifyAndRun(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			if (name == "vgg16" || name == "alexnet") && testing.Short() {
				t.Skip("large model skipped in -short mode")
			}
			g, err := Build(name, 5)
			if err != nil {
				t.Fatal(err)
			}
			s, err := model.Simplify(g, nil)
			if err != nil {
				t.Fatalf("Simplify: %v", err)
			}
			for _, o := range g.Outputs {
				if got := s.Shapes[o.Name]; fmt.Sprint(got) != fmt.Sprint(o.Shape) {
					t.Errorf("output %s: inferred shape %v, declared %v", o.Name, got, o.Shape)
				}
			}
			if name == "vgg16" || name == "alexnet" || name == "resnet18" || name == "mobilenetv2" {
				return // running them is the engine's and benchmarks' job
			}
			net, err := model.Compile(g, model.Options{})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			in := g.Inputs[0].Shape
			x := tensor.New(tensor.WithShape(in...), tensor.WithBacking(make([]float32, shapeSize(in))))
			for i, v := range x.Data().([]float32) {
				x.Data().([]float32)[i] = v + float32(i%29)/29
			}
			outs, err := net.NewExtractor().Run(context.Background(), x)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			for k, o := range outs {
				// Probabilities over the last axis (one row per position
				// for a language model).
				d := o.Data().([]float32)
				n := o.Shape()[o.Dims()-1]
				for r := 0; r < len(d); r += n {
					var sum float32
					for _, p := range d[r : r+n] {
						sum += p
					}
					if math.Abs(float64(sum-1)) > 1e-4 {
						t.Errorf("output %d row %d: probabilities sum to %v", k, r/n, sum)
					}
				}
			}
		})
	}
}

// TestSeedCNNTrained decodes the embedded model and checks it classifies
// MNIST test images as well as its sidecar says (on a subset in -short
// mode).
func TestSeedCNNTrained(t *testing.T) {
	g, sc, err := SeedCNNTrained()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Arch != "seed-cnn" || sc.Accuracy < 0.985 || len(sc.Labels) != 10 || !reflect.DeepEqual(sc.Preprocess, dataset.MNISTPreprocess()) {
		t.Fatalf("sidecar %+v", sc)
	}
	if ParamCount(g) != 347146 {
		t.Fatalf("embedded model has %d parameters", ParamCount(g))
	}
	limit := 0
	if testing.Short() {
		limit = 6000 // → 1000 test images
	}
	sp, err := dataset.Load(context.Background(), "mnist", dataset.Options{Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	net, err := model.Compile(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := net.NewExtractor()
	correct := 0
	x := tensor.New(tensor.WithShape(1, 1, 28, 28), tensor.WithBacking(make([]float32, 784)))
	for i := 0; i < sp.Test.Len(); i++ {
		copy(x.Data().([]float32), sp.Test.Image(i))
		out, err := ex.Run(context.Background(), x)
		if err != nil {
			t.Fatal(err)
		}
		p := out[0].Data().([]float32)
		best := 0
		for j := range p {
			if p[j] > p[best] {
				best = j
			}
		}
		if best == sp.Test.Labels[i] {
			correct++
		}
	}
	acc := float64(correct) / float64(sp.Test.Len())
	t.Logf("embedded seed-cnn in the engine: %.2f%% on %d test images (sidecar: %.2f%%)", 100*acc, sp.Test.Len(), 100*sc.Accuracy)
	if !testing.Short() && math.Abs(acc-sc.Accuracy) > 1e-9 {
		t.Fatalf("engine accuracy %v differs from the sidecar's %v", acc, sc.Accuracy)
	}
	if acc < 0.97 {
		t.Fatalf("accuracy %v", acc)
	}
}

func TestLoadSpecs(t *testing.T) {
	for _, tc := range []struct {
		spec, want string // want: graph name, or an error substring
		sidecar    bool
		wantErr    bool
	}{
		{spec: TrainedName, sidecar: true},
		{spec: "lenet5"},
		{spec: "lenet5@7"},
		{spec: "lenet5@x", want: "bad seed", wantErr: true},
		{spec: "no-such-model", want: "neither a readable .onnx file nor a zoo model", wantErr: true},
		{spec: "missing.onnx", want: "missing.onnx", wantErr: true},
	} {
		g, sc, err := Load(tc.spec)
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load(%q): %v, want an error naming %q", tc.spec, err, tc.want)
			}
			continue
		}
		if err != nil || g == nil || (sc != nil) != tc.sidecar {
			t.Errorf("Load(%q) = %v, sidecar %v, %v", tc.spec, g != nil, sc != nil, err)
		}
	}
	a, _, _ := Load("lenet5@7")
	b, _, _ := Load("lenet5")
	if reflect.DeepEqual(a.Initializers, b.Initializers) {
		t.Error("lenet5@7 has the weights of seed 1")
	}
}

// TestSkeletonMatchesSimplify: a skeleton has the nodes, tensors, shapes and
// costs of the simplified built model, so a profile of its structure is the
// real one.
func TestSkeletonMatchesSimplify(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			if testing.Short() && (name == "vgg16" || name == "alexnet") {
				t.Skip("large model skipped in -short mode")
			}
			sk, err := Skeleton(name)
			if err != nil {
				t.Fatal(err)
			}
			g, err := Build(name, 1)
			if err != nil {
				t.Fatal(err)
			}
			sg, err := model.Simplify(g, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(sk.Nodes) != len(sg.Nodes) {
				t.Fatalf("skeleton has %d nodes, simplified graph %d", len(sk.Nodes), len(sg.Nodes))
			}
			for i, n := range sg.Nodes {
				s := sk.Nodes[i]
				if s.Name != n.Name || s.Op != n.Op || !reflect.DeepEqual(s.Inputs, n.Inputs) ||
					!reflect.DeepEqual(s.Outputs, n.Outputs) || !reflect.DeepEqual(s.Attrs, n.Attrs) {
					t.Fatalf("node %d: skeleton %s %v→%v, simplified %s %v→%v", i, s, s.Inputs, s.Outputs, n, n.Inputs, n.Outputs)
				}
				for _, x := range append(slices.Clone(n.Inputs), n.Outputs...) {
					if x != "" && !slices.Equal(sk.Shapes[x], sg.Shapes[x]) {
						t.Errorf("node %s: tensor %s has shape %v in the skeleton, %v simplified", n, x, sk.Shapes[x], sg.Shapes[x])
					}
					if sk.IsInitializer(x) != sg.IsInitializer(x) {
						t.Errorf("node %s: tensor %s is an initializer in only one of them", n, x)
					}
				}
				sm, sp := model.NodeCost(sk, i)
				gm, gp := model.NodeCost(sg, i)
				if sm != gm || sp != gp {
					t.Errorf("node %s: skeleton %d MACs %d params, simplified %d, %d", n, sm, sp, gm, gp)
				}
			}
			if !reflect.DeepEqual(sk.Inputs, sg.Inputs) || !reflect.DeepEqual(sk.Outputs, sg.Outputs) {
				t.Errorf("inputs/outputs: skeleton %v %v, simplified %v %v", sk.Inputs, sk.Outputs, sg.Inputs, sg.Outputs)
			}
			if _, err := model.Compile(sk, model.Options{}); err == nil {
				t.Error("a skeleton compiled")
			}
		})
	}
	if _, err := Skeleton("resnet1000"); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("Skeleton of an unknown name: %v, want ErrUnknownModel", err)
	}
}

func shapeSize(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}
