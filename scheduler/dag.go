package scheduler

import (
	"fmt"
	"math"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/partition"
)

// Tensor is one activation of a DAG: produced by node Producer (-1 for a
// graph input) and read by Consumers, all later in the canonical order.
type Tensor struct {
	Name      string
	Bytes     int64 // raw float32 bytes
	Producer  int
	Consumers []int
	Output    bool // a graph output (sent back to the edge when made on the cloud)
}

// DAG is the tensor structure of a model, with nodes numbered as in
// partition's Profile (the graph's canonical topological order). Build it
// with NewDAG or ChainDAG, or by hand.
type DAG struct {
	Nodes   int
	Tensors []Tensor

	// cutOf[i] is the prefix cut K whose boundary is tensor i alone, -1 if
	// none; nil (a DAG built by hand) when not worked out. It lets a node-set
	// cut price a tensor with the codec's ratio measured at that cut.
	cutOf []int
	// cutBySent maps the key of the tensors a prefix cut sends to the cloud
	// (boundaryKey) to its K, so a node-set cut that sends the same tensors
	// takes that cut's calibration.
	cutBySent map[string]int
}

// indexCuts fills d.cutOf from d's prefix cuts.
func (d *DAG) indexCuts() {
	d.cutOf = make([]int, len(d.Tensors))
	for i := range d.cutOf {
		d.cutOf[i] = -1
	}
	idx := make(map[string]int, len(d.Tensors))
	for i, t := range d.Tensors {
		idx[t.Name] = i
	}
	for _, c := range d.Cuts() {
		if len(c.Boundary) != 1 {
			continue
		}
		if i, ok := idx[c.Boundary[0]]; ok && d.cutOf[i] < 0 {
			d.cutOf[i] = c.K
		}
	}
	d.cutBySent = make(map[string]int, d.Nodes)
	onEdge := make([]bool, d.Nodes)
	for k := 0; k < d.Nodes; k++ {
		key := boundaryKey(d.sent(onEdge))
		if _, ok := d.cutBySent[key]; !ok {
			d.cutBySent[key] = k
		}
		onEdge[k] = true
	}
}

// sent lists the tensors a split sends to the cloud: made on the edge (or a
// graph input) and read by a node that is not.
func (d *DAG) sent(onEdge []bool) []string {
	var names []string
	for _, t := range d.Tensors {
		if t.Producer >= 0 && !onEdge[t.Producer] {
			continue
		}
		for _, x := range t.Consumers {
			if !onEdge[x] {
				names = append(names, t.Name)
				break
			}
		}
	}
	return names
}

// tensorAgreement is codec c's calibration for sending tensor i alone: the
// one measured at the prefix cut whose boundary is tensor i, if any.
func (d *DAG) tensorAgreement(c *CodecModel, i int) Agreement {
	if i < len(d.cutOf) && d.cutOf[i] >= 0 {
		return c.AgreementAt(d.cutOf[i])
	}
	return Agreement{}
}

// setAgreement is codec c's calibration for the split onEdge of d, and
// whether the inputs' budget allows it: the split's sent tensors must be
// those of a calibrated prefix cut (the answer depends only on which
// tensors went through the codec, not on where the exact nodes ran).
func (in *Inputs) setAgreement(d *DAG, onEdge []bool, c *CodecModel) (Agreement, bool) {
	if c.Fidelity == Exact {
		return Agreement{}, true
	}
	var a Agreement
	if k, ok := prefixLen(onEdge); ok {
		a = c.AgreementAt(k)
	} else if k, ok := d.cutBySent[boundaryKey(d.sent(onEdge))]; ok {
		a = c.AgreementAt(k)
	}
	return a, c.Allows(in.Accuracy, a)
}

// prefixLen returns k when onEdge marks exactly the nodes [0,k).
func prefixLen(onEdge []bool) (int, bool) {
	k := 0
	for k < len(onEdge) && onEdge[k] {
		k++
	}
	for _, e := range onEdge[k:] {
		if e {
			return 0, false
		}
	}
	return k, true
}

// ratio is codec c's ratio on tensor i: the one measured at the prefix cut
// that sends tensor i alone when there is one, else the codec's overall
// ratio.
func (d *DAG) ratio(c *CodecModel, i int) float64 {
	if i < len(d.cutOf) && d.cutOf[i] >= 0 {
		return c.RatioAt(d.cutOf[i])
	}
	return c.Ratio
}

// Validate checks indices and order and returns an *InputError naming the
// first bad tensor.
func (d *DAG) Validate() error {
	if d.Nodes < 0 {
		return &InputError{"DAG.Nodes", "negative"}
	}
	for i, t := range d.Tensors {
		f := func() string { return fmt.Sprintf("DAG.Tensors[%d]", i) }
		if t.Producer < -1 || t.Producer >= d.Nodes {
			return &InputError{f() + ".Producer", fmt.Sprintf("%d out of range -1..%d", t.Producer, d.Nodes-1)}
		}
		if t.Bytes < 0 {
			return &InputError{f() + ".Bytes", "negative"}
		}
		for _, c := range t.Consumers {
			if c <= t.Producer || c >= d.Nodes {
				return &InputError{f() + ".Consumers", fmt.Sprintf("consumer %d not after producer %d and below %d", c, t.Producer, d.Nodes)}
			}
		}
	}
	return nil
}

// NewDAG builds the DAG of g, whose nodes must be in the order of p (the
// canonical order partition profiles in). Tensor sizes come from g.Shapes
// (float32; an unknown batch dimension counts as 1), falling back to the
// profile's OutBytes for single-output nodes and InputBytes for inputs.
func NewDAG(g *model.Graph, p *partition.Profile) (*DAG, error) {
	if g == nil || p == nil {
		return nil, fmt.Errorf("scheduler: NewDAG needs a graph and a profile")
	}
	if len(g.Nodes) != len(p.Nodes) {
		return nil, fmt.Errorf("scheduler: graph has %d nodes, profile %d", len(g.Nodes), len(p.Nodes))
	}
	for i, n := range g.Nodes {
		if n.Name != p.Nodes[i].Name {
			return nil, fmt.Errorf("scheduler: graph node %d is %q, profile node %d is %q (not the same order)", i, n.Name, i, p.Nodes[i].Name)
		}
	}
	d := &DAG{Nodes: len(g.Nodes)}
	idx := make(map[string]int)
	outputs := make(map[string]bool, len(g.Outputs))
	for _, o := range g.Outputs {
		outputs[o.Name] = true
	}
	size := func(name string, fallback int64) int64 {
		sh, ok := g.Shapes[name]
		if !ok {
			return fallback
		}
		b := int64(4)
		for _, x := range sh {
			if x > 0 {
				b *= int64(x)
			}
		}
		return b
	}
	var nIn int64
	for _, in := range g.Inputs {
		if !g.IsInitializer(in.Name) {
			nIn++
		}
	}
	for _, in := range g.Inputs {
		if g.IsInitializer(in.Name) {
			continue
		}
		idx[in.Name] = len(d.Tensors)
		d.Tensors = append(d.Tensors, Tensor{Name: in.Name, Bytes: size(in.Name, p.InputBytes/max(nIn, 1)), Producer: -1, Output: outputs[in.Name]})
	}
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in == "" || g.IsInitializer(in) {
				continue
			}
			j, ok := idx[in]
			if !ok {
				return nil, fmt.Errorf("scheduler: node %s reads %q before it is produced", n, in)
			}
			cs := d.Tensors[j].Consumers
			if len(cs) == 0 || cs[len(cs)-1] != i {
				d.Tensors[j].Consumers = append(cs, i)
			}
		}
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			fb := int64(0)
			if len(n.Outputs) == 1 {
				fb = p.Nodes[i].OutBytes
			}
			idx[o] = len(d.Tensors)
			d.Tensors = append(d.Tensors, Tensor{Name: o, Bytes: size(o, fb), Producer: i, Output: outputs[o]})
		}
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	d.indexCuts()
	return d, nil
}

// ChainDAG is the DAG of a model known only by its profile, read as a chain:
// node i reads what node i-1 made; the boundary bytes of cut K are the size
// of tensor K.
func ChainDAG(p *partition.Profile) *DAG {
	n := len(p.Nodes)
	d := &DAG{Nodes: n, Tensors: make([]Tensor, 0, n+1)}
	bytesAt := func(k int, fb int64) int64 {
		if k < len(p.Cuts) {
			return p.Cuts[k].Bytes
		}
		return fb
	}
	in := Tensor{Name: "input", Bytes: bytesAt(0, p.InputBytes), Producer: -1}
	if n > 0 {
		in.Consumers = []int{0}
	} else {
		in.Output = true
	}
	d.Tensors = append(d.Tensors, in)
	for i := 0; i < n; i++ {
		t := Tensor{Name: p.Nodes[i].Name, Producer: i}
		if i+1 < n {
			t.Bytes = bytesAt(i+1, p.Nodes[i].OutBytes)
			t.Consumers = []int{i + 1}
		} else {
			t.Bytes = p.OutputBytes
			t.Output = true
		}
		d.Tensors = append(d.Tensors, t)
	}
	d.indexCuts()
	return d
}

// Cuts returns the prefix cuts of d, K = 0..Nodes, with partition's
// definition of the boundary: tensors made before K (or graph inputs) that a
// node at or after K reads, or that are graph outputs.
func (d *DAG) Cuts() []partition.Cut {
	cuts := make([]partition.Cut, d.Nodes+1)
	for k := 0; k <= d.Nodes; k++ {
		c := partition.Cut{K: k}
		for _, t := range d.Tensors {
			if t.Producer >= k {
				continue
			}
			need := t.Output
			for _, x := range t.Consumers {
				if x >= k {
					need = true
				}
			}
			if need {
				c.Boundary = append(c.Boundary, t.Name)
				c.Bytes += t.Bytes
			}
		}
		cuts[k] = c
	}
	return cuts
}

// chain reports whether every down-set of d is a prefix (each tensor is read
// only by the node right after its producer), so prefix scans are complete.
func (d *DAG) chain() bool {
	for _, t := range d.Tensors {
		for _, c := range t.Consumers {
			if c != t.Producer+1 {
				return false
			}
		}
	}
	return true
}

// costSet predicts the latency of running the nodes marked onEdge on the
// edge and the rest on cl.
func (in *Inputs) costSet(d *DAG, onEdge []bool, c *CodecModel, cl *CloudInput) (Breakdown, int64, int64) {
	cp := cloudProfile(in, cl)
	var b Breakdown
	var tail time.Duration
	offload := false
	for i, e := range onEdge {
		if e {
			b.EdgeCompute += in.Edge.Nodes[i].Latency
		} else {
			tail += cp.Nodes[i].Latency
			offload = true
		}
	}
	if !offload {
		b.sum()
		return b, 0, 0
	}
	var raw, wire, result int64
	for i, t := range d.Tensors {
		made := t.Producer < 0 || onEdge[t.Producer]
		if !made {
			if t.Output {
				result += t.Bytes
			}
			continue
		}
		for _, x := range t.Consumers {
			if !onEdge[x] {
				raw += t.Bytes
				wire += int64(math.Ceil(float64(t.Bytes) / d.ratio(c, i)))
				break
			}
		}
	}
	b.Overhead = in.Overhead
	b.Encode = durOf(float64(raw) * perByte(c.EncodeBps))
	b.Uplink = cl.Link.upTime(wire)
	b.RTT = cl.Link.RTT
	b.Queue = cl.Queue
	b.CloudCompute = tail
	b.Decode = durOf(float64(raw) * perByte(c.DecodeBps))
	b.Downlink = cl.Link.downTime(result)
	b.sum()
	return b, raw, wire
}
