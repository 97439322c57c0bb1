package scheduler

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/edgesplit/edgesplit/partition"
)

// ErrExitCalibration is wrapped by every error about an exit calibration
// that is malformed or does not fit the model it is used with.
var ErrExitCalibration = errors.New("scheduler: exit calibration")

// DefaultExitThresholds is the confidence grid NewExitCalibration measures
// when given none: the largest softmax probability an edge-side exit must
// reach to answer.
var DefaultExitThresholds = []float64{0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999}

// DefaultExitSlack is EarlyExit's default Slack: an early-exit threshold may
// give up at most 0.1 percentage point of calibrated accuracy against the
// most accurate plan that meets the deadline, to answer sooner on average.
const DefaultExitSlack = 0.001

// ExitCalibration is what running a multi-exit model on labelled held-out
// data measured: each exit's accuracy on its own and, for every early-exit
// policy, how many requests each exit answers and how many of all answers
// are right. It travels inside the model's Calibration (Calibration.Exits),
// so it is stored, checked and gossiped with it.
//
// A policy is (Terminal, Early, Threshold): the model right-sized at exit
// Terminal (Edgent), where each of the first Early exits answers a request
// when its confidence (largest softmax probability) is ≥ Threshold (SPINN,
// BranchyNet), and Terminal answers the rest.
type ExitCalibration struct {
	// Source says what the labelled inputs were ("mnist:test[0:5000]").
	Source string `json:"source"`
	// Samples is the number of inputs.
	Samples int `json:"samples"`
	// Exits lists the exits in the model's exit order (partition.Exits:
	// by End, the final exit last).
	Exits []CalibratedExit `json:"exits"`
	// Policies holds one entry per policy measured.
	Policies []ExitPolicyMeasure `json:"policies"`
}

// CalibratedExit is one exit: its output, the prefix that computes it, and
// how many of the samples it alone classifies right.
type CalibratedExit struct {
	Name    string `json:"name"`
	End     int    `json:"end"`
	Correct int    `json:"correct"`
}

// ExitPolicyMeasure is one early-exit policy's measurement. Taken has one
// entry per exit 0..Terminal: the samples answered there (zero past Early
// except at Terminal); they sum to the table's Samples.
type ExitPolicyMeasure struct {
	Terminal  int     `json:"terminal"`
	Early     int     `json:"early"`
	Threshold float64 `json:"threshold"`
	Correct   int     `json:"correct"`
	Taken     []int   `json:"taken"`
}

// ExitSample is one labelled input run through every exit: whether each
// exit's argmax is the label, and its confidence.
type ExitSample struct {
	Correct    []bool
	Confidence []float32
}

// NewExitCalibration tabulates every policy over the samples for the exits
// (names and ends in exit order) and thresholds (nil:
// DefaultExitThresholds; each in (0, 1]).
func NewExitCalibration(source string, names []string, ends []int, thresholds []float64, samples []ExitSample) (*ExitCalibration, error) {
	if thresholds == nil {
		thresholds = DefaultExitThresholds
	}
	if len(names) == 0 || len(names) != len(ends) {
		return nil, fmt.Errorf("%w: %d exit names for %d ends", ErrExitCalibration, len(names), len(ends))
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("%w: no samples", ErrExitCalibration)
	}
	for _, th := range thresholds {
		if !(th > 0 && th <= 1) {
			return nil, fmt.Errorf("%w: threshold %v outside (0, 1]", ErrExitCalibration, th)
		}
	}
	m := len(names)
	c := &ExitCalibration{Source: source, Samples: len(samples), Exits: make([]CalibratedExit, m)}
	for i := range names {
		c.Exits[i] = CalibratedExit{Name: names[i], End: ends[i]}
	}
	for j, s := range samples {
		if len(s.Correct) != m || len(s.Confidence) != m {
			return nil, fmt.Errorf("%w: sample %d has %d answers and %d confidences for %d exits", ErrExitCalibration, j, len(s.Correct), len(s.Confidence), m)
		}
		for i, ok := range s.Correct {
			if ok {
				c.Exits[i].Correct++
			}
		}
	}
	for t := 0; t < m; t++ {
		for e := 0; e <= t; e++ {
			ths := thresholds
			if e == 0 {
				ths = []float64{1}
			}
			for _, th := range ths {
				p := ExitPolicyMeasure{Terminal: t, Early: e, Threshold: th, Taken: make([]int, t+1)}
				for _, s := range samples {
					at := t
					for i := 0; i < e; i++ {
						if float64(s.Confidence[i]) >= th {
							at = i
							break
						}
					}
					p.Taken[at]++
					if s.Correct[at] {
						p.Correct++
					}
				}
				c.Policies = append(c.Policies, p)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks the table's structure and counts.
func (c *ExitCalibration) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrExitCalibration, fmt.Sprintf(f, a...))
	}
	if c.Samples <= 0 || len(c.Exits) == 0 {
		return bad("%d samples, %d exits: both must be positive", c.Samples, len(c.Exits))
	}
	for i, e := range c.Exits {
		if e.Name == "" || e.End < 1 || (i > 0 && e.End < c.Exits[i-1].End) {
			return bad("exits[%d]: name %q, end %d (ends must be ≥ 1 and ascending)", i, e.Name, e.End)
		}
		if e.Correct < 0 || e.Correct > c.Samples {
			return bad("exits[%d]: %d of %d samples right", i, e.Correct, c.Samples)
		}
	}
	for i, p := range c.Policies {
		if p.Terminal < 0 || p.Terminal >= len(c.Exits) || p.Early < 0 || p.Early > p.Terminal {
			return bad("policies[%d]: terminal %d, early %d of %d exits", i, p.Terminal, p.Early, len(c.Exits))
		}
		if !(p.Threshold > 0 && p.Threshold <= 1) {
			return bad("policies[%d]: threshold %v outside (0, 1]", i, p.Threshold)
		}
		if len(p.Taken) != p.Terminal+1 {
			return bad("policies[%d]: %d taken counts for terminal exit %d", i, len(p.Taken), p.Terminal)
		}
		sum := 0
		for j, n := range p.Taken {
			if n < 0 || (j >= p.Early && j != p.Terminal && n != 0) {
				return bad("policies[%d]: %d answers at exit %d", i, n, j)
			}
			sum += n
		}
		if sum != c.Samples || p.Correct < 0 || p.Correct > c.Samples {
			return bad("policies[%d]: %d answers, %d right, of %d samples", i, sum, p.Correct, c.Samples)
		}
	}
	return nil
}

// Accuracy is the policy's calibrated accuracy (share of right answers).
func (p *ExitPolicyMeasure) Accuracy(samples int) float64 {
	if samples <= 0 {
		return 0
	}
	return float64(p.Correct) / float64(samples)
}

// ExitPoint is one exit as the planner sees it: its output, the prefix that
// computes it and the cuts of the model right-sized there
// (partition.PrefixCuts; Cuts[K] for K = 0..End).
type ExitPoint struct {
	Name string
	End  int
	Cuts []partition.PrefixCut
}

// ExitModel is what EarlyExit plans a multi-exit model from: its exits (in
// partition.Exits order, the final one last) and their calibration.
type ExitModel struct {
	Exits []ExitPoint
	Table *ExitCalibration
}

// NewExitModel pairs the exits of a model with their calibration; it fails
// (wrapping ErrExitCalibration) when the table lists other exits, and with
// a partition error when the cuts cannot be listed.
func NewExitModel(exits []partition.Exit, cuts [][]partition.PrefixCut, table *ExitCalibration) (*ExitModel, error) {
	if table == nil {
		return nil, fmt.Errorf("%w: none", ErrExitCalibration)
	}
	if err := table.Validate(); err != nil {
		return nil, err
	}
	if len(exits) != len(table.Exits) || len(cuts) != len(exits) {
		return nil, fmt.Errorf("%w: the table has %d exits, the model %d", ErrExitCalibration, len(table.Exits), len(exits))
	}
	em := &ExitModel{Table: table, Exits: make([]ExitPoint, len(exits))}
	for i, e := range exits {
		if table.Exits[i].Name != e.Name || table.Exits[i].End != e.End {
			return nil, fmt.Errorf("%w: exit %d is %s (end %d) in the table, %s (end %d) in the model",
				ErrExitCalibration, i, table.Exits[i].Name, table.Exits[i].End, e.Name, e.End)
		}
		if len(cuts[i]) != e.End+1 {
			return nil, fmt.Errorf("%w: exit %s has %d cuts, want %d", ErrExitCalibration, e.Name, len(cuts[i]), e.End+1)
		}
		em.Exits[i] = ExitPoint{Name: e.Name, End: e.End, Cuts: cuts[i]}
	}
	return em, nil
}

// ExitChoice is the early-exit part of a Plan (Plan.Exit): the terminal
// exit the model is right-sized at, the edge-side exits that may stop a
// request and their threshold, and what the calibration and the cost model
// expect of it. The plan's Predicted is the worst case: the request that
// no early exit answers.
type ExitChoice struct {
	// Terminal indexes the ExitModel's exits; Name is its output.
	Terminal int    `json:"terminal"`
	Name     string `json:"name"`
	// Early is how many exits before Terminal, all computed on the edge,
	// may answer; Threshold the confidence they need (meaningless when
	// Early is 0).
	Early     int     `json:"early"`
	Threshold float64 `json:"threshold"`
	// Accuracy is the policy's calibrated accuracy.
	Accuracy float64 `json:"accuracy"`
	// Expected is the predicted mean latency over the calibration's mix of
	// exits; Stops[i] the predicted latency of an answer at edge exit i.
	Expected time.Duration   `json:"expected"`
	Stops    []time.Duration `json:"stops,omitempty"`
	// Taken is the calibrated share of requests answered at each exit
	// 0..Terminal.
	Taken []float64 `json:"taken"`
	// Deadline is the deadline planned for (0: none); Meets whether the
	// worst case is predicted within it, and Guarded whether it is with
	// the path's guard added too (EarlyExit.EdgeGuard, CloudGuard). Plans
	// that are guarded come first; when none is, those that merely meet
	// the deadline; when none does, EarlyExit returns the one with the
	// smallest worst case, Meets false.
	Deadline time.Duration `json:"deadline"`
	Meets    bool          `json:"meets"`
	Guarded  bool          `json:"guarded"`
}

// EarlyExit is Edgent's joint choice of exit and cut (Li et al., "Edge AI:
// On-Demand Accelerating Deep Neural Network Inference via Edge Computing",
// IEEE TWC 2020), with SPINN's confidence thresholds on the edge-side exits
// (Laskaridis et al., MobiCom 2020): among every terminal exit, prefix cut
// of the model right-sized there, codec, cloud and threshold policy whose
// predicted worst-case latency is within Deadline, it picks the highest
// calibrated accuracy; among those within Slack of it, the lowest expected
// latency (a threshold that answers most requests on the edge sends nothing
// for them). EdgeGuard and CloudGuard keep a margin for prediction errors. Lossy codecs carry only cuts of the final exit, the only one
// their calibration measured. EarlyExit is stateless and safe for
// concurrent use.
type EarlyExit struct {
	Model *ExitModel
	// Deadline bounds the predicted worst-case latency; 0 means none (the
	// most accurate plan, then the fastest).
	Deadline time.Duration
	// Slack is the accuracy an early-exit threshold may give up for
	// expected latency: 0 means DefaultExitSlack, negative none.
	Slack float64
	// EdgeGuard and CloudGuard are added to the predicted worst case of
	// plans that answer on the edge and of plans that offload before it is
	// compared with Deadline: the caller's measure of how much later than
	// predicted such answers arrive (a node uses the 99th percentile of
	// recent errors). Zero: none; negative values count as zero.
	EdgeGuard, CloudGuard time.Duration
}

var _ Policy = EarlyExit{}

// Name implements Policy.
func (EarlyExit) Name() string { return "early-exit" }

// exitCand is one (terminal, cut) pair's cheapest way of running it.
type exitCand struct {
	t, k      int
	b         Breakdown
	codec     *CodecModel
	cloud     *CloudInput
	raw, wire int64
}

// Plan implements Policy. It fails with an *InputError for bad inputs, and
// wrapping ErrExitCalibration when the exit model does not fit the profile.
func (p EarlyExit) Plan(in *Inputs) (Plan, error) {
	if err := in.Validate(); err != nil {
		return Plan{}, err
	}
	em := p.Model
	if em == nil || em.Table == nil || len(em.Exits) == 0 {
		return Plan{}, fmt.Errorf("%w: no exit model", ErrExitCalibration)
	}
	if p.Deadline < 0 {
		return Plan{}, &InputError{"Deadline", "negative"}
	}
	n := len(in.Edge.Nodes)
	for i, e := range em.Exits {
		if e.End < 1 || e.End > n || len(e.Cuts) != e.End+1 {
			return Plan{}, fmt.Errorf("%w: exit %s ends at %d with %d cuts, profile has %d nodes", ErrExitCalibration, e.Name, e.End, len(e.Cuts), n)
		}
		if i > 0 && e.End < em.Exits[i-1].End {
			return Plan{}, fmt.Errorf("%w: exits not ordered by end", ErrExitCalibration)
		}
	}
	slack := p.Slack
	if slack == 0 {
		slack = DefaultExitSlack
	}
	slack = max(slack, 0)
	final := len(em.Exits) - 1
	cs := in.codecs()
	edgePre := prefixSums(in.Edge.Nodes)
	var cands []exitCand
	for t, e := range em.Exits {
		for k := 0; k <= e.End; k++ {
			head := edgePre[k]
			if k == e.End {
				b := Breakdown{Overhead: in.Overhead, EdgeCompute: head}
				b.sum()
				cands = append(cands, exitCand{t: t, k: k, b: b})
				continue
			}
			var best exitCand
			found := false
			for ci := range in.Clouds {
				cl := &in.Clouds[ci]
				if cl.Unavailable {
					continue
				}
				cp := cloudProfile(in, cl)
				var tail time.Duration
				for j := k; j < e.End; j++ {
					tail += cp.Nodes[j].Latency
				}
				for j := range cs {
					c := &cs[j]
					if !c.AllowedAt(k, in.Accuracy) || (t != final && c.Fidelity == Lossy) {
						continue
					}
					b, raw, wire := in.costExit(&e.Cuts[k], head, tail, c, cl)
					if !found || b.Total < best.b.Total {
						best, found = exitCand{t: t, k: k, b: b, codec: c, cloud: cl, raw: raw, wire: wire}, true
					}
				}
			}
			if found {
				cands = append(cands, best)
			}
		}
	}
	type scored struct {
		c        exitCand
		pol      *ExitPolicyMeasure
		acc      float64
		expected time.Duration
		meets    bool // worst case within the deadline
		guarded  bool // and with the guard added
	}
	var all []scored
	table := em.Table
	for _, c := range cands {
		guard := max(p.CloudGuard, 0)
		if c.cloud == nil {
			guard = max(p.EdgeGuard, 0)
		}
		edgeExits := 0
		for i := 0; i < c.t; i++ {
			if em.Exits[i].End <= c.k {
				edgeExits++
			}
		}
		for pi := range table.Policies {
			pol := &table.Policies[pi]
			if pol.Terminal != c.t || pol.Early > edgeExits {
				continue
			}
			var exp float64
			for i, nTaken := range pol.Taken {
				share := float64(nTaken) / float64(table.Samples)
				lat := c.b.Total
				if i < pol.Early {
					lat = in.Overhead + edgePre[em.Exits[i].End]
				}
				exp += share * float64(lat)
			}
			all = append(all, scored{c: c, pol: pol, acc: pol.Accuracy(table.Samples), expected: time.Duration(math.Round(exp)),
				meets: p.Deadline == 0 || c.b.Total <= p.Deadline, guarded: p.Deadline == 0 || c.b.Total+guard <= p.Deadline})
		}
	}
	if len(all) == 0 {
		return Plan{}, fmt.Errorf("%w: the table measured no policy for these exits", ErrExitCalibration)
	}
	// The guard is a margin, not a veto: without a guarded plan, those
	// that meet the deadline as predicted.
	ok := func(s scored) bool { return s.guarded }
	if !slices.ContainsFunc(all, ok) {
		ok = func(s scored) bool { return s.meets }
	}
	var pick *scored
	if slices.ContainsFunc(all, ok) {
		bestAcc := -1.0
		for i := range all {
			if ok(all[i]) && all[i].acc > bestAcc {
				bestAcc = all[i].acc
			}
		}
		for i := range all {
			s := &all[i]
			if !ok(*s) || s.acc < bestAcc-slack-1e-12 {
				continue
			}
			if pick == nil || s.expected < pick.expected ||
				s.expected == pick.expected && (s.acc > pick.acc || s.acc == pick.acc && s.c.b.Total < pick.c.b.Total) {
				pick = s
			}
		}
	} else {
		for i := range all {
			s := &all[i]
			if pick == nil || s.c.b.Total < pick.c.b.Total || s.c.b.Total == pick.c.b.Total && s.acc > pick.acc {
				pick = s
			}
		}
	}
	c := pick.c
	plan := Plan{Policy: p.Name(), K: c.k, Predicted: c.b, Accuracy: exactAccuracy(in.Accuracy)}
	if c.k == em.Exits[c.t].End {
		plan.K = c.k
		plan.Energy = in.energyOf(c.b, nil)
	} else {
		plan.Codec, plan.Cloud, plan.Bytes, plan.WireBytes = c.codec.Name, c.cloud.ID, c.raw, c.wire
		plan.Energy = in.energyOf(c.b, c.cloud)
		plan.Accuracy = accuracyOf(c.codec, c.codec.AgreementAt(c.k), in.Accuracy)
	}
	ch := &ExitChoice{Terminal: c.t, Name: em.Exits[c.t].Name, Early: pick.pol.Early, Threshold: pick.pol.Threshold,
		Accuracy: pick.acc, Expected: pick.expected, Deadline: p.Deadline, Meets: pick.meets, Guarded: pick.guarded, Taken: make([]float64, len(pick.pol.Taken))}
	for i, nTaken := range pick.pol.Taken {
		ch.Taken[i] = float64(nTaken) / float64(table.Samples)
	}
	for i := 0; i < pick.pol.Early; i++ {
		ch.Stops = append(ch.Stops, in.Overhead+edgePre[em.Exits[i].End])
	}
	plan.Exit = ch
	return plan, nil
}

// costExit is costPrefix for a cut of a right-sized model: the boundary and
// the result are the prefix cut's.
func (in *Inputs) costExit(pc *partition.PrefixCut, head, tail time.Duration, c *CodecModel, cl *CloudInput) (Breakdown, int64, int64) {
	var b Breakdown
	b.Overhead = in.Overhead
	b.EdgeCompute = head
	raw := pc.Bytes
	wire := int64(math.Ceil(float64(raw) / c.RatioAt(pc.K)))
	b.Encode = durOf(float64(raw) * perByte(c.EncodeBps))
	b.Uplink = cl.Link.upTime(wire)
	b.RTT = cl.Link.RTT
	b.Queue = cl.Queue
	b.CloudCompute = tail
	b.Decode = durOf(float64(raw) * perByte(c.DecodeBps))
	b.Downlink = cl.Link.downTime(pc.ResultBytes)
	b.sum()
	return b, raw, wire
}

// prefixSums returns s with s[k] the latency of nodes [0,k).
func prefixSums(nodes []partition.NodeProfile) []time.Duration {
	s := make([]time.Duration, len(nodes)+1)
	for i, nd := range nodes {
		s[i+1] = s[i] + nd.Latency
	}
	return s
}
