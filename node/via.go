package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/transport"
	"gorgonia.org/tensor"
)

// runVia is an edge server's part of a three-tier plan (opRunVia): it runs
// the request's nodes below req.Split on the edge's boundary, sends the
// boundary of the rest in req.Codec2 to the cloud req.Next, and answers the
// whole set's outputs — its own and the cloud's — as runSegment would, so
// the edge sees one piece [K, N). When the cloud fails (down, refusing,
// late, another version), the server runs the rest itself: a failure of
// the second hop costs time, never the answer.
func (n *Node) runVia(ctx context.Context, m *Model, req segmentRequest, body io.Reader, w transport.ResponseWriter) error {
	code := "ok"
	defer func() { n.metrics.segments.WithLabelValues(code).Inc() }()
	idx := req.Nodes
	if last := idx[len(idx)-1]; last >= m.Nodes() {
		code = "bad_request"
		return transport.Errorf(transport.CodeBadRequest, "node set reaches node %d of a %d-node model", last, m.Nodes())
	}
	split, _ := slices.BinarySearch(idx, req.Split)
	all, err := m.pieceSet(idx)
	var mid, rest *pieceRunner
	if err == nil {
		mid, err = m.pieceSet(idx[:split])
	}
	if err == nil {
		rest, err = m.pieceSet(idx[split:])
	}
	if err != nil {
		code = "bad_request"
		return transport.Errorf(transport.CodeBadRequest, "segment of model %s: %v", m.ID, err)
	}
	preset, err := tensorcodec.ParsePreset(req.Codec2)
	if err != nil {
		code = "bad_request"
		return transport.Errorf(transport.CodeBadRequest, "codec2: %v", err)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	hdr, wait, release, c, err := n.acceptSegment(ctx, all, body, buf)
	if err != nil {
		code = c
		return err
	}
	defer release()

	start := time.Now()
	inputs, c, err := decodeSegment(buf.Bytes(), all)
	if err != nil {
		code = c
		return err
	}
	values := make(map[string]*tensor.Dense, len(inputs))
	for i, vi := range all.piece.Graph.Inputs {
		values[vi.Name] = inputs[i]
	}
	decoded := time.Now()
	if err := n.runPieceOn(ctx, m, mid, idx[:split], values); err != nil {
		code = "run"
		if ctx.Err() != nil {
			code = "deadline"
			return transport.Errorf(transport.CodeDeadlineExceeded, "running segment: %v", context.Cause(ctx))
		}
		return transport.Errorf(transport.CodeInternal, "running segment: %v", err)
	}
	if err := n.sendOn(ctx, m, req.Next, rest, idx[split:], preset, values); err != nil {
		n.log.Warn("the cloud behind this edge server failed; running its piece here", "cloud", req.Next, "err", err)
		n.metrics.viaFallbacks.Inc()
		if err := n.runPieceOn(ctx, m, rest, idx[split:], values); err != nil {
			code = "run"
			if ctx.Err() != nil {
				code = "deadline"
				return transport.Errorf(transport.CodeDeadlineExceeded, "running segment: %v", context.Cause(ctx))
			}
			return transport.Errorf(transport.CodeInternal, "running segment: %v", err)
		}
	}
	computed := time.Now()
	outs := make([]*tensor.Dense, len(all.piece.Graph.Outputs))
	for i, vi := range all.piece.Graph.Outputs {
		if outs[i] = values[vi.Name]; outs[i] == nil {
			code = "run"
			return transport.Errorf(transport.CodeInternal, "output %q of the segment was not produced", vi.Name)
		}
	}
	res, _, err := tensorcodec.EncodePreset(nil, resultPreset, outs...)
	if err != nil {
		code = "encode"
		return transport.Errorf(transport.CodeInternal, "encoding result: %v", err)
	}
	encoded := time.Now()
	n.metrics.segmentTime.Observe(encoded.Sub(start).Seconds())
	n.srv.observe(encoded.Sub(start))
	// Compute holds the server's piece and the second hop: the edge
	// derives its own link's time from what is left.
	hdr.Queue, hdr.Decode = wait, decoded.Sub(start)
	hdr.Compute, hdr.Encode = computed.Sub(decoded), encoded.Sub(computed)
	hdr.Version = m.Version
	w.SetHeader(hdr.marshal())
	_, err = w.Write(res)
	return err
}

// runPieceOn runs piece pr of m on the tensors it needs from values
// (device-stretched) and adds its outputs to values.
func (n *Node) runPieceOn(ctx context.Context, m *Model, pr *pieceRunner, set []int, values map[string]*tensor.Dense) error {
	in := make([]*tensor.Dense, len(pr.piece.Graph.Inputs))
	for i, vi := range pr.piece.Graph.Inputs {
		if in[i] = values[vi.Name]; in[i] == nil {
			return fmt.Errorf("node: tensor %q of the piece is missing", vi.Name)
		}
	}
	start := time.Now()
	outs, err := pr.run(ctx, in)
	if err != nil {
		return err
	}
	if err := n.cfg.Device.Emulate(ctx, time.Since(start), n.deviceLatency(m, set)); err != nil {
		return err
	}
	for i, vi := range pr.piece.Graph.Outputs {
		values[vi.Name] = outs[i]
	}
	return nil
}

// sendOn sends the inputs of piece rest (node set set) from values to the
// cloud next and adds the cloud's outputs to values.
func (n *Node) sendOn(ctx context.Context, m *Model, next string, rest *pieceRunner, set []int, preset tensorcodec.Preset, values map[string]*tensor.Dense) error {
	peer, ok := n.members.Peer(next)
	if !ok || !n.usableCloud(peer, m) || peer.Meta.Role != RoleCloud {
		return fmt.Errorf("%s is not a live cloud serving %s@%s", next, m.ID, m.Version)
	}
	in := make([]*tensor.Dense, len(rest.piece.Graph.Inputs))
	for i, vi := range rest.piece.Graph.Inputs {
		if in[i] = values[vi.Name]; in[i] == nil {
			return fmt.Errorf("boundary tensor %q missing", vi.Name)
		}
	}
	payload, _, err := tensorcodec.EncodePreset(nil, preset, in...)
	if err != nil {
		return fmt.Errorf("encode boundary: %w", err)
	}
	link := n.linkTo(peer.Name)
	est := n.linkEstimate(peer)
	loaded := link.busy()
	callStart := time.Now()
	up := link.upload(bytes.NewReader(payload))
	resp, err := n.callPeer(ctx, peer, segmentRequest{Op: opRun, Model: m.ID, Version: m.Version, Codec: preset.String(), Nodes: set}, up)
	up.done()
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rh, err := unmarshalSegmentResponse(resp.Header)
	if err != nil {
		return fmt.Errorf("answer from %s: %w", peer.Name, err)
	}
	if rh.Version != m.Version {
		return fmt.Errorf("%s ran version %q of model %s, this request's is %s", peer.Name, rh.Version, m.ID, m.Version)
	}
	maxResult := maxSegmentBody(rest.piece.Graph.Outputs)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResult+1))
	if err != nil {
		return err
	}
	if int64(len(body)) > maxResult {
		return fmt.Errorf("answer from %s over %d bytes", peer.Name, maxResult)
	}
	took := time.Since(callStart)
	outs, err := tensorcodec.Decode(nil, body)
	if err != nil {
		return fmt.Errorf("result from %s: %w", peer.Name, err)
	}
	if err := checkInputs(rest.piece.Graph.Outputs, outs); err != nil {
		return fmt.Errorf("result from %s does not fit the piece's outputs: %w", peer.Name, err)
	}
	for i, vi := range rest.piece.Graph.Outputs {
		values[vi.Name] = outs[i]
	}
	network := max(0, took-rh.Queue-rh.Compute-rh.Decode-rh.Encode)
	down := time.Duration(float64(len(body)) / est.Down * float64(time.Second))
	link.learnUpload(int64(len(payload)), network, down, est, rh, loaded)
	return nil
}

// hops are an edge server's estimates of its links to the clouds it sends
// pieces on to (at most maxHops, by name), rounded so that gossip carries
// a change only when it matters: rates to 2 significant digits, RTTs to
// 0.1 ms.
func (n *Node) hops() []Hop {
	var out []Hop
	for _, p := range n.members.Peers() {
		if !n.usableCloud(p, nil) {
			continue
		}
		le := n.linkEstimate(p)
		out = append(out, Hop{Cloud: p.Name, UpKbps: round2(int64(le.Up * 8 / 1e3)), DnKbps: round2(int64(le.Down * 8 / 1e3)),
			RTTus: le.RTT.Microseconds() / 100 * 100})
	}
	slices.SortFunc(out, func(a, b Hop) int { return cmpString(a.Cloud, b.Cloud) })
	if len(out) > maxHops {
		out = out[:maxHops]
	}
	return out
}

// round2 rounds v to two significant decimal digits.
func round2(v int64) int64 {
	p := int64(1)
	for v/p >= 100 {
		p *= 10
	}
	return (v + p/2) / p * p
}

// maxViaCorrection bounds the learned correction of an edge server's second
// hop (either way), so one stalled exchange cannot push the server out of
// plans for long.
const maxViaCorrection = time.Second

// learnVia folds in one three-tier exchange through server: how much longer
// (or shorter) its piece and second hop took than predicted. The
// prediction it is compared with already carries the correction, so the
// average converges on the part still missing.
func (n *Node) learnVia(server string, residual time.Duration) {
	n.learnCorrection(n.edge.viaCorr, server, residual)
}

// viaCorrection is the learned correction of server's second hop.
func (n *Node) viaCorrection(server string) time.Duration {
	return n.correction(n.edge.viaCorr, server)
}

// learnCorrection folds residual (measured − predicted, the prediction
// already corrected by what m holds for key) into m's average for key,
// bounded by ±maxViaCorrection.
func (n *Node) learnCorrection(m map[string]*scheduler.EWMA, key string, residual time.Duration) {
	n.edge.viaMu.Lock()
	defer n.edge.viaMu.Unlock()
	e := m[key]
	if e == nil {
		if len(m) >= 256 {
			clear(m)
		}
		e = &scheduler.EWMA{Alpha: 0.3}
		m[key] = e
	}
	prev := time.Duration(e.Value())
	next := max(-maxViaCorrection, min(maxViaCorrection, prev+residual))
	e.Add(float64(next))
}

// correction is m's learned correction for key (0 before any exchange).
func (n *Node) correction(m map[string]*scheduler.EWMA, key string) time.Duration {
	n.edge.viaMu.Lock()
	defer n.edge.viaMu.Unlock()
	if e := m[key]; e != nil {
		return time.Duration(e.Value())
	}
	return 0
}
