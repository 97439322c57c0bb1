package scheduler

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestParseObjective(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Objective
		err  bool
	}{
		{"", ObjectiveLatency, false},
		{"latency", ObjectiveLatency, false},
		{" Energy ", ObjectiveEnergy, false},
		{"WEIGHTED", ObjectiveWeighted, false},
		{"throughput", ObjectiveThroughput, false},
		{"joules", 0, true},
	} {
		got, err := ParseObjective(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseObjective(%q) = %v, %v", tc.in, got, err)
		}
		if err == nil {
			if back, _ := ParseObjective(got.String()); back != got {
				t.Errorf("%v does not round-trip", got)
			}
		}
	}
}

func ltePower() PowerModel {
	r, _ := RadioFor("lte")
	return PowerModel{ComputeW: 2, Radio: r}
}

func TestEnergyBreakdown(t *testing.T) {
	ms := time.Millisecond
	lte := ltePower()
	short := lte
	short.Interval = 100 * ms
	b := Breakdown{Overhead: ms, EdgeCompute: 9 * ms, Encode: 2 * ms, Uplink: 50 * ms, RTT: 40 * ms, Queue: 5 * ms,
		CloudCompute: 4 * ms, Decode: ms, Downlink: 10 * ms}
	b.sum()
	up, down := 1e6, 4e6 // 8 and 32 Mbit/s
	for _, tc := range []struct {
		name      string
		m         PowerModel
		offloaded bool
		want      EnergyBreakdown
	}{
		{"edge-only", lte, false, EnergyBreakdown{Compute: 2 * 0.012}},
		{"lte full tail", lte, true, EnergyBreakdown{Compute: 0.024,
			Radio: (0.43839*8+1.28804)*0.050 + (0.05197*32+1.28804)*0.010,
			Tail:  1.060 * (0.050 + 11.576)}},
		{"lte tail cut by the next request", short, true, EnergyBreakdown{Compute: 0.024,
			Radio: (0.43839*8+1.28804)*0.050 + (0.05197*32+1.28804)*0.010,
			Tail:  1.060 * (0.050 + 0.100)}},
		{"wired", PowerModel{ComputeW: 2}, true, EnergyBreakdown{Compute: 0.024}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.m.Energy(b, up, down, tc.offloaded)
			tc.want.Total = tc.want.Compute + tc.want.Radio + tc.want.Tail
			for _, x := range [][2]float64{{got.Compute, tc.want.Compute}, {got.Radio, tc.want.Radio}, {got.Tail, tc.want.Tail}, {got.Total, tc.want.Total}} {
				if math.Abs(x[0]-x[1]) > 1e-9 {
					t.Fatalf("Energy = %+v, want %+v", got, tc.want)
				}
			}
		})
	}
}

func TestRadiosHaveSources(t *testing.T) {
	for _, name := range []string{"3g", "lte", "5g-lowband", "5g-midband", "5g-mmwave", "wifi"} {
		r, ok := RadioFor(name)
		if !ok || r.BetaMW <= 0 || r.TailMW <= 0 || r.Tail <= 0 || r.Source == "" {
			t.Errorf("%s: radio %+v", name, r)
		}
	}
	if r, ok := RadioFor("ethernet"); !ok || r != (Radio{}) {
		t.Errorf("ethernet radio %+v, want none", r)
	}
	for _, d := range DevicePowers() {
		if w, ok := DeviceComputeW(d.Device); !ok || w != d.ComputeW || d.Source == "" {
			t.Errorf("device %+v", d)
		}
	}
}

func TestObjectiveValidate(t *testing.T) {
	m := resnetLike(1, 1)
	for _, tc := range []struct {
		name  string
		edit  func(in *Inputs)
		field string
	}{
		{"energy without power", func(in *Inputs) { in.Objective = ObjectiveEnergy }, "Power"},
		{"weighted without power", func(in *Inputs) { in.Objective = ObjectiveWeighted }, "Power"},
		{"unknown objective", func(in *Inputs) { in.Objective = 9 }, "Objective"},
		{"negative weight", func(in *Inputs) { in.Power = ltePower(); in.EnergyWeight = -1 }, "EnergyWeight"},
		{"NaN compute power", func(in *Inputs) { in.Power.ComputeW = math.NaN() }, "Power.ComputeW"},
		{"negative tail", func(in *Inputs) { in.Power = ltePower(); in.Power.Radio.Tail = -1 }, "Power"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := m.inputs(10, 20*time.Millisecond)
			tc.edit(in)
			var ie *InputError
			if err := in.Validate(); !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("Validate = %v, want an error on %s", err, tc.field)
			}
		})
	}
}

// bruteScore is the lowest objective score over every edge set closed under
// predecessors, every codec and cloud, and edge-only.
func bruteScore(in *Inputs) float64 {
	d := in.DAG
	n := d.Nodes
	e := in.edgeOnlyPlan("")
	best := in.Score(e)
	onEdge := make([]bool, n)
	for mask := 0; mask < 1<<n-1; mask++ { // all-edge is edge-only
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
			cl := &in.Clouds[ci]
			for j := range in.codecs() {
				c := &in.codecs()[j]
				if _, ok := in.setAgreement(d, onEdge, c); !ok {
					continue
				}
				b, _, _ := in.costSet(d, onEdge, c, cl)
				best = min(best, in.score(b, in.energyOf(b, cl)))
			}
		}
	}
	return best
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// The min cut stays exact when its capacities are energy or the weighted
// sum, and the prefix scan agrees with a scan of Cost.
func TestDADSMatchesBruteForceObjectives(t *testing.T) {
	wifi, _ := RadioFor("wifi")
	objectives := []struct {
		name string
		obj  Objective
		p    PowerModel
		w    float64
	}{
		{"energy lte", ObjectiveEnergy, ltePower(), 0},
		{"energy lte 30 fps", ObjectiveEnergy, PowerModel{ComputeW: 2, Radio: ltePower().Radio, Interval: 33 * time.Millisecond}, 0},
		{"energy wifi weak device", ObjectiveEnergy, PowerModel{ComputeW: 0.3, Radio: wifi}, 0},
		{"weighted default", ObjectiveWeighted, PowerModel{ComputeW: 2, Radio: wifi, Interval: 50 * time.Millisecond}, 0},
		{"weighted heavy", ObjectiveWeighted, PowerModel{ComputeW: 5, Radio: ltePower().Radio, Interval: 10 * time.Millisecond}, 10},
		{"energy hungry processor", ObjectiveEnergy, PowerModel{ComputeW: 20, Radio: wifi, Interval: 5 * time.Millisecond}, 0},
		{"weighted hungry processor", ObjectiveWeighted, PowerModel{ComputeW: 15, Radio: ltePower().Radio, Interval: 5 * time.Millisecond}, 1},
	}
	offloaded, nonPrefix := 0, 0
	for _, o := range objectives {
		t.Run(o.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 12; seed++ {
				m := resnetLike(2, seed)
				for _, up := range []float64{0.5, 5, 40, 300, 3000} {
					packed := testCodecs[1]
					packed.Name, packed.Fidelity, packed.CutAgreement = "packed", Exact, nil
					in := m.inputs(up, 10*time.Millisecond, testCodecs[0], packed)
					in.Clouds = append(in.Clouds, CloudInput{ID: "c2", Profile: m.cloud, Queue: 30 * time.Millisecond,
						Link: LinkEstimate{RTT: 2 * time.Millisecond, Up: up * 2e6 / 8, Down: up * 1e6}})
					in.Objective, in.Power, in.EnergyWeight = o.obj, o.p, o.w
					p, err := (&DADS{}).Plan(in)
					if err != nil {
						t.Fatal(err)
					}
					if want := bruteScore(in); !near(in.Score(p), want) {
						t.Fatalf("seed %d, %v Mbit/s: dads %v scores %v, brute force %v", seed, up, p, in.Score(p), want)
					}
					e, err := in.Evaluate(p)
					if err != nil || e.Predicted != p.Predicted || e.Energy != p.Energy {
						t.Fatalf("Evaluate(%v) = %v, %v", p, e, err)
					}
					// The prefix scan is the best of Cost over all cuts.
					ns, _ := Neurosurgeon{}.Plan(in)
					if in.planCheaper(ns, p) {
						t.Fatalf("neurosurgeon %v beat dads %v", ns, p)
					}
					fx := math.Inf(1)
					for k := 0; k <= len(in.Edge.Nodes); k++ {
						for ci := range in.Clouds {
							for j := range in.codecs() {
								pk, err := Fixed{K: k}.Plan(&Inputs{Edge: in.Edge, Codecs: in.Codecs[j : j+1], Clouds: in.Clouds[ci : ci+1],
									Objective: in.Objective, Power: in.Power, EnergyWeight: in.EnergyWeight})
								if err == nil {
									fx = min(fx, in.Score(pk))
								}
							}
						}
					}
					if all, _ := (&DADS{}).Plan(&Inputs{Edge: in.Edge, Codecs: in.Codecs, Clouds: in.Clouds,
						Objective: in.Objective, Power: in.Power, EnergyWeight: in.EnergyWeight}); !near(in.Score(all), fx) {
						t.Fatalf("prefix scan %v scores %v, best fixed cut %v", all, in.Score(all), fx)
					}
					if !p.EdgeOnly() {
						offloaded++
					}
					if p.K < 0 {
						nonPrefix++
					}
				}
			}
		})
	}
	t.Logf("%d of %d plans offloaded, %d not prefix cuts", offloaded, len(objectives)*12*5, nonPrefix)
	if offloaded == 0 {
		t.Fatal("no plan offloaded: the check saw only edge-only")
	}
}

// Under the energy objective a device with a power-hungry processor and a
// cheap radio offloads what latency would keep, and the other way round.
func TestObjectiveChangesTheChoice(t *testing.T) {
	ms := time.Millisecond
	b := newBuilder(4000, 1)
	x := b.node("Conv", 30*ms, 0, 4000, 0)
	y := b.node("Conv", 30*ms, 0, 4000, x)
	m := b.finish("two", y, 1.25) // the cloud is barely faster
	wifi, _ := RadioFor("wifi")
	lte, _ := RadioFor("lte")
	for _, tc := range []struct {
		name     string
		obj      Objective
		p        PowerModel
		wantEdge bool
	}{
		{"latency offloads (RTT 1 ms, fast link)", ObjectiveLatency, PowerModel{}, false},
		{"energy, lte full tail: stay on the edge", ObjectiveEnergy, PowerModel{ComputeW: 2, Radio: lte}, true},
		{"energy, wifi, hungry processor: offload", ObjectiveEnergy, PowerModel{ComputeW: 10, Radio: wifi, Interval: 10 * ms}, false},
		{"weighted, lte full tail: the tail's 12 J outweigh 12 ms", ObjectiveWeighted, PowerModel{ComputeW: 2, Radio: lte}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := m.inputs(100, ms)
			in.Objective, in.Power = tc.obj, tc.p
			for _, pol := range []Policy{Neurosurgeon{}, &DADS{}, NewAuto(DefaultAutoConfig())} {
				p, err := pol.Plan(in)
				if err != nil {
					t.Fatal(err)
				}
				if p.EdgeOnly() != tc.wantEdge {
					t.Fatalf("%s chose %v (energy %+v)", pol.Name(), p, p.Energy)
				}
			}
		})
	}
}

// Auto's hysteresis compares plans by the objective: a plan that is faster
// but costs more energy never displaces the current one under energy.
func TestAutoHysteresisByObjective(t *testing.T) {
	ms := time.Millisecond
	b := newBuilder(4000, 1)
	x := b.node("Conv", 30*ms, 0, 4000, 0)
	y := b.node("Conv", 30*ms, 0, 4000, x)
	m := b.finish("two", y, 4)
	lte, _ := RadioFor("lte")
	in := m.inputs(100, ms)
	in.Objective, in.Power = ObjectiveEnergy, PowerModel{ComputeW: 2, Radio: lte}
	a := NewAuto(AutoConfig{Threshold: 0.1, Consecutive: 2, Urgent: 0.5})
	for i := 0; i < 5; i++ {
		p, err := a.Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		if !p.EdgeOnly() {
			t.Fatalf("decision %d: %v under energy", i, p)
		}
	}
	// The tail shrinks (30 fps): offloading becomes cheaper in joules too,
	// and Auto switches only after Consecutive wins by the objective.
	in.Power.Interval = 33 * ms
	in.Power.ComputeW = 20
	best, _ := a.Best(in)
	if best.EdgeOnly() {
		t.Fatalf("best %v should offload", best)
	}
	p1, _ := a.Plan(in)
	p2, _ := a.Plan(in)
	if !p1.EdgeOnly() || p2.EdgeOnly() {
		t.Fatalf("switch after %v then %v, want edge-only then the offload", p1, p2)
	}
}

// The residual block of TestDADSInsideResidualBlock under energy: the best
// edge set is still not a prefix, and the min cut finds it.
func TestDADSInsideResidualBlockEnergy(t *testing.T) {
	ms := time.Millisecond
	wifi, _ := RadioFor("wifi")
	b := newBuilder(1<<20, 1)
	x := b.node("Conv", ms, 0, 1<<20, 0)
	c1 := b.node("Conv", ms, 0, 256, x)
	c2 := b.node("Conv", 200*ms, 0, 256, c1)
	ds := b.node("Conv", ms, 0, 256, x)
	a := b.node("Add", 0, 0, 256, c2, ds)
	out := b.node("Gemm", ms, 0, 40, a)
	m := b.finish("block", out, 20)
	for _, obj := range []Objective{ObjectiveEnergy, ObjectiveWeighted} {
		in := m.inputs(8, 10*ms)
		in.Objective, in.Power = obj, PowerModel{ComputeW: 5, Radio: wifi, Interval: 20 * ms}
		p, err := (&DADS{}).Plan(in)
		if err != nil {
			t.Fatal(err)
		}
		if want := bruteScore(in); !near(in.Score(p), want) || p.K >= 0 {
			t.Fatalf("%v: dads %v scores %v, brute force %v", obj, p, in.Score(p), want)
		}
	}
}

// With a per-request overhead, a min cut that keeps every node on the edge
// is the edge-only plan (overhead included), not an offload of nothing
// (before: "cut 13 → c1, 0 B", 5 ms under the truth, which Auto then took).
func TestDADSEdgeOnlyWithOverhead(t *testing.T) {
	m := resnetLike(2, 1)
	for _, obj := range []Objective{ObjectiveLatency, ObjectiveEnergy} {
		in := m.inputs(0.5, 10*time.Millisecond, testCodecs[0])
		in.Overhead = 5 * time.Millisecond
		in.Objective, in.Power = obj, ltePower()
		for _, pol := range []Policy{&DADS{}, NewAuto(DefaultAutoConfig())} {
			p, err := pol.Plan(in)
			if err != nil {
				t.Fatal(err)
			}
			if !p.EdgeOnly() || p.Predicted.Overhead != in.Overhead {
				t.Fatalf("%v, %s: %v, want edge-only with the overhead", obj, pol.Name(), p)
			}
		}
	}
}

// Under load the throughput objective cuts where the slowest stage is
// shortest, not where the sum is: here the latency optimum (cut 2: 60 ms
// on the edge + 10 ms of uplink) is limited to one request per 60 ms, the
// throughput optimum (cut 1: 30 ms on the edge, 50 ms of uplink) to one per
// 50 ms — when enough requests are in flight to fill the pipeline.
func TestThroughputObjective(t *testing.T) {
	ms := time.Millisecond
	b := newBuilder(100_000, 1)
	x := b.node("Conv", 30*ms, 0, 50_000, 0)
	y := b.node("Conv", 30*ms, 0, 10_000, x)
	z := b.node("Conv", 30*ms, 0, 40, y)
	m := b.finish("three", z, 30)
	raw := CodecModel{Name: "raw", Ratio: 1, Fidelity: Exact}
	for _, tc := range []struct {
		obj      Objective
		inFlight int
		wantK    int
	}{
		{ObjectiveLatency, 4, 2},
		{ObjectiveThroughput, 4, 1},
		// One request at a time: its latency is its time per request.
		{ObjectiveThroughput, 1, 2},
		{ObjectiveThroughput, 0, 2},
	} {
		for _, pol := range []Policy{Neurosurgeon{}, &DADS{}, NewAuto(DefaultAutoConfig())} {
			in := m.inputs(8, ms, raw) // 1 MB/s up
			in.Objective, in.InFlight = tc.obj, tc.inFlight
			p, err := pol.Plan(in)
			if err != nil {
				t.Fatal(err)
			}
			if p.K != tc.wantK {
				t.Errorf("%v, %d in flight, %s: cut %d (%v, bottleneck %v), want %d", tc.obj, tc.inFlight, pol.Name(), p.K, p.Predicted.Total, p.Predicted.Bottleneck(), tc.wantK)
			}
		}
	}
	if got := (Breakdown{Overhead: ms, EdgeCompute: 3 * ms, Encode: ms, Uplink: 4 * ms, CloudCompute: 2 * ms, Decode: 3 * ms}).Bottleneck(); got != 5*ms {
		t.Errorf("Bottleneck = %v, want the edge's 5 ms", got)
	}
}
