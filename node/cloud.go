package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/transport"
	"github.com/edgesplit/edgesplit/transport/pki"
	"gorgonia.org/tensor"
)

// segmentServer is the serving side every node runs (clouds for edges):
// a bounded set of workers, how many requests wait for one, and the mean
// time a segment takes, all gossiped as the node's load.
type segmentServer struct {
	workers  chan struct{}
	waiting  atomic.Int64
	busy     atomic.Int64
	mu       sync.Mutex
	serviceT scheduler.EWMA // mean segment service time, ns (guarded by mu)
}

func newSegmentServer(workers int) *segmentServer {
	s := &segmentServer{workers: make(chan struct{}, workers)}
	s.serviceT.Alpha = 0.2
	return s
}

// observe folds one segment's service time into the mean.
func (s *segmentServer) observe(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serviceT.Add(float64(d))
}

// load is what the node gossips of its server: requests waiting for a
// worker, the fraction of workers busy and the mean service time in µs.
func (s *segmentServer) load() (queue int, load float64, serviceMicros int64) {
	queue = int(s.waiting.Load())
	load = float64(s.busy.Load()) / float64(cap(s.workers))
	s.mu.Lock()
	serviceMicros = int64(s.serviceT.Value() / 1e3)
	s.mu.Unlock()
	return queue, load, serviceMicros
}

// resultPreset encodes results (logits; small) without loss.
const resultPreset = tensorcodec.PresetLossless

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// serveSegment is the node's transport handler: it decodes the node
// protocol's request header (protocol.go), answers probes, profile and
// calibration requests, and runs segments.
func (n *Node) serveSegment(ctx context.Context, treq *transport.Request, body io.Reader, w transport.ResponseWriter) error {
	req, err := unmarshalSegmentRequest(treq.Header)
	if err != nil {
		return transport.Errorf(transport.CodeBadRequest, "%v", err)
	}
	switch req.Op {
	case opModelEntry, opModelChunk, opModelLoad:
		return n.serveModelOp(ctx, req, w)
	}
	m, ok := n.lookup(req.Model, req.Version)
	if !ok {
		if req.Version != "" {
			return transport.Errorf(transport.CodeNotFound, "model %q version %s not held by %s", req.Model, req.Version, n.cfg.Name)
		}
		return transport.Errorf(transport.CodeNotFound, "model %q not held by %s", req.Model, n.cfg.Name)
	}
	if req.Op == opRun || req.Op == opProbe || req.Op == opRunVia || req.Op == opGenerate || req.Op == opGenerateEnd {
		// Segments and probes carry activations: only edges (and edge
		// servers, sending on what follows their piece) send them; a
		// piece to send on is asked of edge servers by edges only.
		if info, _ := transport.PeerFromContext(ctx); info.Role != pki.RoleEdge &&
			(info.Role != pki.RoleEdgeServer || req.Op == opRunVia) {
			n.refuseCaller(info, "segments and probes are served to edge certificates only")
			return transport.Errorf(transport.CodeUnauthenticated, "%s serves segments to edges only; the caller %q has role %q", n.cfg.Name, info.Name, info.Role)
		}
	}
	switch req.Op {
	case opProbe:
		rc := &recvClock{r: body}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return err
		}
		var hdr segmentResponse
		rc.report(&hdr)
		w.SetHeader(hdr.marshal())
		_, err := w.Write([]byte{0})
		return err
	case opCalibration:
		return n.serveCalibration(m, w)
	case opProfile:
		b, err := json.Marshal(n.profileOf(m))
		if err != nil {
			return transport.Errorf(transport.CodeInternal, "profile: %v", err)
		}
		_, err = w.Write(b)
		return err
	}
	if req.Op == opGenerate || req.Op == opGenerateEnd {
		if n.cfg.Role != RoleCloud {
			return transport.Errorf(transport.CodeBadRequest, "%s is a %s, not a cloud: it serves no generations", n.cfg.Name, n.cfg.Role)
		}
		return n.serveGenerate(ctx, m, req, body, w)
	}
	if req.Op == opRunVia {
		if n.cfg.Role != RoleEdgeServer {
			return transport.Errorf(transport.CodeBadRequest, "%s is a %s, not an edge server: it sends nothing on", n.cfg.Name, n.cfg.Role)
		}
		return n.runVia(ctx, m, req, body, w)
	}
	return n.runSegment(ctx, m, req, body, w)
}

// runSegment runs the request's node set of m on the body's tensors and
// answers the outputs, with the cloud's timings in the response header.
func (n *Node) runSegment(ctx context.Context, m *Model, req segmentRequest, body io.Reader, w transport.ResponseWriter) error {
	code := "ok"
	defer func() { n.metrics.segments.WithLabelValues(code).Inc() }()

	idx := req.Nodes
	if last := idx[len(idx)-1]; last >= m.Nodes() {
		code = "bad_request"
		return transport.Errorf(transport.CodeBadRequest, "node set reaches node %d of a %d-node model", last, m.Nodes())
	}
	pr, err := m.pieceSet(idx)
	if err != nil {
		code = "bad_request"
		return transport.Errorf(transport.CodeBadRequest, "segment of model %s: %v", m.ID, err)
	}

	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	hdr, wait, release, c, err := n.acceptSegment(ctx, pr, body, buf)
	if err != nil {
		code = c
		return err
	}
	defer release()

	start := time.Now()
	inputs, c, err := decodeSegment(buf.Bytes(), pr)
	if err != nil {
		code = c
		return err
	}
	decoded := time.Now()
	outs, err := pr.run(ctx, inputs)
	if err == nil {
		err = n.cfg.Device.Emulate(ctx, time.Since(decoded), n.deviceLatency(m, idx))
	}
	if err != nil {
		if ctx.Err() != nil {
			code = "deadline"
			return transport.Errorf(transport.CodeDeadlineExceeded, "running segment: %v", context.Cause(ctx))
		}
		code = "run"
		return transport.Errorf(transport.CodeInternal, "running segment: %v", err)
	}
	computed := time.Now()
	res, _, err := tensorcodec.EncodePreset(nil, resultPreset, outs...)
	if err != nil {
		code = "encode"
		return transport.Errorf(transport.CodeInternal, "encoding result: %v", err)
	}
	encoded := time.Now()
	n.metrics.segmentTime.Observe(encoded.Sub(start).Seconds())
	n.srv.observe(encoded.Sub(start))
	hdr.Queue, hdr.Decode = wait, decoded.Sub(start)
	hdr.Compute, hdr.Encode = computed.Sub(decoded), encoded.Sub(computed)
	hdr.Version = m.Version
	w.SetHeader(hdr.marshal())
	_, err = w.Write(res)
	return err
}

// acceptSegment reads a segment's body into buf and waits for a worker.
// The segment's inputs have static shapes: no honest encoding of them is
// longer than their raw bytes plus the codec's overhead, so the body is
// read only that far (a garbage body costs that, not transport's whole
// body limit). It returns the body's arrival timing, the time waited for
// the worker and the worker's release, or the metrics code and error.
func (n *Node) acceptSegment(ctx context.Context, pr *pieceRunner, body io.Reader, buf *bytes.Buffer) (hdr segmentResponse, wait time.Duration, release func(), code string, err error) {
	limit := maxSegmentBody(pr.piece.Graph.Inputs)
	buf.Reset()
	rc := &recvClock{r: body}
	if _, err := buf.ReadFrom(io.LimitReader(rc, limit+1)); err != nil {
		return hdr, 0, nil, "body", err
	}
	if int64(buf.Len()) > limit {
		return hdr, 0, nil, "too_large", transport.Errorf(transport.CodeTooLarge, "payload over %d bytes, the most the segment's inputs %s can encode to", limit, shapesOf(pr.piece.Graph.Inputs))
	}
	rc.report(&hdr)
	wait, release, code, err = n.acquireWorker(ctx)
	return hdr, wait, release, code, err
}

// acquireWorker waits for one of the node's segment workers (or ctx's
// end); it returns the time waited and the worker's release, or the
// metrics code and error.
func (n *Node) acquireWorker(ctx context.Context) (wait time.Duration, release func(), code string, err error) {
	queued := time.Now()
	n.srv.waiting.Add(1)
	n.metrics.queueDepth.Inc()
	select {
	case n.srv.workers <- struct{}{}:
	case <-ctx.Done():
		n.srv.waiting.Add(-1)
		n.metrics.queueDepth.Dec()
		return 0, nil, "deadline", transport.Errorf(transport.CodeDeadlineExceeded, "queued for %v on %s", time.Since(queued), n.cfg.Name)
	}
	n.srv.waiting.Add(-1)
	n.metrics.queueDepth.Dec()
	n.srv.busy.Add(1)
	return time.Since(queued), func() {
		n.srv.busy.Add(-1)
		<-n.srv.workers
	}, "", nil
}

// decodeSegment decodes a segment's body and checks it against piece pr's
// inputs; on error it returns the metrics code too.
func decodeSegment(b []byte, pr *pieceRunner) ([]*tensor.Dense, string, error) {
	inputs, err := tensorcodec.Decode(nil, b)
	if err != nil {
		return nil, "decode", transport.Errorf(transport.CodeBadRequest, "payload: %v", err)
	}
	if err := checkInputs(pr.piece.Graph.Inputs, inputs); err != nil {
		return nil, "bad_request", transport.Errorf(transport.CodeBadRequest, "%v", err)
	}
	return inputs, "", nil
}

// maxSegmentBody bounds an encoded message of tensors of the inputs'
// shapes: their float32 bytes, 1/64 more (entropy coders' worst-case
// expansion is far less) and 64 KiB of headers, parameters and tables. A
// shape with a dynamic dimension is bounded by the codec's own limit.
func maxSegmentBody(inputs []model.ValueInfo) int64 {
	var raw int64
	for _, vi := range inputs {
		n := int64(4)
		for _, d := range vi.Shape {
			if d <= 0 {
				return int64(tensorcodec.DefaultLimits().MaxBytes)
			}
			n *= int64(d)
		}
		raw += n
	}
	return raw + raw/64 + 64<<10
}

func shapesOf(inputs []model.ValueInfo) string {
	s := make([]string, len(inputs))
	for i, vi := range inputs {
		s[i] = fmt.Sprint(vi.Shape)
	}
	return strings.Join(s, ", ")
}

// checkInputs verifies decoded tensors against a piece's inputs.
func checkInputs(want []model.ValueInfo, got []*tensor.Dense) error {
	if len(got) != len(want) {
		return fmt.Errorf("payload has %d tensors, the segment takes %d", len(got), len(want))
	}
	for i, vi := range want {
		s := got[i].Shape()
		if !slices.Equal([]int(s), vi.Shape) {
			return fmt.Errorf("tensor %d (%s): shape %v, the segment wants %v", i, vi.Name, []int(s), vi.Shape)
		}
	}
	return nil
}
