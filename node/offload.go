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

// callPeer sends a node protocol request to peer p with body (nil: none).
func (n *Node) callPeer(ctx context.Context, p Peer, req segmentRequest, body io.Reader) (*transport.Response, error) {
	hdr, err := req.marshal()
	if err != nil {
		return nil, err
	}
	return n.ep.Call(ctx, p.Meta.QUICAddr, &transport.Request{ID: n.edge.reqID.Add(1), Header: hdr}, body)
}

// offload sends the tail's inputs to the plan's cloud and fills res.
func (n *Node) offload(ctx context.Context, m *Model, p scheduler.Plan, h *headResult, res *InferResult) error {
	tail := tailSet(m, headSet(p))
	pr, err := m.pieceSet(tail)
	if err != nil {
		return err
	}
	tin := make([]*tensor.Dense, len(pr.piece.Graph.Inputs))
	for i, vi := range pr.piece.Graph.Inputs {
		t, ok := h.values[vi.Name]
		if !ok {
			return fmt.Errorf("node: boundary tensor %q missing", vi.Name)
		}
		tin[i] = t
	}
	preset, err := tensorcodec.ParsePreset(p.Codec)
	if err != nil {
		return err
	}
	encStart := time.Now()
	payload, _, err := tensorcodec.EncodePreset(nil, preset, tin...)
	if err != nil {
		return fmt.Errorf("node: encode boundary: %w", err)
	}
	encode := time.Since(encStart)
	peer, ok := n.members.Peer(p.Cloud)
	if !ok || !peer.Alive {
		return fmt.Errorf("node: cloud %s is gone", p.Cloud)
	}
	// Give the cloud a deadline proportional to the prediction so a stuck
	// cloud is abandoned in time to finish elsewhere.
	limit := 3*p.Predicted.Total + 500*time.Millisecond
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	link := n.linkTo(p.Cloud)
	est := n.linkEstimate(peer)
	loaded := link.busy()
	callStart := time.Now()
	up := link.upload(bytes.NewReader(payload))
	resp, err := n.callPeer(cctx, peer, segmentRequest{Op: opRun, Model: m.ID, Version: m.Version, Codec: p.Codec, Nodes: tail}, up)
	up.done()
	if err != nil {
		if transport.CodeOf(err) == transport.CodeDeadlineExceeded {
			// The boundary did not get through in time: whatever else went
			// wrong, the uplink delivered at most this much.
			link.observeUp(int64(len(payload)), time.Since(callStart), est.Up)
		}
		return err
	}
	rh, err := unmarshalSegmentResponse(resp.Header)
	if err != nil {
		resp.Body.Close()
		return fmt.Errorf("node: answer from %s: %w", p.Cloud, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	resp.Body.Close()
	if err != nil {
		return err
	}
	call := time.Since(callStart)
	decStart := time.Now()
	outs, err := tensorcodec.Decode(nil, body)
	if err != nil {
		return fmt.Errorf("node: result from %s: %w", p.Cloud, err)
	}
	if len(outs) != len(pr.piece.Graph.Outputs) {
		return fmt.Errorf("node: result from %s has %d tensors, want %d", p.Cloud, len(outs), len(pr.piece.Graph.Outputs))
	}
	decode := time.Since(decStart)
	for i, vi := range pr.piece.Graph.Outputs {
		h.values[vi.Name] = outs[i]
	}
	res.Outputs = res.Outputs[:0]
	for _, o := range m.Graph.Outputs {
		t, ok := h.values[o.Name]
		if !ok {
			return fmt.Errorf("node: output %q not produced", o.Name)
		}
		res.Outputs = append(res.Outputs, t)
	}
	q, c, d, e := rh.Queue, rh.Compute, rh.Decode, rh.Encode
	res.Measured = Measured{
		EdgeCompute: h.elapsed, Encode: encode, Queue: q, CloudCompute: c, Decode: d + e + decode,
		Transfer: max(0, call-q-c-d-e),
	}
	res.BytesSent = int64(len(payload))
	n.metrics.bytesSent.Add(float64(len(payload)))
	// Learn from what this send achieved: the codec's ratio at this cut,
	// the RTT and the uplink goodput.
	var raw int64
	for _, t := range tin {
		raw += int64(4 * t.Shape().TotalSize())
	}
	if p.K >= 0 {
		n.edge.tables[m.ID].observe(p.Codec, p.K, raw, int64(len(payload)))
	}
	down := time.Duration(float64(len(body)) / est.Down * float64(time.Second))
	link.learnUpload(int64(len(payload)), res.Measured.Transfer, down, est, rh, loaded)
	return nil
}
