package scheduler

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/edgesplit/edgesplit/partition"
)

// Errors returned by policies. Compare with errors.Is.
var (
	// ErrNoCloud means the policy needs a cloud node and none is available
	// (none given, or all marked Unavailable).
	ErrNoCloud = errors.New("scheduler: no cloud node available")
	// ErrUnknownPolicy is wrapped by ParsePolicy for a name it does not know.
	ErrUnknownPolicy = errors.New("scheduler: unknown policy")
	// ErrAccuracy is wrapped by Evaluate when a plan's codec is not allowed
	// at its cut under the inputs' accuracy budget.
	ErrAccuracy = errors.New("scheduler: codec not allowed by the accuracy budget")
)

// InputError reports a bad field of Inputs. Field is a path such as
// "Clouds[1].Link.Up".
type InputError struct {
	Field string
	Msg   string
}

func (e *InputError) Error() string { return "scheduler: inputs: " + e.Field + ": " + e.Msg }

// LinkEstimate is what is known of the path from the edge to one cloud node.
type LinkEstimate struct {
	RTT  time.Duration // round-trip time
	Up   float64       // uplink goodput, bytes per second (> 0)
	Down float64       // downlink goodput, bytes per second (> 0)
	// UpCurve and DownCurve, when set, make the link burst-aware: a
	// transfer's term is the curve's Time(bytes) instead of bytes ÷ Up (or
	// Down), so short bursts get the lower bandwidth they get on cellular
	// links (CurveFromCellReplay builds one from a CellReplay trace). Nil
	// is the plain model.
	UpCurve, DownCurve *TransferCurve
}

// CodecModel is the cost of one tensor codec preset, as measured by
// tensorcodec: Ratio is raw bytes ÷ wire bytes (1 for raw float32, ≈ 4–7 for
// uint8 quantisation), EncodeBps and DecodeBps are raw bytes per second (0
// means free), MaxRelErr is the preset's error bound (0 for lossless; the
// scheduler only reports it). CutRatios, when set, holds the ratio measured at
// each prefix cut K's boundary (index K); a missing or zero entry falls back to
// Ratio. Activations compress very differently from cut to cut (an input image
// against a post-ReLU map), so per-cut ratios make the prediction honest.
//
// Fidelity and CutAgreement decide where the codec may be used at all (see
// AccuracyBudget): an exact codec anywhere, a bounded one unless calibration
// saw it change answers, a lossy one only at cuts whose calibrated top-1
// agreement (CutAgreement[K]) is certified within the budget.
type CodecModel struct {
	Name         string
	Ratio        float64
	EncodeBps    float64
	DecodeBps    float64
	MaxRelErr    float64
	CutRatios    []float64
	Fidelity     Fidelity
	CutAgreement []Agreement
}

// RatioAt is the codec's ratio at prefix cut k: CutRatios[k] when known,
// else Ratio.
func (c *CodecModel) RatioAt(k int) float64 {
	if k >= 0 && k < len(c.CutRatios) && c.CutRatios[k] > 0 {
		return c.CutRatios[k]
	}
	return c.Ratio
}

// RawCodec is the identity codec: float32 as is, no time spent.
var RawCodec = CodecModel{Name: "raw", Ratio: 1, Fidelity: Exact}

// CloudInput is one candidate cloud node.
type CloudInput struct {
	ID string
	// Profile holds the model's per-node latency on this cloud node; it must
	// have the same nodes as Inputs.Edge. Nil means the same latencies as the
	// edge (useful only in tests).
	Profile *partition.Profile
	Link    LinkEstimate
	Queue   time.Duration // advertised queueing delay
	// Unavailable excludes the node (banned after a failure, draining).
	Unavailable bool
}

// Inputs is everything a policy decides from. The policies read it and never
// keep or modify it.
type Inputs struct {
	// Edge is the model's profile on the edge device (measured, or predicted
	// by a Predictor). Required.
	Edge *partition.Profile
	// DAG is the model's tensor graph, needed by dads for branching models;
	// nil means the chain implied by Edge's cuts (dads then scans cuts).
	DAG *DAG
	// Codecs lists the codec presets to choose from; empty means RawCodec.
	Codecs []CodecModel
	// Clouds lists the candidate cloud nodes.
	Clouds []CloudInput
	// Overhead is a fixed per-request cost on the edge (request handling,
	// scheduling, waking up), added to every plan alike: it never changes a
	// decision, but keeps predictions honest for models whose whole run is
	// a millisecond. Zero when unknown.
	Overhead time.Duration
	// Accuracy is the accuracy budget every policy obeys: which codec may
	// carry which boundary. The zero value is the default budget.
	Accuracy AccuracyBudget
	// Objective is what every policy minimises; the zero value is
	// latency. Energy and weighted need Power.
	Objective Objective
	// Power is the edge device's power model: every plan's Energy is
	// predicted with it (zero when it is zero).
	Power PowerModel
	// EnergyWeight is the weighted objective's price of energy in seconds
	// per joule; 0 means DefaultEnergyWeight.
	EnergyWeight float64
	// Servers are the edge servers the edge may put between itself and a
	// cloud (three-tier plans: ThreeTier). Each may also be a two-tier
	// target, listed in Clouds.
	Servers []ServerInput
	// InFlight is how many requests the edge has under way, this one
	// included (0 counts as 1). The throughput objective rates a plan at
	// min(1/bottleneck, InFlight/latency) requests per second (Little's
	// law): with few requests in flight a plan's latency still bounds the
	// rate, however short its slowest stage.
	InFlight int
}

// Validate checks the inputs and returns an *InputError naming the first bad
// field, or nil.
func (in *Inputs) Validate() error {
	if in == nil || in.Edge == nil {
		return &InputError{"Edge", "missing profile"}
	}
	n := len(in.Edge.Nodes)
	if len(in.Edge.Cuts) != n+1 {
		return &InputError{"Edge.Cuts", fmt.Sprintf("has %d entries, want %d (one per K in 0..%d)", len(in.Edge.Cuts), n+1, n)}
	}
	if in.Overhead < 0 {
		return &InputError{"Overhead", "negative"}
	}
	if err := in.Accuracy.validate(); err != nil {
		return err
	}
	if err := in.validateObjective(); err != nil {
		return err
	}
	for i, nd := range in.Edge.Nodes {
		if nd.Latency < 0 {
			return &InputError{fmt.Sprintf("Edge.Nodes[%d].Latency", i), "negative"}
		}
	}
	for i, c := range in.Codecs {
		if !(c.Ratio > 0) || math.IsInf(c.Ratio, 0) {
			return &InputError{fmt.Sprintf("Codecs[%d].Ratio", i), fmt.Sprintf("must be > 0, got %v", c.Ratio)}
		}
		for k, r := range c.CutRatios {
			if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
				return &InputError{fmt.Sprintf("Codecs[%d].CutRatios[%d]", i, k), fmt.Sprintf("must be ≥ 0 and finite, got %v", r)}
			}
		}
		if c.EncodeBps < 0 || c.DecodeBps < 0 || math.IsNaN(c.EncodeBps) || math.IsNaN(c.DecodeBps) {
			return &InputError{fmt.Sprintf("Codecs[%d]", i), "negative throughput"}
		}
		if c.Fidelity > Exact {
			return &InputError{fmt.Sprintf("Codecs[%d].Fidelity", i), fmt.Sprintf("unknown fidelity %d", c.Fidelity)}
		}
		for k, a := range c.CutAgreement {
			if a.Samples < 0 || a.Agree < 0 || a.Agree > a.Samples || math.IsNaN(a.MaxProbDelta) {
				return &InputError{fmt.Sprintf("Codecs[%d].CutAgreement[%d]", i, k), fmt.Sprintf("agree %d of %d samples is impossible", a.Agree, a.Samples)}
			}
		}
	}
	for i, c := range in.Clouds {
		if c.Profile != nil && len(c.Profile.Nodes) != n {
			return &InputError{fmt.Sprintf("Clouds[%d].Profile", i), fmt.Sprintf("has %d nodes, edge profile has %d", len(c.Profile.Nodes), n)}
		}
		if !(c.Link.Up > 0) {
			return &InputError{fmt.Sprintf("Clouds[%d].Link.Up", i), fmt.Sprintf("must be > 0, got %v", c.Link.Up)}
		}
		if !(c.Link.Down > 0) {
			return &InputError{fmt.Sprintf("Clouds[%d].Link.Down", i), fmt.Sprintf("must be > 0, got %v", c.Link.Down)}
		}
		if c.Link.RTT < 0 || c.Queue < 0 {
			return &InputError{fmt.Sprintf("Clouds[%d]", i), "negative RTT or queue"}
		}
		if u := c.Link.UpCurve; u != nil {
			if err := u.validate(fmt.Sprintf("Clouds[%d].Link.UpCurve", i)); err != nil {
				return err
			}
		}
		if d := c.Link.DownCurve; d != nil {
			if err := d.validate(fmt.Sprintf("Clouds[%d].Link.DownCurve", i)); err != nil {
				return err
			}
		}
	}
	if in.DAG != nil && in.DAG.Nodes != n {
		return &InputError{"DAG.Nodes", fmt.Sprintf("is %d, edge profile has %d nodes", in.DAG.Nodes, n)}
	}
	return nil
}

func (in *Inputs) codecs() []CodecModel {
	if len(in.Codecs) == 0 {
		return rawOnly
	}
	return in.Codecs
}

var rawOnly = []CodecModel{RawCodec}

func (in *Inputs) anyCloud() bool {
	for i := range in.Clouds {
		if !in.Clouds[i].Unavailable {
			return true
		}
	}
	return false
}

// Breakdown is a predicted (or, in sim and node, measured) latency split
// into the cost model's terms. RTT holds both halves.
type Breakdown struct {
	// Overhead is the fixed per-request cost on the edge (Inputs.Overhead).
	Overhead     time.Duration
	EdgeCompute  time.Duration
	Encode       time.Duration
	Uplink       time.Duration
	RTT          time.Duration
	Queue        time.Duration
	CloudCompute time.Duration
	Decode       time.Duration
	Downlink     time.Duration
	// Server and Hop2 are a three-tier plan's (ThreeTier): the edge
	// server's share (its piece, and encoding the second boundary) and the
	// second hop (the second boundary's uplink, the RTT to the cloud, its
	// queue, the cloud's piece, decoding, the result's downlink to the
	// server). Zero for two tiers.
	Server, Hop2 time.Duration
	Total        time.Duration
}

// Bottleneck is the slowest of the stages a request passes when requests
// pipeline: the edge's compute (overhead, head, encode), the uplink, and the
// cloud (its tail and decode; its queue is the other requests' share of
// it). One edge sustains at most one request per Bottleneck.
func (b Breakdown) Bottleneck() time.Duration {
	return max(b.Overhead+b.EdgeCompute+b.Encode, b.Uplink, b.CloudCompute+b.Decode, b.Server+b.Decode, b.Hop2)
}

func (b *Breakdown) sum() {
	b.Total = b.Overhead + b.EdgeCompute + b.Encode + b.Uplink + b.RTT + b.Queue + b.CloudCompute + b.Decode + b.Downlink +
		b.Server + b.Hop2
}

// Plan is a decision: run the head on the edge, send the boundary with Codec
// to Cloud, run the tail there.
type Plan struct {
	Policy string // policy that produced it
	// K is the prefix cut: nodes [0,K) run on the edge. len(nodes) means
	// edge-only, 0 cloud-only. -1 when the edge set is not a prefix of the
	// canonical order (dads); Head then lists it.
	K         int
	Head      []int
	Codec     string // codec preset; "" for edge-only
	Cloud     string // cloud node ID; "" for edge-only
	Bytes     int64  // raw boundary bytes sent up
	WireBytes int64  // bytes on the wire after the codec
	Predicted Breakdown
	// Energy is the edge device's predicted energy under Inputs.Power
	// (zero without a power model).
	Energy EnergyBreakdown
	// Accuracy is what the plan risks and the budget it was made under.
	Accuracy Accuracy
	// Exit is the early-exit choice of an EarlyExit plan (nil otherwise):
	// K then cuts the model right-sized at Exit.Terminal, and Predicted is
	// the worst case, the request no early exit answers.
	Exit *ExitChoice
	// Via is the edge server of a three-tier plan (ThreeTier): the edge
	// sends its boundary at K there, the server runs nodes [K, K2) and
	// sends its boundary at K2 on to Cloud with Codec2. "" for two tiers.
	Via                string
	K2                 int
	Codec2             string
	Bytes2, WireBytes2 int64
}

// Target is the node the edge sends its boundary to: the edge server of a
// three-tier plan, else the cloud ("" for edge-only).
func (p Plan) Target() string {
	if p.Via != "" {
		return p.Via
	}
	return p.Cloud
}

// EdgeOnly reports whether the plan offloads nothing.
func (p Plan) EdgeOnly() bool { return p.Cloud == "" }

// String is the plan with its policy: "auto: cut 4 → cloud-1, codec int8, ...".
func (p Plan) String() string { return p.Policy + ": " + p.Summary() }

// Summary describes the plan without its policy: "edge-only, 0.647 ms" or
// "cut 4 → cloud-1, codec int8, 1628 B, 5.012 ms" (predicted total).
func (p Plan) Summary() string {
	total := fmt.Sprintf("%.3f ms", float64(p.Predicted.Total)/1e6)
	if p.Energy.Total > 0 {
		total += fmt.Sprintf(", %.3f mJ", p.Energy.Total*1e3)
	}
	if p.EdgeOnly() {
		return "edge-only, " + total
	}
	cut := fmt.Sprint(p.K)
	if p.K < 0 {
		cut = fmt.Sprintf("set%v", p.Head)
	}
	if p.Via != "" {
		return fmt.Sprintf("cut %s → %s, codec %s, %d B, cut %d → %s, codec %s, %d B, %s", cut, p.Via, p.Codec, p.WireBytes,
			p.K2, p.Cloud, p.Codec2, p.WireBytes2, total)
	}
	return fmt.Sprintf("cut %s → %s, codec %s, %d B, %s", cut, p.Cloud, p.Codec, p.WireBytes, total)
}

func durOf(seconds float64) time.Duration {
	if seconds <= 0 {
		return 0
	}
	if seconds > 1e9 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(seconds * 1e9)
}

func perByte(bps float64) float64 {
	if bps <= 0 {
		return 0
	}
	return 1 / bps
}

// costPrefix predicts the latency of prefix cut k with codec c on cloud cl.
// head and tail are the edge latency of [0,k) and the cloud latency of
// [k,n), supplied by the caller's running sums.
func (in *Inputs) costPrefix(k int, head, tail time.Duration, c *CodecModel, cl *CloudInput) (Breakdown, int64, int64) {
	n := len(in.Edge.Nodes)
	var b Breakdown
	b.Overhead = in.Overhead
	b.EdgeCompute = head
	if k >= n {
		b.sum()
		return b, 0, 0
	}
	raw := in.Edge.Cuts[k].Bytes
	wire := int64(math.Ceil(float64(raw) / c.RatioAt(k)))
	b.Encode = durOf(float64(raw) * perByte(c.EncodeBps))
	b.Uplink = cl.Link.upTime(wire)
	b.RTT = cl.Link.RTT
	b.Queue = cl.Queue
	b.CloudCompute = tail
	b.Decode = durOf(float64(raw) * perByte(c.DecodeBps))
	b.Downlink = cl.Link.downTime(in.Edge.OutputBytes)
	b.sum()
	return b, raw, wire
}

func cloudProfile(in *Inputs, cl *CloudInput) *partition.Profile {
	if cl.Profile != nil {
		return cl.Profile
	}
	return in.Edge
}

// Cost predicts the latency of prefix cut k (0..len(nodes)) with codec
// Codecs[codec] on Clouds[cloud]. For k == len(nodes) codec and cloud are
// ignored. It validates the inputs.
func (in *Inputs) Cost(k, codec, cloud int) (Breakdown, error) {
	if err := in.Validate(); err != nil {
		return Breakdown{}, err
	}
	n := len(in.Edge.Nodes)
	if k < 0 || k > n {
		return Breakdown{}, fmt.Errorf("scheduler: cut %d out of range 0..%d", k, n)
	}
	cs := in.codecs()
	if k < n && (codec < 0 || codec >= len(cs) || cloud < 0 || cloud >= len(in.Clouds)) {
		return Breakdown{}, fmt.Errorf("scheduler: codec %d or cloud %d out of range", codec, cloud)
	}
	head := in.Edge.HeadLatency(k)
	if k == n {
		b, _, _ := in.costPrefix(k, head, 0, nil, nil)
		return b, nil
	}
	cl := &in.Clouds[cloud]
	b, _, _ := in.costPrefix(k, head, cloudProfile(in, cl).TailLatency(k), &cs[codec], cl)
	return b, nil
}

// edgeOnlyPlan is the plan that runs everything on the edge.
func (in *Inputs) edgeOnlyPlan(policy string) Plan {
	n := len(in.Edge.Nodes)
	b, _, _ := in.costPrefix(n, in.Edge.HeadLatency(n), 0, nil, nil)
	return Plan{Policy: policy, K: n, Predicted: b, Energy: in.energyOf(b, nil), Accuracy: exactAccuracy(in.Accuracy)}
}

// bestPrefix scans prefix cuts accepted by ok (nil: all), every codec and
// every available cloud, and returns the cheapest plan. Edge-only (K = n) is
// considered when ok accepts n. found is false when nothing was acceptable.
func (in *Inputs) bestPrefix(policy string, ok func(k int) bool) (best Plan, found bool) {
	n := len(in.Edge.Nodes)
	cs := in.codecs()
	// The queue is a constant of each cloud: clouds with the same profile
	// and link share their best cut and codec, found once (up to 16 such
	// groups are remembered; more are scanned in full).
	type memo struct {
		prof      *partition.Profile
		link      LinkEstimate
		k, codec  int
		b         Breakdown // with Queue 0
		raw, wire int64
		found     bool
	}
	var memos [16]memo
	nm := 0
	var bestCloud *CloudInput
	for ci := range in.Clouds {
		cl := &in.Clouds[ci]
		if cl.Unavailable {
			continue
		}
		cp := cloudProfile(in, cl)
		var m *memo
		for i := 0; i < nm; i++ {
			if memos[i].prof == cp && memos[i].link == cl.Link {
				m = &memos[i]
				break
			}
		}
		if m == nil {
			var mm memo
			mm.prof, mm.link = cp, cl.Link
			noQueue := *cl
			noQueue.Queue = 0
			var head time.Duration
			tail := cp.TailLatency(0)
			for k := 0; k < n; k++ {
				if ok == nil || ok(k) {
					for j := range cs {
						if !cs[j].AllowedAt(k, in.Accuracy) {
							continue
						}
						b, raw, wire := in.costPrefix(k, head, tail, &cs[j], &noQueue)
						if !mm.found || in.cheaper(b, &noQueue, mm.b, &noQueue) {
							mm.k, mm.codec, mm.b, mm.raw, mm.wire, mm.found = k, j, b, raw, wire, true
						}
					}
				}
				head += in.Edge.Nodes[k].Latency
				tail -= cp.Nodes[k].Latency
			}
			if nm < len(memos) {
				memos[nm] = mm
				m = &memos[nm]
				nm++
			} else {
				m = &mm
			}
		}
		if !m.found {
			continue
		}
		b := m.b
		b.Queue = cl.Queue
		b.sum()
		if !found || in.cheaper(b, cl, best.Predicted, bestCloud) {
			c := &cs[m.codec]
			best = Plan{Policy: policy, K: m.k, Codec: c.Name, Cloud: cl.ID, Bytes: m.raw, WireBytes: m.wire, Predicted: b,
				Energy: in.energyOf(b, cl), Accuracy: accuracyOf(c, c.AgreementAt(m.k), in.Accuracy)}
			bestCloud, found = cl, true
		}
	}
	if ok == nil || ok(n) {
		e := in.edgeOnlyPlan(policy)
		if !found || in.planCheaper(e, best) {
			best, found = e, true
		}
	}
	return best, found
}

// Evaluate re-predicts an existing plan under new inputs (used for
// hysteresis and to score a plan against the truth in sim). It fails with
// ErrNoCloud when the plan's cloud is gone or unavailable and with an error
// when its codec is no longer offered.
func (in *Inputs) Evaluate(p Plan) (Plan, error) {
	if err := in.Validate(); err != nil {
		return Plan{}, err
	}
	n := len(in.Edge.Nodes)
	if p.EdgeOnly() {
		e := in.edgeOnlyPlan(p.Policy)
		return e, nil
	}
	var cl *CloudInput
	for i := range in.Clouds {
		if in.Clouds[i].ID == p.Cloud {
			cl = &in.Clouds[i]
		}
	}
	if cl == nil || cl.Unavailable {
		return Plan{}, fmt.Errorf("%w: %q", ErrNoCloud, p.Cloud)
	}
	var c *CodecModel
	cs := in.codecs()
	for i := range cs {
		if cs[i].Name == p.Codec {
			c = &cs[i]
		}
	}
	if c == nil {
		return Plan{}, fmt.Errorf("scheduler: codec %q not offered", p.Codec)
	}
	if p.K >= 0 {
		if p.K > n {
			return Plan{}, fmt.Errorf("scheduler: cut %d out of range 0..%d", p.K, n)
		}
		if !c.AllowedAt(p.K, in.Accuracy) {
			return Plan{}, fmt.Errorf("%w: codec %s at cut %d under %v", ErrAccuracy, c.Name, p.K, in.Accuracy)
		}
		b, raw, wire := in.costPrefix(p.K, in.Edge.HeadLatency(p.K), cloudProfile(in, cl).TailLatency(p.K), c, cl)
		q := p
		q.Bytes, q.WireBytes, q.Predicted, q.Energy = raw, wire, b, in.energyOf(b, cl)
		q.Accuracy = accuracyOf(c, c.AgreementAt(p.K), in.Accuracy)
		return q, nil
	}
	d := in.DAG
	if d == nil {
		return Plan{}, errors.New("scheduler: non-prefix plan needs Inputs.DAG")
	}
	onEdge := make([]bool, n)
	for _, v := range p.Head {
		if v < 0 || v >= n {
			return Plan{}, fmt.Errorf("scheduler: head node %d out of range", v)
		}
		onEdge[v] = true
	}
	a, ok := in.setAgreement(d, onEdge, c)
	if !ok {
		return Plan{}, fmt.Errorf("%w: codec %s on the boundary of set %v under %v", ErrAccuracy, c.Name, p.Head, in.Accuracy)
	}
	b, raw, wire := in.costSet(d, onEdge, c, cl)
	q := p
	q.Bytes, q.WireBytes, q.Predicted, q.Energy = raw, wire, b, in.energyOf(b, cl)
	q.Accuracy = accuracyOf(c, a, in.Accuracy)
	return q, nil
}
