package partition

import "time"

// NodeProfile is the measured and counted cost of one node of a graph, in the
// graph's canonical topological order.
type NodeProfile struct {
	Index    int           // position in the canonical topological order
	Name     string        // node name
	Op       string        // operator type
	Latency  time.Duration // median measured latency on the profiled device
	OutBytes int64         // bytes of the node's outputs (float32)
	MACs     int64         // multiply-accumulates
	Params   int64         // weight elements read by the node
}

// Cut describes position K: the first K nodes run before the boundary.
// Boundary lists every tensor produced before K (or a graph input) and
// consumed at or after K (or a graph output), in a deterministic order.
type Cut struct {
	K        int
	Boundary []string
	Bytes    int64 // total float32 bytes of the boundary tensors
}

// Single reports whether the boundary is exactly one tensor (a
// Neurosurgeon-style cut point).
func (c Cut) Single() bool { return len(c.Boundary) == 1 }

// Profile is a model's per-node cost on one device plus its cuts: everything
// the scheduler needs to predict the latency of a split. Cuts has one entry
// for every K in 0..len(Nodes).
type Profile struct {
	Model       string // model identifier (name or digest)
	Device      string // device class the latencies were measured on
	Nodes       []NodeProfile
	Cuts        []Cut
	InputBytes  int64 // bytes of the graph inputs
	OutputBytes int64 // bytes of the graph outputs
}

// HeadLatency is the summed latency of nodes [0, k).
func (p *Profile) HeadLatency(k int) time.Duration {
	var d time.Duration
	for _, n := range p.Nodes[:k] {
		d += n.Latency
	}
	return d
}

// TailLatency is the summed latency of nodes [k, len(Nodes)).
func (p *Profile) TailLatency(k int) time.Duration {
	var d time.Duration
	for _, n := range p.Nodes[k:] {
		d += n.Latency
	}
	return d
}
