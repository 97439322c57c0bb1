package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/partition"
)

// tiny is a 3-node chain whose costs are easy to add up by hand.
func tiny() (*Inputs, *partition.Profile) {
	b := newBuilder(1000, 1)
	t := b.node("Conv", 10*time.Millisecond, 0, 4000, 0)
	t = b.node("Relu", 1*time.Millisecond, 0, 4000, t)
	t = b.node("Gemm", 5*time.Millisecond, 0, 40, t)
	m := b.finish("tiny", t, 10)
	in := &Inputs{Edge: m.edge, Codecs: []CodecModel{{Name: "half", Ratio: 2, EncodeBps: 1e6, DecodeBps: 2e6, Fidelity: Bounded, CutAgreement: certifiedEverywhere}},
		Clouds: []CloudInput{{ID: "c", Profile: m.cloud, Queue: 3 * time.Millisecond,
			Link: LinkEstimate{RTT: 20 * time.Millisecond, Up: 1e5, Down: 1e4}}}}
	return in, m.edge
}

func TestCostByHand(t *testing.T) {
	in, _ := tiny()
	ms := time.Millisecond
	tests := []struct {
		k    int
		want Breakdown
	}{
		// cut 1: head = conv 10 ms; 4000 B raw → 2000 B wire; encode 4000/1e6 = 4 ms,
		// up 2000/1e5 = 20 ms, rtt 20, queue 3, tail (1+5)/10 = 0.6 ms, decode 2 ms,
		// result 40/1e4 = 4 ms.
		{1, Breakdown{EdgeCompute: 10 * ms, Encode: 4 * ms, Uplink: 20 * ms, RTT: 20 * ms, Queue: 3 * ms,
			CloudCompute: 600 * time.Microsecond, Decode: 2 * ms, Downlink: 4 * ms, Total: 63600 * time.Microsecond}},
		// cut 0: input 1000 B → 500 wire: encode 1, up 5, decode 0.5, tail 1.6.
		{0, Breakdown{Encode: ms, Uplink: 5 * ms, RTT: 20 * ms, Queue: 3 * ms, CloudCompute: 1600 * time.Microsecond,
			Decode: 500 * time.Microsecond, Downlink: 4 * ms, Total: 35100 * time.Microsecond}},
		{3, Breakdown{EdgeCompute: 16 * ms, Total: 16 * ms}},
	}
	for _, tc := range tests {
		got, err := in.Cost(tc.k, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("cut %d: got %+v, want %+v", tc.k, got, tc.want)
		}
	}
	if _, err := in.Cost(4, 0, 0); err == nil {
		t.Error("cut 4 of 3 nodes accepted")
	}
}

func TestPolicies(t *testing.T) {
	m := vggLike()
	n := len(m.edge.Nodes)
	tests := []struct {
		policy string
		up     float64 // Mbit/s
		check  func(t *testing.T, p Plan)
	}{
		{"edge-only", 10, func(t *testing.T, p Plan) {
			if !p.EdgeOnly() || p.K != n {
				t.Errorf("got %v", p)
			}
		}},
		{"cloud-only", 10, func(t *testing.T, p Plan) {
			if p.K != 0 || p.Cloud != "c1" {
				t.Errorf("got %v", p)
			}
		}},
		{"fixed:5", 10, func(t *testing.T, p Plan) {
			if p.K != 5 {
				t.Errorf("got %v", p)
			}
		}},
		{"fixed:999", 10, func(t *testing.T, p Plan) {
			if !p.EdgeOnly() {
				t.Errorf("got %v", p)
			}
		}},
		// Slow link: offloading the big activations never pays; the
		// 16 KiB fc input does.
		{"neurosurgeon", 1, func(t *testing.T, p Plan) {
			if p.K < n-2 {
				t.Errorf("1 Mbit/s: got %v, want a late cut", p)
			}
		}},
		// Very fast link: cloud-only (10× faster cloud).
		{"neurosurgeon", 100000, func(t *testing.T, p Plan) {
			if p.K != 0 {
				t.Errorf("100 Gbit/s: got %v, want cloud-only", p)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			pol, err := ParsePolicy(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			p, err := pol.Plan(m.inputs(tc.up, 30*time.Millisecond, testCodecs...))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}
}

// bruteForce is the best split over every edge set closed under
// predecessors, every codec and cloud.
func bruteForce(in *Inputs) time.Duration {
	d := in.DAG
	n := d.Nodes
	best := in.edgeOnlyPlan("").Predicted.Total
	onEdge := make([]bool, n)
	for mask := 0; mask < 1<<n; mask++ {
		for v := range onEdge {
			onEdge[v] = mask&(1<<v) != 0
		}
		closed := true
		for _, t := range d.Tensors {
			for _, c := range t.Consumers {
				if t.Producer >= 0 && onEdge[c] && !onEdge[t.Producer] {
					closed = false
				}
			}
		}
		if !closed {
			continue
		}
		for ci := range in.Clouds {
			for j := range in.codecs() {
				c := &in.codecs()[j]
				if _, ok := in.setAgreement(d, onEdge, c); !ok {
					continue
				}
				b, _, _ := in.costSet(d, onEdge, c, &in.Clouds[ci])
				best = min(best, b.Total)
			}
		}
	}
	return best
}

func TestDADSMatchesBruteForce(t *testing.T) {
	nonPrefix := 0
	for seed := uint64(1); seed <= 25; seed++ {
		m := resnetLike(2, seed)
		for _, up := range []float64{0.5, 5, 40, 300, 3000} {
			// The min cut is exact for codecs the budget allows everywhere
			// (exact ones: raw and a compressing one); TestBudgetDADS
			// covers the others.
			packed := testCodecs[1]
			packed.Name, packed.Fidelity, packed.CutAgreement = "packed", Exact, nil
			in := m.inputs(up, 10*time.Millisecond, testCodecs[0], packed)
			in.Clouds = append(in.Clouds, CloudInput{ID: "c2", Profile: m.cloud, Queue: 30 * time.Millisecond,
				Link: LinkEstimate{RTT: 2 * time.Millisecond, Up: up * 2e6 / 8, Down: up * 1e6}})
			p, err := (&DADS{}).Plan(in)
			if err != nil {
				t.Fatal(err)
			}
			want := bruteForce(in)
			if p.Predicted.Total != want {
				t.Fatalf("seed %d, %v Mbit/s: dads %v (%v), brute force %v", seed, up, p.Predicted.Total, p, want)
			}
			// The plan's own numbers must be what Evaluate says.
			e, err := in.Evaluate(p)
			if err != nil || e.Predicted != p.Predicted {
				t.Fatalf("Evaluate(%v) = %v, %v", p, e, err)
			}
			if p.K < 0 {
				nonPrefix++
			}
			ns, _ := Neurosurgeon{}.Plan(in)
			if ns.Predicted.Total < p.Predicted.Total {
				t.Fatalf("neurosurgeon %v beat dads %v", ns, p)
			}
		}
	}
	t.Logf("%d of 125 optimal splits were not prefix cuts", nonPrefix)
}

// A residual block whose main path first shrinks the activation (c1) and
// then is heavy (c2), and whose skip path shrinks it too (ds, last in the
// canonical order): the best edge set {stem, c1, ds} sends two tiny tensors
// and leaves c2 to the cloud, and it is not a prefix of the order, so only
// dads finds it.
func TestDADSInsideResidualBlock(t *testing.T) {
	b := newBuilder(1<<20, 1)
	ms := time.Millisecond
	x := b.node("Conv", ms, 0, 1<<20, 0)     // 0: stem, big output
	c1 := b.node("Conv", ms, 0, 256, x)      // 1: main path shrinks
	c2 := b.node("Conv", 200*ms, 0, 256, c1) // 2: heavy
	ds := b.node("Conv", ms, 0, 256, x)      // 3: skip path shrinks
	a := b.node("Add", 0, 0, 256, c2, ds)    // 4
	out := b.node("Gemm", ms, 0, 40, a)      // 5
	m := b.finish("block", out, 20)
	in := m.inputs(8, 10*time.Millisecond) // 1 MB/s
	p, err := (&DADS{}).Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := bruteForce(in); p.Predicted.Total != want {
		t.Fatalf("dads %v, brute force %v", p, want)
	}
	ns, _ := Neurosurgeon{}.Plan(in)
	t.Logf("dads: %v; neurosurgeon: %v", p, ns)
	if p.K != -1 || len(p.Head) != 3 || p.Head[0] != 0 || p.Head[1] != 1 || p.Head[2] != 3 {
		t.Errorf("dads chose %v, want edge set [0 1 3]", p)
	}
	if p.Bytes != 512 {
		t.Errorf("dads sends %d bytes, want 512", p.Bytes)
	}
	if !(p.Predicted.Total < ns.Predicted.Total) {
		t.Errorf("dads %v not better than neurosurgeon %v", p.Predicted.Total, ns.Predicted.Total)
	}
}

func TestAutoHysteresis(t *testing.T) {
	m := vggLike()
	a := NewAuto(AutoConfig{Threshold: 0.1, Consecutive: 3, Urgent: -1})
	in := m.inputs(20, 20*time.Millisecond, testCodecs...)
	first, err := a.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	// Steady link with ±3 % noise: never switches.
	for i := 0; i < 50; i++ {
		in.Clouds[0].Link.Up = 20e6 / 8 * (1 + 0.03*float64(i%3-1))
		p, _ := a.Plan(in)
		if !samePlan(p, first) {
			t.Fatalf("decision %d: flapped from %v to %v", i, first, p)
		}
	}
	// The uplink collapses: the plan changes on the 3rd decision.
	in.Clouds[0].Link.Up = 0.2e6 / 8
	best, _ := a.Best(in)
	if samePlan(best, first) {
		t.Fatal("test setup: best plan did not change")
	}
	for i := 1; i <= 3; i++ {
		p, _ := a.Plan(in)
		if changed := !samePlan(p, first); changed != (i == 3) {
			t.Fatalf("decision %d after the drop: changed=%v (%v)", i, changed, p)
		}
	}
	// The cloud is banned: switch at once.
	in.Clouds[0].Link.Up = 1000e6 / 8
	for i := 0; i < 3; i++ {
		a.Plan(in)
	}
	cur, _ := a.Current()
	if cur.EdgeOnly() {
		t.Fatalf("fast link still edge-only: %v", cur)
	}
	in.Clouds[0].Unavailable = true
	p, err := a.Plan(in)
	if err != nil || !p.EdgeOnly() {
		t.Fatalf("cloud banned: got %v, %v, want edge-only at once", p, err)
	}
	// With Urgent, a collapse switches on the first decision.
	u := NewAuto(AutoConfig{Threshold: 0.1, Consecutive: 3, Urgent: 2})
	in = m.inputs(20, 20*time.Millisecond, testCodecs...)
	first, _ = u.Plan(in)
	in.Clouds[0].Link.Up = 0.2e6 / 8
	if p, _ := u.Plan(in); samePlan(p, first) {
		t.Fatalf("urgent: kept %v after the uplink collapsed", p)
	}
}

func TestAutoIsBest(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		m := resnetLike(2, seed)
		in := m.inputs(float64(seed*seed), 15*time.Millisecond, testCodecs...)
		p, err := NewAuto(AutoConfig{}).Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		if want := bruteForce(in); p.Predicted.Total != want {
			t.Fatalf("seed %d: auto %v, brute force %v", seed, p, want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in, name string
		bad      bool
	}{
		{"edge-only", "edge-only", false},
		{"Cloud-Only", "cloud-only", false},
		{"fixed:5", "fixed:5", false},
		{"fixed:0", "fixed:0", false},
		{"neurosurgeon", "neurosurgeon", false},
		{"dads", "dads", false},
		{"auto", "auto", false},
		{"oracle", "oracle", false},
		{"fixed:", "", true},
		{"fixed:-1", "", true},
		{"fixed:x", "", true},
		{"best", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		p, err := ParsePolicy(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrUnknownPolicy) {
				t.Errorf("%q: err %v, want ErrUnknownPolicy", tc.in, err)
			}
			continue
		}
		if err != nil || p.Name() != tc.name {
			t.Errorf("%q: got %v, %v", tc.in, p, err)
		}
	}
}

func TestValidate(t *testing.T) {
	m := vggLike()
	tests := []struct {
		field string
		mod   func(in *Inputs)
	}{
		{"Edge", func(in *Inputs) { in.Edge = nil }},
		{"Edge.Cuts", func(in *Inputs) { e := *in.Edge; e.Cuts = e.Cuts[:3]; in.Edge = &e }},
		{"Codecs[1].Ratio", func(in *Inputs) { in.Codecs = []CodecModel{RawCodec, {Name: "x"}} }},
		{"Clouds[0].Link.Up", func(in *Inputs) { in.Clouds[0].Link.Up = 0 }},
		{"Clouds[0].Link.Down", func(in *Inputs) { in.Clouds[0].Link.Down = -1 }},
		{"Clouds[0].Profile", func(in *Inputs) { c := *m.cloud; c.Nodes = c.Nodes[:2]; in.Clouds[0].Profile = &c }},
		{"DAG.Nodes", func(in *Inputs) { in.DAG = &DAG{Nodes: 2} }},
	}
	for _, tc := range tests {
		in := m.inputs(10, time.Millisecond)
		tc.mod(in)
		for _, pol := range []Policy{EdgeOnly{}, Neurosurgeon{}, &DADS{}, NewAuto(AutoConfig{})} {
			_, err := pol.Plan(in)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Errorf("%s with bad %s: err %v", pol.Name(), tc.field, err)
			}
		}
	}
	// No cloud: policies that must offload say so, the others stay on the edge.
	in := m.inputs(10, time.Millisecond)
	in.Clouds[0].Unavailable = true
	if _, err := (CloudOnly{}).Plan(in); !errors.Is(err, ErrNoCloud) {
		t.Errorf("cloud-only without cloud: %v", err)
	}
	for _, pol := range []Policy{Neurosurgeon{}, &DADS{}, NewAuto(AutoConfig{})} {
		if p, err := pol.Plan(in); err != nil || !p.EdgeOnly() {
			t.Errorf("%s without cloud: %v, %v", pol.Name(), p, err)
		}
	}
}

func TestExplain(t *testing.T) {
	m := vggLike()
	in := m.inputs(20, 20*time.Millisecond, testCodecs...)
	ex, err := Explain(NewAuto(AutoConfig{}), in)
	if err != nil {
		t.Fatal(err)
	}
	n := len(m.edge.Nodes)
	if want := n*len(testCodecs) + 1; len(ex.Rows) != want {
		t.Fatalf("%d rows, want %d", len(ex.Rows), want)
	}
	chosen := 0
	for _, r := range ex.Rows {
		if r.Chosen {
			chosen++
			if r.Predicted.Total != ex.Chosen.Predicted.Total {
				t.Errorf("chosen row %v, plan %v", r.Predicted.Total, ex.Chosen.Predicted.Total)
			}
		}
		if r.Allowed && r.Predicted.Total < ex.Chosen.Predicted.Total {
			t.Errorf("row cut %d %s beats the chosen plan", r.K, r.Codec)
		}
	}
	if chosen != 1 {
		t.Errorf("%d chosen rows", chosen)
	}
	var sb strings.Builder
	if err := ex.Format(&sb); err != nil || !strings.Contains(sb.String(), "chosen by auto") {
		t.Errorf("Format: %v\n%s", err, sb.String())
	}
}

func TestChainDAGAndCuts(t *testing.T) {
	m := vggLike()
	d := ChainDAG(m.edge)
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if !d.chain() {
		t.Error("ChainDAG is not a chain")
	}
	cuts := d.Cuts()
	for k, c := range cuts {
		if c.Bytes != m.edge.Cuts[k].Bytes {
			t.Errorf("cut %d: %d bytes, profile says %d", k, c.Bytes, m.edge.Cuts[k].Bytes)
		}
	}
	if resnetLike(2, 1).dag.chain() {
		t.Error("resnet-like DAG taken for a chain")
	}
}

// Clouds that differ only in their queue share one scan: the plan goes to
// the least loaded and its numbers are those Cost gives.
func TestSameCloudsDifferentQueues(t *testing.T) {
	m := vggLike()
	in := m.inputs(50, 20*time.Millisecond, testCodecs...)
	base := in.Clouds[0]
	in.Clouds = nil
	for i, q := range []time.Duration{30, 5, 60, 5} {
		c := base
		c.ID = string(rune('a' + i))
		c.Queue = q * time.Millisecond
		in.Clouds = append(in.Clouds, c)
	}
	for _, pol := range []Policy{Neurosurgeon{}, &DADS{}, NewAuto(AutoConfig{})} {
		p, err := pol.Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		if p.Cloud != "b" || p.Predicted.Queue != 5*time.Millisecond {
			t.Errorf("%s chose %v", pol.Name(), p)
		}
		codec := -1
		for j, c := range testCodecs {
			if c.Name == p.Codec {
				codec = j
			}
		}
		if b, _ := in.Cost(p.K, codec, 1); b != p.Predicted {
			t.Errorf("%s: plan says %+v, Cost says %+v", pol.Name(), p.Predicted, b)
		}
	}
}

// TestCutRatios: a ratio measured at a cut replaces the codec's global one
// there and nowhere else; bad entries are input errors.
func TestCutRatios(t *testing.T) {
	in, _ := tiny()
	base1, err := in.Cost(1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	base0, _ := in.Cost(0, 0, 0)
	in.Codecs[0].CutRatios = []float64{0, 4} // cut 1: 4000 B raw → 1000 B wire instead of 2000
	got1, err := in.Cost(1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got1.Uplink != base1.Uplink/2 {
		t.Errorf("cut 1 uplink %v with ratio 4, want half of %v", got1.Uplink, base1.Uplink)
	}
	if got0, _ := in.Cost(0, 0, 0); got0 != base0 {
		t.Errorf("cut 0 changed: %+v vs %+v", got0, base0)
	}
	// A node-set plan (DAG) sending the same tensor prices it alike.
	in.DAG = ChainDAG(in.Edge)
	set, err := in.Evaluate(Plan{K: -1, Head: []int{0}, Codec: "half", Cloud: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if set.Predicted.Uplink != got1.Uplink || set.WireBytes != 1000 {
		t.Errorf("node set {0}: uplink %v, %d wire bytes; cut 1: %v, 1000", set.Predicted.Uplink, set.WireBytes, got1.Uplink)
	}
	in.Codecs[0].CutRatios = []float64{0, -1}
	var ie *InputError
	if err := in.Validate(); !errors.As(err, &ie) || ie.Field != "Codecs[0].CutRatios[1]" {
		t.Errorf("negative cut ratio: %v", err)
	}
}

// TestOverhead: the edge's fixed per-request cost is added to every plan and
// changes no decision.
func TestOverhead(t *testing.T) {
	in, _ := tiny()
	var before []Plan
	for _, pol := range []Policy{EdgeOnly{}, CloudOnly{}, Neurosurgeon{}, &DADS{}} {
		p, err := pol.Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, p)
	}
	in.Overhead = 3 * time.Millisecond
	for i, pol := range []Policy{EdgeOnly{}, CloudOnly{}, Neurosurgeon{}, &DADS{}} {
		p, err := pol.Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		if p.K != before[i].K || p.Codec != before[i].Codec || p.Cloud != before[i].Cloud {
			t.Errorf("%s: overhead changed the plan %v → %v", pol.Name(), before[i], p)
		}
		if p.Predicted.Total != before[i].Predicted.Total+3*time.Millisecond || p.Predicted.Overhead != 3*time.Millisecond {
			t.Errorf("%s: total %v, want %v + 3ms", pol.Name(), p.Predicted.Total, before[i].Predicted.Total)
		}
	}
	in.Overhead = -1
	if err := in.Validate(); err == nil {
		t.Error("negative overhead validated")
	}
}
