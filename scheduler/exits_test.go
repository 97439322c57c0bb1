package scheduler_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
)

// exitFixture is a six-node model with exits after nodes 2, 4 and 6, 8 ms
// per node on the edge and 0.5 ms on the cloud, behind a 30 ms RTT link of
// 1 MB/s each way; and a calibration of 1 000 samples where exit 1 is right
// on 90 %, exit 2 on 95 %, the final exit on 98 %, each confident (0.99)
// when right, and exit 1 also confident (0.96) on half its mistakes.
func exitFixture(t testing.TB) (*scheduler.Inputs, *scheduler.ExitModel) {
	t.Helper()
	const n = 6
	bytesAt := []int64{1000, 20000, 5000, 3000, 500, 100, 0}
	edge := &partition.Profile{InputBytes: 1000, OutputBytes: 40}
	for i := 0; i < n; i++ {
		edge.Nodes = append(edge.Nodes, partition.NodeProfile{Index: i, Name: fmt.Sprint("n", i), Latency: 8 * time.Millisecond})
	}
	for k := 0; k <= n; k++ {
		edge.Cuts = append(edge.Cuts, partition.Cut{K: k, Bytes: bytesAt[k]})
	}
	cloud := *edge
	cloud.Nodes = append([]partition.NodeProfile(nil), edge.Nodes...)
	for i := range cloud.Nodes {
		cloud.Nodes[i].Latency = 500 * time.Microsecond
	}
	in := &scheduler.Inputs{Edge: edge, Clouds: []scheduler.CloudInput{{ID: "c", Profile: &cloud,
		Link: scheduler.LinkEstimate{RTT: 30 * time.Millisecond, Up: 1e6, Down: 1e6}}}}
	names, ends := []string{"e1", "e2", "final"}, []int{2, 4, 6}
	var samples []scheduler.ExitSample
	for j := 0; j < 1000; j++ {
		ok := []bool{j%10 != 0, j%20 != 0, j%50 != 0}
		conf := make([]float32, 3)
		for i := range conf {
			conf[i] = 0.4
			if ok[i] {
				conf[i] = 0.99
			}
		}
		if j%20 == 0 {
			conf[0] = 0.96
		}
		samples = append(samples, scheduler.ExitSample{Correct: ok, Confidence: conf})
	}
	table, err := scheduler.NewExitCalibration("fixture", names, ends, nil, samples)
	if err != nil {
		t.Fatal(err)
	}
	var exits []partition.Exit
	var cuts [][]partition.PrefixCut
	for i, e := range ends {
		exits = append(exits, partition.Exit{Name: names[i], Output: i, End: e, Probs: true, Bytes: 40})
		var pc []partition.PrefixCut
		for k := 0; k <= e; k++ {
			c := partition.PrefixCut{Cut: partition.Cut{K: k, Bytes: bytesAt[k]}, ResultBytes: 40}
			if k == e {
				c.Bytes, c.ResultBytes = 0, 0
			}
			pc = append(pc, c)
		}
		cuts = append(cuts, pc)
	}
	em, err := scheduler.NewExitModel(exits, cuts, table)
	if err != nil {
		t.Fatal(err)
	}
	return in, em
}

func TestEarlyExit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline time.Duration
		slack    float64
		noCloud  bool
		terminal int
		k        int
		early    int
		minTh    float64 // threshold bounds when early > 0
		maxTh    float64
		accuracy float64
		meets    bool
	}{
		// 16 ms on the edge reaches only exit 1.
		{name: "tight: exit 1 on the edge", deadline: 20 * time.Millisecond, terminal: 0, k: 2, accuracy: 0.90, meets: true},
		// 32 ms reaches exit 2; exit 1 answers 95 % first at no loss.
		{name: "exit 2, exit 1 early", deadline: 33 * time.Millisecond, terminal: 1, k: 4, early: 1, minTh: 0.5, maxTh: 0.95, accuracy: 0.95, meets: true},
		// Only cloud-only (34.04 ms) reaches the final exit in time.
		{name: "final exit in the cloud", deadline: 40 * time.Millisecond, terminal: 2, k: 0, accuracy: 0.98, meets: true},
		// With room for the edge-only run (48 ms) both edge exits help: 99 %
		// (0.95 would let exit 1's confident mistakes through).
		{name: "loose: everything on the edge", deadline: 60 * time.Millisecond, terminal: 2, k: 6, early: 2, minTh: 0.98, maxTh: 0.99, accuracy: 0.99, meets: true},
		{name: "no deadline: the most accurate", terminal: 2, k: 6, early: 2, minTh: 0.98, maxTh: 0.99, accuracy: 0.99, meets: true},
		// Giving up 5 points for speed: exit 2's 95 % with exit 1 early has
		// the lowest mean latency (16.8 ms) and the smaller worst case.
		{name: "slack 5 %", deadline: 60 * time.Millisecond, slack: 0.05, terminal: 1, k: 4, early: 1, minTh: 0.5, maxTh: 0.95, accuracy: 0.95, meets: true},
		// Negative slack: exactly the most accurate, then the fastest.
		{name: "no slack", deadline: 33 * time.Millisecond, slack: -1, terminal: 1, k: 4, early: 1, minTh: 0.5, maxTh: 0.95, accuracy: 0.95, meets: true},
		// Nothing fits 5 ms: the smallest worst case, flagged.
		{name: "impossible deadline", deadline: 5 * time.Millisecond, terminal: 0, k: 2, accuracy: 0.90, meets: false},
		{name: "no cloud, 40 ms: exit 2 on the edge", deadline: 40 * time.Millisecond, noCloud: true, terminal: 1, k: 4, early: 1, minTh: 0.5, maxTh: 0.95, accuracy: 0.95, meets: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, em := exitFixture(t)
			if tc.noCloud {
				in.Clouds[0].Unavailable = true
			}
			p, err := scheduler.EarlyExit{Model: em, Deadline: tc.deadline, Slack: tc.slack}.Plan(in)
			if err != nil {
				t.Fatal(err)
			}
			x := p.Exit
			if x == nil {
				t.Fatal("plan has no exit choice")
			}
			if x.Terminal != tc.terminal || p.K != tc.k || x.Early != tc.early || x.Meets != tc.meets {
				t.Fatalf("plan %s, exit %+v; want terminal %d, K %d, early %d, meets %v", p, *x, tc.terminal, tc.k, tc.early, tc.meets)
			}
			if x.Early > 0 && (x.Threshold < tc.minTh || x.Threshold > tc.maxTh) {
				t.Errorf("threshold %v, want in [%v, %v]", x.Threshold, tc.minTh, tc.maxTh)
			}
			if d := x.Accuracy - tc.accuracy; d > 1e-9 || d < -1e-9 {
				t.Errorf("accuracy %v, want %v", x.Accuracy, tc.accuracy)
			}
			if tc.meets && tc.deadline > 0 && p.Predicted.Total > tc.deadline {
				t.Errorf("worst case %v over the deadline %v", p.Predicted.Total, tc.deadline)
			}
			if x.Expected > p.Predicted.Total || len(x.Stops) != x.Early || len(x.Taken) != x.Terminal+1 {
				t.Errorf("expected %v > worst case %v, or %d stops for %d early exits, %d shares", x.Expected, p.Predicted.Total, len(x.Stops), x.Early, len(x.Taken))
			}
			if edgeOnly := p.K == em.Exits[x.Terminal].End; edgeOnly != p.EdgeOnly() {
				t.Errorf("K %d of exit end %d but cloud %q", p.K, em.Exits[x.Terminal].End, p.Cloud)
			}
		})
	}
}

// TestEarlyExitCost checks a worst case and a mean against the cost model
// by hand: exit 2 from the cloud at cut 2 is 16 ms edge + 5 ms up + 30 ms
// RTT + 1 ms cloud + 0.04 ms down.
func TestEarlyExitCost(t *testing.T) {
	in, em := exitFixture(t)
	// exit 2 on the edge and the final exit in the cloud are hopeless
	in.Edge.Nodes[2].Latency, in.Edge.Nodes[3].Latency = time.Second, time.Second
	in.Clouds[0].Profile.Nodes[4].Latency = time.Second
	p, err := scheduler.EarlyExit{Model: em, Deadline: 53 * time.Millisecond}.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if p.Exit.Terminal != 1 || p.K != 2 || p.Cloud != "c" {
		t.Fatalf("plan %s, exit %+v: want exit 2 through the cloud at cut 2", p, *p.Exit)
	}
	want := 16*time.Millisecond + 5*time.Millisecond + 30*time.Millisecond + time.Millisecond + 40*time.Microsecond
	if p.Predicted.Total != want || p.Bytes != 5000 {
		t.Fatalf("worst case %v with %d B, want %v with 5000 B", p.Predicted.Total, p.Bytes, want)
	}
	// exit 1 answers 95 % at 16 ms, the cloud the rest
	mean := time.Duration(0.95*float64(16*time.Millisecond) + 0.05*float64(want))
	if d := p.Exit.Expected - mean; d > time.Microsecond || d < -time.Microsecond {
		t.Errorf("expected %v, want %v", p.Exit.Expected, mean)
	}
}

// TestEarlyExitGuards: a margin for late answers moves the plan off the
// path it applies to.
func TestEarlyExitGuards(t *testing.T) {
	in, em := exitFixture(t)
	// 40 ms: only cloud-only (34.04 ms) reaches the final exit; a 10 ms
	// cloud guard leaves exit 2 on the edge (32 ms).
	p, err := scheduler.EarlyExit{Model: em, Deadline: 40 * time.Millisecond, CloudGuard: 10 * time.Millisecond}.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if p.Exit.Terminal != 1 || !p.EdgeOnly() || !p.Exit.Meets || !p.Exit.Guarded {
		t.Fatalf("cloud guard: plan %s, exit %+v; want exit 2 on the edge", p, *p.Exit)
	}
	// 33 ms: exit 2 on the edge (32 ms); a 2 ms edge guard leaves exit 1.
	p, err = scheduler.EarlyExit{Model: em, Deadline: 33 * time.Millisecond, EdgeGuard: 2 * time.Millisecond}.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if p.Exit.Terminal != 0 || p.K != 2 || !p.Exit.Meets {
		t.Fatalf("edge guard: plan %s, exit %+v; want exit 1 on the edge", p, *p.Exit)
	}
	// A guard no plan fits is a margin, not a veto: the plans that meet
	// the deadline as predicted (here the final exit from the cloud).
	p, err = scheduler.EarlyExit{Model: em, Deadline: 40 * time.Millisecond, EdgeGuard: time.Second, CloudGuard: time.Second}.Plan(in)
	if err != nil || p.Exit.Terminal != 2 || p.K != 0 || !p.Exit.Meets || p.Exit.Guarded {
		t.Fatalf("guards nothing fits: %v, plan %s, exit %+v", err, p, p.Exit)
	}
	// Negative guards are none.
	p, err = scheduler.EarlyExit{Model: em, Deadline: 40 * time.Millisecond, EdgeGuard: -time.Hour, CloudGuard: -time.Hour}.Plan(in)
	if err != nil || p.Exit.Terminal != 2 || p.K != 0 {
		t.Fatalf("negative guards: %v, plan %s", err, p)
	}
}

func TestEarlyExitErrors(t *testing.T) {
	in, em := exitFixture(t)
	if _, err := (scheduler.EarlyExit{}).Plan(in); !errors.Is(err, scheduler.ErrExitCalibration) {
		t.Errorf("no model: err %v, want ErrExitCalibration", err)
	}
	var ie *scheduler.InputError
	if _, err := (scheduler.EarlyExit{Model: em, Deadline: -time.Second}).Plan(in); !errors.As(err, &ie) {
		t.Errorf("negative deadline: err %v, want an InputError", err)
	}
	short := *in
	prof := *in.Edge
	prof.Nodes, prof.Cuts = prof.Nodes[:4], prof.Cuts[:5]
	short.Edge = &prof
	short.Clouds = nil
	if _, err := (scheduler.EarlyExit{Model: em}).Plan(&short); !errors.Is(err, scheduler.ErrExitCalibration) {
		t.Errorf("exits past the profile: err %v, want ErrExitCalibration", err)
	}
	exits := []partition.Exit{{Name: "e1", End: 2}, {Name: "other", End: 4}, {Name: "final", End: 6}}
	cuts := [][]partition.PrefixCut{em.Exits[0].Cuts, em.Exits[1].Cuts, em.Exits[2].Cuts}
	if _, err := scheduler.NewExitModel(exits, cuts, em.Table); !errors.Is(err, scheduler.ErrExitCalibration) {
		t.Errorf("a table of other exits: err %v, want ErrExitCalibration", err)
	}
	if _, err := scheduler.NewExitModel(exits[:2], cuts[:2], em.Table); !errors.Is(err, scheduler.ErrExitCalibration) {
		t.Errorf("fewer exits: err %v, want ErrExitCalibration", err)
	}
}

func TestNewExitCalibration(t *testing.T) {
	_, em := exitFixture(t)
	c := em.Table
	if c.Samples != 1000 || c.Exits[0].Correct != 900 || c.Exits[1].Correct != 950 || c.Exits[2].Correct != 980 {
		t.Fatalf("samples %d, exits %+v", c.Samples, c.Exits)
	}
	// per terminal t: one policy without early exits, then one per
	// threshold for each of the t possible early-exit counts
	th := len(scheduler.DefaultExitThresholds)
	if want := 1 + (1 + th) + (1 + 2*th); len(c.Policies) != want {
		t.Fatalf("%d policies, want %d", len(c.Policies), want)
	}
	for _, p := range c.Policies {
		if p.Early == 0 && p.Correct != c.Exits[p.Terminal].Correct {
			t.Errorf("terminal %d alone: %d right, the exit %d", p.Terminal, p.Correct, c.Exits[p.Terminal].Correct)
		}
		if p.Terminal == 2 && p.Early == 2 && p.Threshold == 0.9 && (p.Correct != 950 || p.Taken[0] != 950) {
			t.Errorf("threshold 0.9 on both exits: %d right, taken %v; want 950, exit 1 taking 950", p.Correct, p.Taken)
		}
	}
	for _, tc := range []struct {
		name       string
		names      []string
		ends       []int
		thresholds []float64
		samples    []scheduler.ExitSample
	}{
		{"no samples", []string{"a", "b"}, []int{1, 2}, nil, nil},
		{"names and ends", []string{"a"}, []int{1, 2}, nil, []scheduler.ExitSample{{Correct: []bool{true}, Confidence: []float32{1}}}},
		{"threshold over 1", []string{"a"}, []int{1}, []float64{1.5}, []scheduler.ExitSample{{Correct: []bool{true}, Confidence: []float32{1}}}},
		{"short sample", []string{"a", "b"}, []int{1, 2}, nil, []scheduler.ExitSample{{Correct: []bool{true}, Confidence: []float32{1}}}},
		{"ends descending", []string{"a", "b"}, []int{2, 1}, nil, []scheduler.ExitSample{{Correct: []bool{true, true}, Confidence: []float32{1, 1}}}},
	} {
		if _, err := scheduler.NewExitCalibration("x", tc.names, tc.ends, tc.thresholds, tc.samples); !errors.Is(err, scheduler.ErrExitCalibration) {
			t.Errorf("%s: err %v, want ErrExitCalibration", tc.name, err)
		}
	}
	// A table edited by hand is checked.
	bad := *c
	bad.Policies = append([]scheduler.ExitPolicyMeasure(nil), c.Policies...)
	bad.Policies[3].Taken = append([]int(nil), bad.Policies[3].Taken...)
	bad.Policies[3].Taken[0]++
	if err := bad.Validate(); !errors.Is(err, scheduler.ErrExitCalibration) {
		t.Errorf("answers that do not add up: err %v", err)
	}
	// It travels in the model's calibration and is checked there.
	cal := scheduler.NewCalibration("m", "v", 6, scheduler.CalibrationData{Source: "x", Samples: 1}, time.Unix(0, 0))
	cal.Exits = &bad
	if err := cal.Validate(); !errors.Is(err, scheduler.ErrCalibration) || !errors.Is(err, scheduler.ErrExitCalibration) {
		t.Errorf("calibration with a bad exit table: err %v", err)
	}
	cal.Exits = c
	b, err := cal.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := scheduler.ReadCalibration(bytes.NewReader(b))
	if err != nil || back.Exits == nil || len(back.Exits.Policies) != len(c.Policies) {
		t.Fatalf("round trip: %v", err)
	}
}
