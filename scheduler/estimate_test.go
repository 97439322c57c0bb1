package scheduler

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/partition"
)

func TestEWMA(t *testing.T) {
	e := EWMA{Alpha: 0.5}
	for _, x := range []float64{10, 20, 20} {
		e.Add(x)
	}
	if e.Value() != 17.5 || e.Count() != 3 {
		t.Errorf("got %v after %d", e.Value(), e.Count())
	}
	for _, tc := range []struct {
		w, want float64
	}{
		{1, 15}, {0.5, 12.5}, {0.1, 10.5}, {0, 15}, {2, 15}, // w outside (0, 1] counts as 1
	} {
		e := EWMA{Alpha: 0.5}
		e.AddWeighted(10, 0.01) // the first sample sets the value whatever its weight
		e.AddWeighted(20, tc.w)
		if e.Value() != tc.want {
			t.Errorf("AddWeighted(20, %v) after 10: %v, want %v", tc.w, e.Value(), tc.want)
		}
	}
}

func TestLinkEstimator(t *testing.T) {
	prior := LinkEstimate{RTT: 50 * time.Millisecond, Up: 1e6, Down: 2e6}
	l := NewLinkEstimator(0.5, prior)
	if l.Estimate() != prior {
		t.Fatal("no samples: want the prior")
	}
	l.ObserveUp(1e6, 500*time.Millisecond) // 2 MB/s
	l.ObserveUp(1e6, 250*time.Millisecond) // 4 MB/s → 3
	l.ObserveUp(0, time.Second)            // ignored
	l.ObserveRTT(10 * time.Millisecond)
	e := l.Estimate()
	if e.Up != 3e6 || e.RTT != 10*time.Millisecond || e.Down != 2e6 {
		t.Errorf("got %+v", e)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Go(func() {
			for j := 0; j < 100; j++ {
				l.ObserveDown(1000, time.Millisecond)
				l.Estimate()
			}
		})
	}
	wg.Wait()
	if got := l.Estimate().Down; math.Abs(got-1e6) > 1 {
		t.Errorf("down %v, want 1e6", got)
	}
}

func TestBanList(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBanList(BanConfig{Max: time.Minute, Now: func() time.Time { return now }})
	steps := []struct {
		fail    bool
		advance time.Duration
		banned  bool
		wantDur time.Duration
	}{
		{fail: true, wantDur: 15 * time.Second, banned: true},
		{advance: 14 * time.Second, banned: true},
		{advance: 2 * time.Second, banned: false},
		{fail: true, wantDur: 30 * time.Second, banned: true},
		{advance: 31 * time.Second, banned: false},
		{fail: true, wantDur: time.Minute, banned: true}, // 60 s
		{fail: true, wantDur: time.Minute, banned: true}, // capped
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if s.fail {
			if d := b.Fail("c1"); d != s.wantDur {
				t.Errorf("step %d: ban %v, want %v", i, d, s.wantDur)
			}
		}
		if got := b.Banned("c1"); got != s.banned {
			t.Errorf("step %d: banned=%v, want %v", i, got, s.banned)
		}
	}
	cs := []CloudInput{{ID: "c1"}, {ID: "c2"}}
	b.Apply(cs)
	if !cs[0].Unavailable || cs[1].Unavailable {
		t.Errorf("Apply: %+v", cs)
	}
	b.Succeed("c1")
	if b.Banned("c1") || b.Len() != 0 {
		t.Error("Succeed did not clear the ban")
	}
	b.Fail("c2")
	now = now.Add(15*time.Second + time.Minute + time.Second)
	b.Prune()
	if b.Len() != 0 {
		t.Error("Prune kept an old record")
	}
}

func TestPredictor(t *testing.T) {
	// A device whose true latency is linear per operator type: the fit on
	// three models predicts a fourth exactly (to rounding); with 5 % noise
	// the model-level error stays small.
	coef := map[string][2]float64{"Conv": {2e-3, 0.5}, "Relu": {0, 0.05}, "MaxPool": {0, 0.1}, "Gemm": {1e-2, 0.2}, "Add": {0, 0.1}}
	device := func(m testModel, rng *rand.Rand, noise float64) *partition.Profile {
		p := *m.edge
		p.Nodes = append([]partition.NodeProfile(nil), p.Nodes...)
		fs := NodeFeatures(&p, m.dag)
		for i := range p.Nodes {
			c := coef[p.Nodes[i].Op]
			ns := 20000 + c[0]*float64(fs[i].MACs) + c[1]*float64(fs[i].InBytes+fs[i].OutBytes)
			ns *= 1 + noise*(2*rng.Float64()-1)
			p.Nodes[i].Latency = time.Duration(ns)
		}
		p.Device = "pi"
		return &p
	}
	for _, noise := range []float64{0, 0.05} {
		rng := rand.New(rand.NewPCG(1, 2))
		pr := &Predictor{Device: "pi"}
		for _, m := range []testModel{vggLike(), resnetLike(4, 1), resnetLike(6, 2)} {
			if err := pr.Add(device(m, rng, noise), m.dag); err != nil {
				t.Fatal(err)
			}
		}
		if err := pr.Fit(); err != nil {
			t.Fatal(err)
		}
		target := resnetLike(8, 3)
		truth := device(target, rng, 0)
		got, err := pr.Predict(target.edge, target.dag)
		if err != nil {
			t.Fatal(err)
		}
		tot, ptot := truth.TailLatency(0), got.TailLatency(0)
		rel := math.Abs(float64(ptot-tot)) / float64(tot)
		t.Logf("noise %.0f%%: true %v, predicted %v (%.2f%% off)", noise*100, tot, ptot, rel*100)
		if lim := 0.01 + noise; rel > lim {
			t.Errorf("noise %v: whole-model error %.3f > %.3f", noise, rel, lim)
		}
		if got.Device != "pi" {
			t.Errorf("device %q", got.Device)
		}
	}
	var empty Predictor
	if err := empty.Fit(); err == nil {
		t.Error("Fit without samples succeeded")
	}
	if _, err := empty.Predict(vggLike().edge, nil); err == nil {
		t.Error("Predict before Fit succeeded")
	}
}

func TestNewDAG(t *testing.T) {
	// x → conv → relu ─┬→ add → out
	//                  └→ pool ┘
	g := model.NewGraph("g")
	g.Inputs = []model.ValueInfo{{Name: "x", Shape: []int{-1, 3, 8, 8}}}
	g.Outputs = []model.ValueInfo{{Name: "out", Shape: []int{1, 4, 8, 8}}}
	g.Nodes = []*model.Node{
		{Name: "conv", Op: "Conv", Inputs: []string{"x", "w"}, Outputs: []string{"c"}},
		{Name: "relu", Op: "Relu", Inputs: []string{"c"}, Outputs: []string{"r"}},
		{Name: "pool", Op: "MaxPool", Inputs: []string{"r"}, Outputs: []string{"p"}},
		{Name: "add", Op: "Add", Inputs: []string{"r", "p"}, Outputs: []string{"out"}},
	}
	g.Initializers["w"] = nil
	for _, s := range []string{"c", "r", "p", "out"} {
		g.Shapes[s] = []int{1, 4, 8, 8}
	}
	g.Shapes["x"] = []int{-1, 3, 8, 8}
	p := &partition.Profile{}
	for i, n := range g.Nodes {
		p.Nodes = append(p.Nodes, partition.NodeProfile{Index: i, Name: n.Name, Op: n.Op})
	}
	d, err := NewDAG(g, p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Tensor{
		{Name: "x", Bytes: 768, Producer: -1, Consumers: []int{0}},
		{Name: "c", Bytes: 1024, Producer: 0, Consumers: []int{1}},
		{Name: "r", Bytes: 1024, Producer: 1, Consumers: []int{2, 3}},
		{Name: "p", Bytes: 1024, Producer: 2, Consumers: []int{3}},
		{Name: "out", Bytes: 1024, Producer: 3, Output: true},
	}
	if len(d.Tensors) != len(want) {
		t.Fatalf("tensors %+v", d.Tensors)
	}
	for i, w := range want {
		got := d.Tensors[i]
		if got.Name != w.Name || got.Bytes != w.Bytes || got.Producer != w.Producer || got.Output != w.Output || len(got.Consumers) != len(w.Consumers) {
			t.Errorf("tensor %d: %+v, want %+v", i, got, w)
		}
	}
	cuts := d.Cuts()
	if c := cuts[2]; c.Bytes != 1024 || len(c.Boundary) != 1 || c.Boundary[0] != "r" {
		t.Errorf("cut 2: %+v", c)
	}
	if c := cuts[3]; c.Bytes != 2048 {
		t.Errorf("cut 3: %+v", c)
	}
	p.Nodes[1].Name = "other"
	if _, err := NewDAG(g, p); err == nil {
		t.Error("mismatched order accepted")
	}
}
