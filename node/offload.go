package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/transport"
	"gorgonia.org/tensor"
)

// offload sends the tail's inputs to the plan's cloud and fills res, in
// four steps: encode the boundary, call the cloud, decode its answer, learn
// from the exchange.
//
// It returns the plan that answered: p, or p on the hedge's cloud when a
// slow primary was overtaken (hedge.go).
func (n *Node) offload(ctx context.Context, m *Model, p scheduler.Plan, h *headResult, res *InferResult) (scheduler.Plan, error) {
	tail := tailSet(m, headSet(p))
	pr, err := m.pieceSet(tail)
	if err != nil {
		return p, err
	}
	b, err := encodeBoundary(pr, h, p.Codec)
	if err != nil {
		return p, err
	}
	x, p, err := n.callHedged(ctx, m, p, tail, b, maxSegmentBody(pr.piece.Graph.Outputs))
	if err != nil {
		return p, err
	}
	decStart := time.Now()
	outs, err := tensorcodec.Decode(nil, x.body)
	if err != nil {
		return p, fmt.Errorf("node: result from %s: %w", p.Target(), err)
	}
	if err := checkInputs(pr.piece.Graph.Outputs, outs); err != nil {
		return p, fmt.Errorf("node: result from %s does not fit the tail's outputs: %w", p.Target(), err)
	}
	decode := time.Since(decStart)
	for i, vi := range pr.piece.Graph.Outputs {
		h.values[vi.Name] = outs[i]
	}
	res.Outputs = res.Outputs[:0]
	for _, o := range m.Graph.Outputs {
		t, ok := h.values[o.Name]
		if !ok {
			return p, fmt.Errorf("node: output %q not produced", o.Name)
		}
		res.Outputs = append(res.Outputs, t)
	}
	q, c, d, e := x.hdr.Queue, x.hdr.Compute, x.hdr.Decode, x.hdr.Encode
	res.Measured = Measured{
		Planning: res.Measured.Planning, EdgeCompute: h.elapsed, Encode: b.encode, Queue: q, CloudCompute: c, Decode: d + e + decode,
		Transfer: max(0, x.took-q-c-d-e),
	}
	res.BytesSent = int64(len(b.payload))
	res.TailVersion = x.hdr.Version
	n.metrics.bytesSent.Add(float64(len(b.payload)))
	n.learnOffload(m, p, b, x, res.Measured.Transfer)
	if p.Via != "" {
		// The server's compute time holds its piece and the second hop.
		n.learnVia(p.Via, x.hdr.Compute+x.hdr.Encode-p.Predicted.Server-p.Predicted.Hop2)
	}
	return p, nil
}

// boundary is a tail's inputs encoded for the wire.
type boundary struct {
	payload []byte
	raw     int64         // bytes as float32
	encode  time.Duration // time encoding took
}

// encodeBoundary encodes the inputs of tail piece pr, found among the
// head's values, with the codec preset.
func encodeBoundary(pr *pieceRunner, h *headResult, codec string) (boundary, error) {
	tin := make([]*tensor.Dense, len(pr.piece.Graph.Inputs))
	for i, vi := range pr.piece.Graph.Inputs {
		t, ok := h.values[vi.Name]
		if !ok {
			return boundary{}, fmt.Errorf("node: boundary tensor %q missing", vi.Name)
		}
		tin[i] = t
	}
	preset, err := tensorcodec.ParsePreset(codec)
	if err != nil {
		return boundary{}, err
	}
	start := time.Now()
	payload, _, err := tensorcodec.EncodePreset(nil, preset, tin...)
	if err != nil {
		return boundary{}, fmt.Errorf("node: encode boundary: %w", err)
	}
	b := boundary{payload: payload, encode: time.Since(start)}
	for _, t := range tin {
		b.raw += int64(4 * t.Shape().TotalSize())
	}
	return b, nil
}

// exchange is what one call to a cloud brought back, and what the edge
// knew of the link when it left.
type exchange struct {
	hdr    segmentResponse
	body   []byte
	took   time.Duration // from sending to the answer's end
	link   *linkEstimate
	est    scheduler.LinkEstimate // the estimate before the call
	loaded bool                   // another upload of the edge's was in flight
}

// callCloud sends the boundary to the plan's cloud to run the tail node
// set, under a deadline proportional to the prediction so that a stuck
// cloud is abandoned in time to finish elsewhere, and reads its answer.
// The answer is read up to maxResult bytes (its outputs' largest encoding).
func (n *Node) callCloud(ctx context.Context, m *Model, p scheduler.Plan, tail []int, b boundary, maxResult int64) (exchange, error) {
	target := p.Target()
	peer, ok := n.members.Peer(target)
	if !ok || !peer.Alive {
		return exchange{}, fmt.Errorf("node: cloud %s is gone", target)
	}
	limit := 3*p.Predicted.Total + 500*time.Millisecond
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	callDeadline, _ := cctx.Deadline() // the client's, when it comes first
	x := exchange{link: n.linkTo(target), est: n.linkEstimate(peer)}
	x.loaded = x.link.busy()
	callStart := time.Now()
	up := x.link.upload(bytes.NewReader(b.payload))
	req := segmentRequest{Op: opRun, Model: m.ID, Version: m.Version, Codec: p.Codec, Nodes: tail}
	if p.Via != "" {
		// Three tiers: the edge server runs up to K2 and sends the rest on.
		req.Op, req.Split, req.Next, req.Codec2 = opRunVia, p.K2, p.Cloud, p.Codec2
	}
	resp, err := n.callPeer(cctx, peer, req, up)
	up.done()
	if err != nil {
		if transport.CodeOf(err) == transport.CodeDeadlineExceeded {
			// The boundary did not get through in time: whatever else went
			// wrong, the uplink delivered at most this much.
			x.link.observeUp(int64(len(b.payload)), time.Since(callStart), x.est.Up)
			// The cloud stops at the deadline it was given and may say so
			// a moment before the edge's own timer fires: when that was the
			// client's deadline, it is the client's, not the cloud's fault.
			if dl, ok := ctx.Deadline(); ok && !dl.After(callDeadline) {
				return exchange{}, fmt.Errorf("%w: %w", errClientDeadline, err)
			}
		}
		return exchange{}, err
	}
	if x.hdr, err = unmarshalSegmentResponse(resp.Header); err != nil {
		resp.Body.Close()
		return exchange{}, fmt.Errorf("node: answer from %s: %w", target, err)
	}
	if x.hdr.Version != m.Version {
		// Never mix versions in one answer: the tail must be the head's.
		resp.Body.Close()
		return exchange{}, fmt.Errorf("node: %s ran version %q of model %s, this request's is %s", target, x.hdr.Version, m.ID, m.Version)
	}
	x.body, err = io.ReadAll(io.LimitReader(resp.Body, maxResult+1))
	resp.Body.Close()
	if err != nil {
		return exchange{}, err
	}
	if int64(len(x.body)) > maxResult {
		return exchange{}, fmt.Errorf("node: answer from %s over %d bytes, the most the tail's outputs encode to", target, maxResult)
	}
	x.took = time.Since(callStart)
	return x, nil
}

// learnOffload learns from what one offload achieved: the codec's ratio at
// this cut, the RTT and the uplink goodput (transfer: the exchange's
// network time).
func (n *Node) learnOffload(m *Model, p scheduler.Plan, b boundary, x exchange, transfer time.Duration) {
	if p.K >= 0 {
		n.state(m).table.observe(p.Codec, p.K, b.raw, int64(len(b.payload)))
	}
	down := time.Duration(float64(len(x.body)) / x.est.Down * float64(time.Second))
	x.link.learnUpload(int64(len(b.payload)), transfer, down, x.est, x.hdr, x.loaded)
}
