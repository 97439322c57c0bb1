package scheduler

import (
	"math"
	"time"
)

// ServerInput is an edge server, as an edge sees it: the server itself (its
// profile of the model, the edge's link to it, its queue) and the clouds
// it can send on to, each with the server's link to it (as the server
// measured and gossiped it) and the cloud's profile and queue.
type ServerInput struct {
	CloudInput
	Next []CloudInput
	// Correction is what the edge learned its three-tier exchanges through
	// this server take beyond the prediction of the server's piece and the
	// second hop (measured minus predicted, averaged; may be negative): the
	// second hop is predicted on the link the server measured, which its
	// probes can misjudge.
	Correction time.Duration
}

// ThreeTier plans with two cuts (PipeEdge, EdgeShard): nodes [0, K) on the
// edge, [K, K2) on an edge server, [K2, N) on a cloud behind it, scanning
// every pair of prefix cuts 0 ≤ K < K2 < N, every server and cloud, and
// every pair of codecs of which at most one is not exact (a calibration
// measures one lossy boundary on exact activations: with two lossy
// boundaries the second would see activations it was not measured on).
// Cuts whose server piece would produce a model output are skipped (the
// server answers the cloud's outputs and its own only through the edge's
// boundary set, see node). It returns the cheapest plan under the
// objective, or false when no server and cloud can carry one.
func (in *Inputs) ThreeTier(policy string) (Plan, bool) {
	n := len(in.Edge.Nodes)
	cs := in.codecs()
	var best Plan
	found := false
	for si := range in.Servers {
		s := &in.Servers[si]
		if s.Unavailable || s.Profile == nil || len(s.Profile.Nodes) != n {
			continue
		}
		for ci := range s.Next {
			cl := &s.Next[ci]
			if cl.Unavailable || cl.Profile == nil || len(cl.Profile.Nodes) != n {
				continue
			}
			for k1 := 0; k1 < n; k1++ {
				for k2 := k1 + 1; k2 < n; k2++ {
					if in.outputBetween(k1, k2) {
						continue
					}
					for j1 := range cs {
						c1 := &cs[j1]
						if !c1.AllowedAt(k1, in.Accuracy) {
							continue
						}
						for j2 := range cs {
							c2 := &cs[j2]
							if !c2.AllowedAt(k2, in.Accuracy) || c1.Fidelity != Exact && c2.Fidelity != Exact {
								continue
							}
							b, raw1, wire1, raw2, wire2 := in.costThree(k1, k2, c1, c2, s, cl)
							if found && !in.cheaper(b, &s.CloudInput, best.Predicted, in.serverInput(best.Via)) {
								continue
							}
							lossy, k := c1, k1
							if c1.Fidelity == Exact {
								lossy, k = c2, k2
							}
							best = Plan{Policy: policy, K: k1, Codec: c1.Name, Cloud: cl.ID, Bytes: raw1, WireBytes: wire1,
								Predicted: b, Energy: in.energyOf(b, &s.CloudInput), Accuracy: accuracyOf(lossy, lossy.AgreementAt(k), in.Accuracy),
								Via: s.ID, K2: k2, Codec2: c2.Name, Bytes2: raw2, WireBytes2: wire2}
							found = true
						}
					}
				}
			}
		}
	}
	return best, found
}

func (in *Inputs) serverInput(id string) *CloudInput {
	for i := range in.Servers {
		if in.Servers[i].ID == id {
			return &in.Servers[i].CloudInput
		}
	}
	return nil
}

// outputBetween reports whether a model output is produced by a node in
// [k1, k2) of the canonical order (needs the DAG; false without one).
func (in *Inputs) outputBetween(k1, k2 int) bool {
	if in.DAG == nil {
		return false
	}
	for i := range in.DAG.Tensors {
		t := &in.DAG.Tensors[i]
		if t.Output && t.Producer >= k1 && t.Producer < k2 {
			return true
		}
	}
	return false
}

// costThree predicts a three-tier plan: the edge's head [0, k1) and its
// boundary over the edge's link to server s with codec c1; the server's
// piece [k1, k2) and its boundary over its link to cloud cl with c2; the
// cloud's piece; the result back through the server.
func (in *Inputs) costThree(k1, k2 int, c1, c2 *CodecModel, s *ServerInput, cl *CloudInput) (b Breakdown, raw1, wire1, raw2, wire2 int64) {
	b.Overhead = in.Overhead
	b.EdgeCompute = in.Edge.HeadLatency(k1)
	raw1 = in.Edge.Cuts[k1].Bytes
	wire1 = int64(math.Ceil(float64(raw1) / c1.RatioAt(k1)))
	b.Encode = durOf(float64(raw1) * perByte(c1.EncodeBps))
	b.Uplink = s.Link.upTime(wire1)
	b.RTT = s.Link.RTT
	b.Queue = s.Queue
	b.Decode = durOf(float64(raw1) * perByte(c1.DecodeBps))
	raw2 = in.Edge.Cuts[k2].Bytes
	wire2 = int64(math.Ceil(float64(raw2) / c2.RatioAt(k2)))
	b.Server = s.Profile.HeadLatency(k2) - s.Profile.HeadLatency(k1) + durOf(float64(raw2)*perByte(c2.EncodeBps))
	b.Hop2 = cl.Link.upTime(wire2) + cl.Link.RTT + cl.Queue + cl.Profile.TailLatency(k2) +
		durOf(float64(raw2)*perByte(c2.DecodeBps)) + cl.Link.downTime(in.Edge.OutputBytes)
	b.Hop2 = max(0, b.Hop2+s.Correction)
	b.Downlink = s.Link.downTime(in.Edge.OutputBytes)
	b.sum()
	return b, raw1, wire1, raw2, wire2
}

// HopLink is an edge server's gossiped link to a cloud as a LinkEstimate
// (rates in kbit/s, RTT in µs; a rate of 0 is unknown: 1 kbit/s, so the
// hop is never assumed free).
func HopLink(upKbps, downKbps, rttMicros int64) LinkEstimate {
	l := LinkEstimate{RTT: time.Duration(rttMicros) * time.Microsecond, Up: float64(max(upKbps, 1)) * 1e3 / 8, Down: float64(max(downKbps, 1)) * 1e3 / 8}
	return l
}
