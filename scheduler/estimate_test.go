package scheduler

import (
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
		{fail: true, wantDur: time.Minute, banned: true},                                 // 60 s
		{advance: 10 * time.Second, fail: true, wantDur: 50 * time.Second, banned: true}, // same outage: counted once
		{advance: 51 * time.Second, fail: true, wantDur: time.Minute, banned: true},      // capped
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
	// A restart (rejoin) after the last failure forgives; one before it
	// does not.
	b.Forgive("c1", now.Add(-time.Second))
	if !b.Banned("c1") {
		t.Error("Forgive with a join before the failure cleared the ban")
	}
	cs := []CloudInput{{ID: "c1"}, {ID: "c2"}}
	b.Apply(cs)
	if !cs[0].Unavailable || cs[1].Unavailable {
		t.Errorf("Apply: %+v", cs)
	}
	b.Forgive("c1", now.Add(time.Second))
	if b.Banned("c1") || b.Len() != 0 {
		t.Error("Forgive with a join after the failure kept the ban")
	}
	b.Fail("c1")
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

// TestBanListSuspect: a suspected node is out of plans for the suspicion's
// length but not banned; a failure meanwhile bans it as usual; a rejoin
// after the suspicion clears it, one before does not.
func TestBanListSuspect(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBanList(BanConfig{Now: func() time.Time { return now }})
	unavailable := func() bool {
		cs := []CloudInput{{ID: "c1"}, {ID: "c2"}}
		b.Apply(cs)
		if cs[1].Unavailable {
			t.Error("Apply marked c2, never suspected")
		}
		return cs[0].Unavailable
	}
	b.Suspect("c1", 2*time.Second)
	if !b.Suspected("c1") || b.Banned("c1") || !unavailable() {
		t.Errorf("just suspected: suspected %v, banned %v, unavailable %v; want true, false, true", b.Suspected("c1"), b.Banned("c1"), unavailable())
	}
	b.Forgive("c1", now.Add(-time.Second)) // joined before the suspicion
	if !b.Suspected("c1") {
		t.Error("a join before the suspicion cleared it")
	}
	now = now.Add(time.Second)
	b.Suspect("c1", 500*time.Millisecond) // a shorter one does not cut the first short
	now = now.Add(900 * time.Millisecond)
	if !b.Suspected("c1") {
		t.Error("a shorter second suspicion shortened the first")
	}
	now = now.Add(200 * time.Millisecond)
	if b.Suspected("c1") || unavailable() {
		t.Error("still suspected after the suspicion ended")
	}
	b.Prune()
	if b.Len() != 0 {
		t.Errorf("Prune kept an ended suspicion: %d entries", b.Len())
	}
	// A failure while suspected is a ban; a rejoin after both clears both.
	b.Suspect("c1", 2*time.Second)
	if d := b.Fail("c1"); d != 15*time.Second || !b.Banned("c1") {
		t.Errorf("a failure while suspected: ban %v (banned %v), want 15s", d, b.Banned("c1"))
	}
	b.Prune()
	if b.Len() != 1 {
		t.Error("Prune dropped a live suspicion")
	}
	b.Forgive("c1", now.Add(time.Millisecond))
	if b.Banned("c1") || b.Suspected("c1") || b.Len() != 0 {
		t.Errorf("a rejoin after the failure and the suspicion: banned %v, suspected %v, %d entries", b.Banned("c1"), b.Suspected("c1"), b.Len())
	}
	// A rejoin between a failure and a later suspicion forgives the failure only.
	b.Fail("c1")
	now = now.Add(time.Second)
	joined := now
	now = now.Add(time.Second)
	b.Suspect("c1", 2*time.Second)
	b.Forgive("c1", joined)
	if b.Banned("c1") || !b.Suspected("c1") {
		t.Errorf("a rejoin between a failure and a suspicion: banned %v, suspected %v; want false, true", b.Banned("c1"), b.Suspected("c1"))
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
