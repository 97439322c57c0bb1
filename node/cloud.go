package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/transport"
	"gorgonia.org/tensor"
)

// Request metadata keys of the node protocol, carried in transport.Request.Meta
// and transport.Response.Meta.
const (
	metaOp      = "op"    // "profile" asks for the model's profile; absent = run
	metaNodes   = "nodes" // node set of a DAG cut's cloud side, as ranges "0-3,5"
	metaQueue   = "q"     // ns waited for a worker
	metaCompute = "c"     // ns running the segment (device-stretched)
	metaDecode  = "d"     // ns decoding the request payload
	metaEncode  = "e"     // ns encoding the result
	metaRecv    = "r"     // "ns,bytes": the request body's arrival after its first read (see recvClock)
	opProfile   = "profile"
	opProbe     = "probe" // body is discarded: lets an edge measure the link while it computes locally
)

// resultPreset encodes results (logits; small) without loss.
const resultPreset = tensorcodec.PresetLossless

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func profileDigest(ps map[string]*partition.Profile) string {
	ids := make([]string, 0, len(ps))
	for id := range ps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	h := sha256.New()
	for _, id := range ids {
		b, _ := json.Marshal(ps[id])
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// serveSegment is the node's transport handler: it answers profile requests
// and runs segments.
func (n *Node) serveSegment(ctx context.Context, req *transport.Request, body io.Reader, w transport.ResponseWriter) error {
	m, ok := n.models[req.Model]
	if !ok {
		return transport.Errorf(transport.CodeNotFound, "model %q not held by %s", req.Model, n.cfg.Name)
	}
	if req.Version != "" && req.Version != m.Version {
		return transport.Errorf(transport.CodeNotFound, "model %q version %s not held by %s (have %s)", req.Model, req.Version, n.cfg.Name, m.Version)
	}
	if req.Meta[metaOp] == opProbe {
		rc := &recvClock{r: body}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return err
		}
		rc.report(w)
		_, err := w.Write([]byte{0})
		return err
	}
	if req.Meta[metaOp] == opCalibration {
		return n.serveCalibration(m, w)
	}
	if req.Meta[metaOp] == opProfile {
		b, err := json.Marshal(n.profiles[m.ID])
		if err != nil {
			return transport.Errorf(transport.CodeInternal, "profile: %v", err)
		}
		_, err = w.Write(b)
		return err
	}
	code := "ok"
	defer func() { n.metrics.segments.WithLabelValues(code).Inc() }()

	idx, err := segmentNodes(req, m.Nodes())
	if err != nil {
		code = "bad_request"
		return transport.Errorf(transport.CodeBadRequest, "%v", err)
	}
	pr, err := m.pieceSet(idx)
	if err != nil {
		code = "bad_request"
		return transport.Errorf(transport.CodeBadRequest, "segment of model %s: %v", m.ID, err)
	}

	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	rc := &recvClock{r: body}
	if _, err := buf.ReadFrom(rc); err != nil {
		code = "body"
		return err
	}
	rc.report(w)

	// Wait for a worker.
	queued := time.Now()
	n.waiting.Add(1)
	n.metrics.queueDepth.Inc()
	select {
	case n.workers <- struct{}{}:
	case <-ctx.Done():
		n.waiting.Add(-1)
		n.metrics.queueDepth.Dec()
		code = "deadline"
		return transport.Errorf(transport.CodeDeadlineExceeded, "queued for %v on %s", time.Since(queued), n.cfg.Name)
	}
	n.waiting.Add(-1)
	n.metrics.queueDepth.Dec()
	n.busy.Add(1)
	wait := time.Since(queued)
	defer func() {
		n.busy.Add(-1)
		<-n.workers
	}()

	start := time.Now()
	inputs, err := tensorcodec.Decode(nil, buf.Bytes())
	if err != nil {
		code = "decode"
		return transport.Errorf(transport.CodeBadRequest, "payload: %v", err)
	}
	if err := checkInputs(pr.piece.Graph.Inputs, inputs); err != nil {
		code = "bad_request"
		return transport.Errorf(transport.CodeBadRequest, "%v", err)
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
	n.mu.Lock()
	n.serviceT.Add(float64(encoded.Sub(start)))
	n.mu.Unlock()
	w.SetMeta(metaQueue, strconv.FormatInt(int64(wait), 10))
	w.SetMeta(metaDecode, strconv.FormatInt(int64(decoded.Sub(start)), 10))
	w.SetMeta(metaCompute, strconv.FormatInt(int64(computed.Sub(decoded)), 10))
	w.SetMeta(metaEncode, strconv.FormatInt(int64(encoded.Sub(computed)), 10))
	_, err = w.Write(res)
	return err
}

// recvClock times a request body's arrival on the cloud's own clock: from
// the first read that returned data to the last, and how many bytes came
// after that first read. Those bytes crossed the uplink back to back behind
// the first, so bytes/time is the uplink's goodput, free of the RTT and of
// any clock offset between edge and cloud; and the edge, subtracting this
// time from the request's network time, is left with an RTT measured by the
// request itself. The handler starts reading as soon as the header is in,
// so the first read sees at most what came with it.
type recvClock struct {
	r           io.Reader
	first, last time.Time
	after       int64
}

func (c *recvClock) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		now := time.Now()
		if c.first.IsZero() {
			c.first = now
		} else {
			c.after += int64(n)
			c.last = now
		}
	}
	return n, err
}

// report sets the arrival timing on the response, when the body came in
// more than one read.
func (c *recvClock) report(w transport.ResponseWriter) {
	if c.after > 0 {
		w.SetMeta(metaRecv, strconv.FormatInt(int64(c.last.Sub(c.first)), 10)+","+strconv.FormatInt(c.after, 10))
	}
}

// parseRecv reads metaRecv; ok is false when it is absent or malformed.
func parseRecv(m map[string]string) (d time.Duration, n int64, ok bool) {
	ds, ns, found := strings.Cut(m[metaRecv], ",")
	if !found {
		return 0, 0, false
	}
	dv, err1 := strconv.ParseInt(ds, 10, 64)
	nv, err2 := strconv.ParseInt(ns, 10, 64)
	if err1 != nil || err2 != nil || dv < 0 || nv <= 0 {
		return 0, 0, false
	}
	return time.Duration(dv), nv, true
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

// segmentNodes resolves the node set a request asks for: its Meta "nodes"
// ranges when present, else [From, To).
func segmentNodes(req *transport.Request, n int) ([]int, error) {
	if s, ok := req.Meta[metaNodes]; ok {
		return parseRanges(s, n)
	}
	if int(req.From) > n || int(req.To) > n || req.From >= req.To {
		return nil, fmt.Errorf("segment [%d,%d) of a %d-node model", req.From, req.To, n)
	}
	idx := make([]int, 0, req.To-req.From)
	for i := int(req.From); i < int(req.To); i++ {
		idx = append(idx, i)
	}
	return idx, nil
}

// formatRanges writes ascending indices as "a-b,c,...".
func formatRanges(idx []int) string {
	var sb strings.Builder
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		if j == i {
			fmt.Fprintf(&sb, "%d", idx[i])
		} else {
			fmt.Fprintf(&sb, "%d-%d", idx[i], idx[j])
		}
		i = j + 1
	}
	return sb.String()
}

// parseRanges reads formatRanges' form, checking every index is in [0,n)
// and ascending.
func parseRanges(s string, n int) ([]int, error) {
	var idx []int
	if s == "" {
		return nil, errors.New("empty node set")
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("node set %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("node set %q: %w", s, err)
			}
		}
		if a < 0 || b >= n || b < a || (len(idx) > 0 && a <= idx[len(idx)-1]) {
			return nil, fmt.Errorf("node set %q: range %d-%d out of order or outside [0,%d)", s, a, b, n)
		}
		if len(idx)+(b-a+1) > n {
			return nil, fmt.Errorf("node set %q: too many nodes", s)
		}
		for i := a; i <= b; i++ {
			idx = append(idx, i)
		}
	}
	return idx, nil
}
