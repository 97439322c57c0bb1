package scheduler

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/edgesplit/edgesplit/partition"
)

// Policy turns inputs into a plan. Plan does not block and does not keep in;
// implementations are safe for concurrent use.
type Policy interface {
	// Name is the policy's name as ParsePolicy reads it ("fixed:5").
	Name() string
	// Plan decides. It returns an *InputError for invalid inputs and
	// ErrNoCloud when the policy must offload and cannot.
	Plan(in *Inputs) (Plan, error)
}

var (
	_ Policy = EdgeOnly{}
	_ Policy = CloudOnly{}
	_ Policy = Fixed{}
	_ Policy = Neurosurgeon{}
	_ Policy = (*DADS)(nil)
	_ Policy = (*Auto)(nil)
)

// ParsePolicy returns the policy named s: "edge-only", "cloud-only",
// "fixed:K", "neurosurgeon", "dads", "auto" (with DefaultAutoConfig) or
// "oracle" (auto without hysteresis: the best plan for the inputs as given;
// sim feeds it the true state). Names are case-insensitive.
func ParsePolicy(s string) (Policy, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	switch name {
	case "edge-only", "edge":
		return EdgeOnly{}, nil
	case "cloud-only", "cloud":
		return CloudOnly{}, nil
	case "neurosurgeon":
		return Neurosurgeon{}, nil
	case "dads":
		return &DADS{}, nil
	case "auto":
		return NewAuto(DefaultAutoConfig()), nil
	case "oracle":
		return NewAuto(AutoConfig{Threshold: 0, Consecutive: 1, Label: "oracle"}), nil
	}
	if rest, ok := strings.CutPrefix(name, "fixed:"); ok {
		k, err := strconv.Atoi(rest)
		if err != nil || k < 0 {
			return nil, fmt.Errorf("%w %q: fixed:K needs a cut K ≥ 0", ErrUnknownPolicy, s)
		}
		return Fixed{K: k}, nil
	}
	return nil, fmt.Errorf("%w %q (want edge-only, cloud-only, fixed:K, neurosurgeon, dads, auto or oracle)", ErrUnknownPolicy, s)
}

// EdgeOnly runs the whole model on the edge.
type EdgeOnly struct{}

// Name implements Policy.
func (EdgeOnly) Name() string { return "edge-only" }

// Plan implements Policy.
func (EdgeOnly) Plan(in *Inputs) (Plan, error) {
	if err := in.Validate(); err != nil {
		return Plan{}, err
	}
	return in.edgeOnlyPlan("edge-only"), nil
}

// CloudOnly sends the input to the best cloud (codec and cloud chosen).
type CloudOnly struct{}

// Name implements Policy.
func (CloudOnly) Name() string { return "cloud-only" }

// Plan implements Policy.
func (CloudOnly) Plan(in *Inputs) (Plan, error) { return Fixed{K: 0}.planAs(in, "cloud-only") }

// Fixed cuts at K (nodes [0,K) on the edge); K ≥ len(nodes) is edge-only.
// The codec and the cloud are the best for that cut.
type Fixed struct{ K int }

// Name implements Policy.
func (f Fixed) Name() string { return "fixed:" + strconv.Itoa(f.K) }

// Plan implements Policy.
func (f Fixed) Plan(in *Inputs) (Plan, error) { return f.planAs(in, f.Name()) }

func (f Fixed) planAs(in *Inputs, name string) (Plan, error) {
	if err := in.Validate(); err != nil {
		return Plan{}, err
	}
	n := len(in.Edge.Nodes)
	k := min(max(f.K, 0), n)
	if k < n && !in.anyCloud() {
		return Plan{}, ErrNoCloud
	}
	p, found := in.bestPrefix(name, func(j int) bool { return j == k })
	if !found {
		return Plan{}, fmt.Errorf("%w: no codec offered may carry cut %d under %v", ErrAccuracy, k, in.Accuracy)
	}
	return p, nil
}

// Neurosurgeon scans the cuts whose boundary is a single tensor, plus
// edge-only and cloud-only (Kang et al., ASPLOS 2017), with every codec and
// cloud. Without an available cloud it plans edge-only.
type Neurosurgeon struct{}

// Name implements Policy.
func (Neurosurgeon) Name() string { return "neurosurgeon" }

// Plan implements Policy.
func (Neurosurgeon) Plan(in *Inputs) (Plan, error) {
	if err := in.Validate(); err != nil {
		return Plan{}, err
	}
	n := len(in.Edge.Nodes)
	cuts := in.Edge.Cuts
	p, _ := in.bestPrefix("neurosurgeon", func(k int) bool { return k == 0 || k == n || len(cuts[k].Boundary) <= 1 })
	return p, nil
}

// DADS finds the best edge/cloud split of the model DAG by a minimum s–t
// cut per codec and cloud (see the package documentation for the
// construction). Without Inputs.DAG, or for a chain, it scans all prefix
// cuts, which is then the same optimum. Without an available cloud it plans
// edge-only. The zero value is ready to use.
type DADS struct {
	pool sync.Pool // *flowNet scratch
}

// Name implements Policy.
func (*DADS) Name() string { return "dads" }

// Plan implements Policy.
func (p *DADS) Plan(in *Inputs) (Plan, error) {
	if err := in.Validate(); err != nil {
		return Plan{}, err
	}
	return p.plan(in, "dads")
}

func (p *DADS) plan(in *Inputs, name string) (Plan, error) {
	d := in.DAG
	if d == nil || d.chain() {
		best, _ := in.bestPrefix(name, nil)
		return best, nil
	}
	if err := d.Validate(); err != nil {
		return Plan{}, err
	}
	f, _ := p.pool.Get().(*flowNet)
	if f == nil {
		f = new(flowNet)
	}
	defer p.pool.Put(f)
	best := in.edgeOnlyPlan(name)
	n := d.Nodes
	onEdge := make([]bool, n)
	bestEdge := make([]bool, n)
	for i := range bestEdge {
		bestEdge[i] = true
	}
	cs := in.codecs()
	var bestCloud *CloudInput // nil while best is edge-only
	// The queue is a constant of each cloud, so clouds with the same
	// profile and link share their minimum cuts: compute each once.
	f.uniq = f.uniq[:0]
	for ci := range in.Clouds {
		cl := &in.Clouds[ci]
		if cl.Unavailable {
			continue
		}
		cp := cloudProfile(in, cl)
		u := -1
		for i := range f.uniq {
			if f.uniq[i].prof == cp && f.uniq[i].link == cl.Link {
				u = i
				break
			}
		}
		if u < 0 {
			u = len(f.uniq)
			f.uniq = append(f.uniq, cutKey{prof: cp, link: cl.Link})
			need := (u + 1) * len(cs) * n
			if cap(f.sets) < need {
				ns := make([]bool, need, 2*need)
				copy(ns, f.sets)
				f.sets = ns
			}
			f.sets = f.sets[:need]
			for j := range cs {
				if !anyAllowed(in, d, &cs[j]) {
					continue
				}
				buildDADS(f, in, d, cp.Nodes, &cs[j], cl)
				f.maxflow(0, 1)
				set := f.sets[(u*len(cs)+j)*n : (u*len(cs)+j+1)*n]
				for v := range set {
					set[v] = f.sourceSide(2 + v)
				}
			}
		}
		for j := range cs {
			c := &cs[j]
			if !anyAllowed(in, d, c) {
				continue
			}
			copy(onEdge, f.sets[(u*len(cs)+j)*n:(u*len(cs)+j+1)*n])
			a, ok := in.setAgreement(d, onEdge, c)
			if !ok {
				continue // the prefix scans still consider c where it is certified
			}
			if !slices.Contains(onEdge, false) {
				continue // the min cut kept everything on the edge: that is the edge-only plan
			}
			b, raw, wire := in.costSet(d, onEdge, c, cl)
			if in.cheaper(b, cl, best.Predicted, bestCloud) {
				best = Plan{Policy: name, Codec: c.Name, Cloud: cl.ID, Bytes: raw, WireBytes: wire, Predicted: b,
					Energy: in.energyOf(b, cl), Accuracy: accuracyOf(c, a, in.Accuracy)}
				bestCloud = cl
				copy(bestEdge, onEdge)
			}
		}
	}
	if best.EdgeOnly() {
		return best, nil
	}
	// Prefix or general set?
	k := 0
	for k < n && bestEdge[k] {
		k++
	}
	prefix := true
	for v := k; v < n; v++ {
		if bestEdge[v] {
			prefix = false
			break
		}
	}
	if prefix {
		best.K = k
		return best, nil
	}
	best.K = -1
	for v, e := range bestEdge {
		if e {
			best.Head = append(best.Head, v)
		}
	}
	return best, nil
}

// anyAllowed reports whether codec c may carry any boundary of d under the
// inputs' budget (so a min cut with it is worth computing).
func anyAllowed(in *Inputs, d *DAG, c *CodecModel) bool {
	if c.Fidelity == Exact {
		return true
	}
	for k := 0; k < d.Nodes; k++ {
		if c.AllowedAt(k, in.Accuracy) {
			return true
		}
	}
	return false
}

// buildDADS lays out the DADS flow network in f: vertex 0 is the source
// (edge), 1 the sink (cloud), 2+v node v, 2+n+i the auxiliary vertex of
// tensor i. Capacities are nanoseconds (the latency objective) or the
// objective's cost of each term (buildDADSWeighted).
func buildDADS(f *flowNet, in *Inputs, d *DAG, cloud []partition.NodeProfile, c *CodecModel, cl *CloudInput) {
	if in.Objective != ObjectiveLatency || cl.Link.bursty() {
		buildDADSWeighted(f, in, d, cloud, c, cl)
		return
	}
	n := d.Nodes
	f.reset(2 + n + len(d.Tensors))
	inf := math.Inf(1)
	encdec := perByte(c.EncodeBps) + perByte(c.DecodeBps)
	// s → v carries cloud(v) plus the download of outputs v makes, v → t
	// carries edge(v). The flow min(s→v, v→t) along s→v→t is pushed up
	// front (capacities reduced by it), which leaves the minimum cut as it
	// is and saves Dinic most of its augmenting paths.
	for v := 0; v < n; v++ {
		f.sc[v] = float64(cloud[v].Latency)
	}
	for i := range d.Tensors {
		t := &d.Tensors[i]
		if t.Output && t.Producer >= 0 {
			f.sc[t.Producer] += float64(t.Bytes) / cl.Link.Down * 1e9
		}
	}
	for v := 0; v < n; v++ {
		e := float64(in.Edge.Nodes[v].Latency)
		m := math.Min(f.sc[v], e)
		if c := f.sc[v] - m; c > 0 {
			f.arc(0, 2+v, c)
		}
		if c := e - m; c > 0 {
			f.arc(2+v, 1, c)
		}
	}
	for i := range d.Tensors {
		t := &d.Tensors[i]
		if len(t.Consumers) == 0 {
			continue
		}
		a := 2 + n + i
		w := math.Ceil(float64(t.Bytes) / d.ratio(c, i))
		capT := (float64(t.Bytes)*encdec + w/cl.Link.Up) * 1e9
		if c.Fidelity != Exact && !c.Allows(in.Accuracy, d.tensorAgreement(c, i)) {
			// The budget forbids sending this tensor through c: never cut it.
			capT = inf
		}
		from := 0
		if t.Producer >= 0 {
			from = 2 + t.Producer
		}
		if len(t.Consumers) == 1 {
			// One reader: no auxiliary vertex needed.
			x := t.Consumers[0]
			f.arc(from, 2+x, capT)
			if t.Producer >= 0 {
				f.arc(2+x, 2+t.Producer, inf)
			}
			continue
		}
		f.arc(from, a, capT)
		for _, x := range t.Consumers {
			f.arc(a, 2+x, inf)
			if t.Producer >= 0 {
				f.arc(2+x, 2+t.Producer, inf)
			}
		}
	}
}

// buildDADSWeighted lays out the same network as buildDADS with every
// capacity priced by the objective: each nanosecond the device spends
// computing, sending, receiving or waiting costs its weight (see weights),
// so that a cut's capacity plus the constant part (RTT, queue, overhead,
// radio tail) is exactly Inputs.score of costSet, and the min cut stays
// exact for the energy and weighted objectives. On a burst-aware link each
// tensor is priced as a burst of its own (the curve's Time); a cut that
// sends several tensors sends them as one burst, which the curve does not
// price as the sum, so the min cut is then exact when the best split sends
// one tensor and otherwise a heuristic: its set is re-scored with costSet,
// and Auto compares it with the prefix scan, which is exact.
func buildDADSWeighted(f *flowNet, in *Inputs, d *DAG, cloud []partition.NodeProfile, c *CodecModel, cl *CloudInput) {
	n := d.Nodes
	f.reset(2 + n + len(d.Tensors))
	inf := math.Inf(1)
	w := in.weights(cl)
	// On the cloud, v costs the device its wait while v runs plus the
	// download of any graph output v makes; on the edge, its compute.
	for v := 0; v < n; v++ {
		f.sc[v] = float64(cloud[v].Latency) * w.wait
	}
	for i := range d.Tensors {
		t := &d.Tensors[i]
		if t.Output && t.Producer >= 0 {
			f.sc[t.Producer] += float64(cl.Link.downTime(t.Bytes)) * w.down
		}
	}
	for v := 0; v < n; v++ {
		e := float64(in.Edge.Nodes[v].Latency) * w.compute
		m := math.Min(f.sc[v], e)
		if x := f.sc[v] - m; x > 0 {
			f.arc(0, 2+v, x)
		}
		if x := e - m; x > 0 {
			f.arc(2+v, 1, x)
		}
	}
	for i := range d.Tensors {
		t := &d.Tensors[i]
		if len(t.Consumers) == 0 {
			continue
		}
		wire := math.Ceil(float64(t.Bytes) / d.ratio(c, i))
		capT := float64(t.Bytes)*(perByte(c.EncodeBps)*w.compute+perByte(c.DecodeBps)*w.wait)*1e9 + float64(cl.Link.upTime(int64(wire)))*w.up
		if c.Fidelity != Exact && !c.Allows(in.Accuracy, d.tensorAgreement(c, i)) {
			capT = inf
		}
		from := 0
		if t.Producer >= 0 {
			from = 2 + t.Producer
		}
		if len(t.Consumers) == 1 {
			x := t.Consumers[0]
			f.arc(from, 2+x, capT)
			if t.Producer >= 0 {
				f.arc(2+x, 2+t.Producer, inf)
			}
			continue
		}
		a := 2 + n + i
		f.arc(from, a, capT)
		for _, x := range t.Consumers {
			f.arc(a, 2+x, inf)
			if t.Producer >= 0 {
				f.arc(2+x, 2+t.Producer, inf)
			}
		}
	}
}
