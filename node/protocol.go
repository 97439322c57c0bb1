package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// The node protocol is what edges and clouds say to each other inside
// transport's opaque headers (transport.Request.Header and
// transport.Response.Header): which model version, operation, node set and
// codec a request is for, and what the cloud measured serving it. The
// encoding is specified in docs/wire-format.md, section "Node protocol";
// in short, all integers are unsigned LEB128 varints, a string is a varint
// length (≤ maxNameBytes) and UTF-8 bytes, and every header starts with
// protocolVersion.
//
// A request header:
//
//	version  byte = protocolVersion
//	op       byte (opRun, opProbe, opProfile, opCalibration, opModelEntry,
//	         opModelChunk, opModelLoad, opRunVia, opGenerate, opGenerateEnd)
//	model    string: model id
//	version  string: model version (the model ops: the full registry
//	         version, 64 hex digits)
//	codec    string: tensorcodec preset of the body (opRun only, else empty)
//	ranges   varint count (≤ maxRanges; opRun: ≥ 1; opModelChunk: one range
//	         of one index, the chunk's; else 0), then per range gap varint
//	         (its first node − the previous range's end; the first range:
//	         its first node) and len−1 varint
//	split    varint (opRunVia only): the first node the cloud runs
//	next     string (opRunVia only): the cloud's name
//	codec2   string (opRunVia only): the preset of the server's boundary
//	session  string (opGenerate, opGenerateEnd): the edge's generation id
//	cut      varint (opGenerate only): the first block the cloud runs
//	prefill  varint (opGenerate only): tokens in the body's prefill window
//	         (0: the body holds steps only)
//	pos      varint (opGenerate only): the position of the body's first
//	         step (with a prefill: prefill)
//
// A response header (opRun and opProbe answers; the others send none):
//
//	version    byte = protocolVersion
//	queue      varint ns waited for a worker
//	decode     varint ns decoding the request payload
//	compute    varint ns running the segment (device-stretched)
//	encode     varint ns encoding the result
//	recv time  varint ns from the body's first read that returned data to
//	           its last, on the cloud's clock (recvClock)
//	recv bytes varint bytes that arrived after that first read; 0 = not
//	           measured (the body came in one read), and recv time is 0
//	model ver  string: the model version that ran the segment (opRun;
//	           empty for probes), so the edge can check it ran its own
//
// Decoders never panic: a malformed header is an error wrapping
// errProtocol that names the field at fault.
const protocolVersion = 2

// Limits on a request header.
const (
	maxNameBytes  = 256     // model id, version, codec
	maxRanges     = 4096    // ranges in a node set
	maxModelNodes = 1 << 16 // a node set's indices are below this
	// maxGenerateSize bounds a generate request's cut, prefill and
	// position (a model's blocks and context are far smaller).
	maxGenerateSize = 1 << 16
)

// errProtocol is wrapped by every node protocol decoding error.
var errProtocol = errors.New("node protocol")

// op is what a request asks of the node serving it.
type op byte

// The operations of the node protocol.
const (
	opRun         op = 1  // run the node set on the body (a tensorcodec message); answer its outputs
	opProbe       op = 2  // read the body, discard it, answer one byte: an edge measuring its link
	opProfile     op = 3  // answer the node's profile of the model (JSON of partition.Profile)
	opCalibration op = 4  // answer the node's calibration table of the model (JSON, scheduler.Calibration)
	opModelEntry  op = 5  // answer the stored version's registry entry (JSON, registry.Entry)
	opModelChunk  op = 6  // answer one chunk of the stored version (plain bytes)
	opModelLoad   op = 7  // fetch the version (from the caller or peers), serve it and make it active; answer nothing
	opRunVia      op = 8  // an edge server: run the node set up to Split, send the rest on to Next with Codec2; answer the whole set's outputs
	opGenerate    op = 9  // run a language model's blocks from Cut on the body's hidden states (a prefill window, then steps) against the session's key/value cache; answer the next token
	opGenerateEnd op = 10 // forget the session's cache; answer nothing
)

func (o op) String() string {
	switch o {
	case opRun:
		return "run"
	case opProbe:
		return "probe"
	case opProfile:
		return "profile"
	case opCalibration:
		return "calibration"
	case opModelEntry:
		return "model-entry"
	case opModelChunk:
		return "model-chunk"
	case opModelLoad:
		return "model-load"
	case opRunVia:
		return "run-via"
	case opGenerate:
		return "generate"
	case opGenerateEnd:
		return "generate-end"
	}
	return fmt.Sprintf("op(%d)", byte(o))
}

// segmentRequest is the header of a request to a node.
type segmentRequest struct {
	Op      op
	Model   string // model id
	Version string // model version
	Codec   string // tensorcodec preset of the body (opRun)
	Nodes   []int  // the node set to run, ascending (opRun)
	// opRunVia only: the server runs the nodes of Nodes below Split and
	// sends the boundary of the rest, in Codec2, to the cloud named Next.
	Split  int
	Next   string
	Codec2 string
	// opGenerate (Session also opGenerateEnd): the generation, the first
	// block the cloud runs in a prefill (Cut) and in a decode step
	// (Decode ≥ Cut; the model's depth: the edge decodes alone), the
	// tokens of the body's prefill window (0: none) and the position of
	// its first step. Caches (with a prefill only) asks for the caches of
	// blocks [Cut, Decode) after the token: the edge decodes those.
	Session                   string
	Cut, Decode, Prefill, Pos int
	Caches                    bool
}

// segmentResponse is the header of a node's answer to opRun (all fields)
// and opProbe (the arrival timing).
type segmentResponse struct {
	Queue, Decode, Compute, Encode time.Duration
	// RecvTime and RecvBytes are the body's arrival on the cloud's clock
	// (recvClock); RecvBytes 0 means it was not measured.
	RecvTime  time.Duration
	RecvBytes int64
	// Version is the model version that ran the segment (opRun).
	Version string
}

// recvTiming returns the arrival timing; ok is false when not measured.
func (r *segmentResponse) recvTiming() (time.Duration, int64, bool) {
	return r.RecvTime, r.RecvBytes, r.RecvBytes > 0
}

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProtocol}, args...)...)
}

func (r *segmentRequest) check() error {
	switch r.Op {
	case opRun:
		if len(r.Nodes) == 0 {
			return protoErr("run request with an empty node set")
		}
	case opRunVia:
		if len(r.Nodes) < 2 || r.Split <= r.Nodes[0] || r.Split > r.Nodes[len(r.Nodes)-1] {
			return protoErr("run-via request: split %d does not leave nodes of its set on both sides", r.Split)
		}
		if r.Next == "" || r.Codec2 == "" {
			return protoErr("run-via request without a next node or its codec")
		}
	case opProbe, opProfile, opCalibration, opModelEntry, opModelLoad, opGenerateEnd:
		if len(r.Nodes) != 0 || r.Codec != "" {
			return protoErr("%v request carries a node set or codec", r.Op)
		}
	case opGenerate:
		if len(r.Nodes) != 0 || r.Codec == "" {
			return protoErr("generate request wants a codec and no node set")
		}
		if r.Cut < 0 || r.Cut >= maxGenerateSize || r.Decode < r.Cut || r.Decode > maxGenerateSize || r.Prefill < 0 || r.Prefill > maxGenerateSize ||
			r.Pos < 0 || r.Pos > maxGenerateSize || (r.Prefill > 0 && r.Pos != r.Prefill) {
			return protoErr("generate request: cut %d, decode cut %d, prefill %d, position %d (want each below %d, the decode cut not below the cut, and the position the prefill's end)",
				r.Cut, r.Decode, r.Prefill, r.Pos, maxGenerateSize)
		}
		if r.Caches && (r.Prefill == 0 || r.Decode == r.Cut) {
			return protoErr("generate request asks for caches without a prefill (%d) or with no blocks between cut %d and decode cut %d", r.Prefill, r.Cut, r.Decode)
		}
	case opModelChunk:
		if len(r.Nodes) != 1 || r.Codec != "" {
			return protoErr("model-chunk request wants one chunk index and no codec, has %d indices", len(r.Nodes))
		}
	default:
		return protoErr("unknown op %d", byte(r.Op))
	}
	if r.Op != opRunVia && (r.Split != 0 || r.Next != "" || r.Codec2 != "") {
		return protoErr("%v request carries a split, next node or second codec", r.Op)
	}
	generates := r.Op == opGenerate || r.Op == opGenerateEnd
	if generates != (r.Session != "") || r.Op != opGenerate && (r.Cut != 0 || r.Decode != 0 || r.Prefill != 0 || r.Pos != 0 || r.Caches) {
		return protoErr("%v request: session %q, cut %d, prefill %d, position %d (a session for the generate ops only, the rest for opGenerate only)",
			r.Op, r.Session, r.Cut, r.Prefill, r.Pos)
	}
	for _, f := range []struct{ name, v string }{{"model", r.Model}, {"version", r.Version}, {"codec", r.Codec},
		{"next", r.Next}, {"codec2", r.Codec2}, {"session", r.Session}} {
		if len(f.v) > maxNameBytes {
			return protoErr("%s is %d bytes, limit %d", f.name, len(f.v), maxNameBytes)
		}
		if !utf8.ValidString(f.v) {
			return protoErr("%s is not UTF-8", f.name)
		}
	}
	return nil
}

// marshal encodes the request header, checking it as the decoder will.
func (r *segmentRequest) marshal() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 16+len(r.Model)+len(r.Version)+len(r.Codec)+2*len(r.Nodes))
	b = append(b, protocolVersion, byte(r.Op))
	for _, s := range []string{r.Model, r.Version, r.Codec} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	var ranges [][2]int // first node, length
	for i, v := range r.Nodes {
		if v < 0 || v >= maxModelNodes || (i > 0 && v <= r.Nodes[i-1]) {
			return nil, protoErr("node set is not ascending within [0,%d) at index %d (%d)", maxModelNodes, i, v)
		}
		if n := len(ranges); n > 0 && ranges[n-1][0]+ranges[n-1][1] == v {
			ranges[n-1][1]++
		} else {
			ranges = append(ranges, [2]int{v, 1})
		}
	}
	if len(ranges) > maxRanges {
		return nil, protoErr("node set has %d ranges, limit %d", len(ranges), maxRanges)
	}
	b = binary.AppendUvarint(b, uint64(len(ranges)))
	end := 0
	for _, rg := range ranges {
		b = binary.AppendUvarint(b, uint64(rg[0]-end))
		b = binary.AppendUvarint(b, uint64(rg[1]-1))
		end = rg[0] + rg[1]
	}
	if r.Op == opRunVia {
		b = binary.AppendUvarint(b, uint64(r.Split))
		for _, s := range []string{r.Next, r.Codec2} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	if r.Op == opGenerate || r.Op == opGenerateEnd {
		b = binary.AppendUvarint(b, uint64(len(r.Session)))
		b = append(b, r.Session...)
	}
	if r.Op == opGenerate {
		caches := 0
		if r.Caches {
			caches = 1
		}
		for _, v := range []int{r.Cut, r.Decode, r.Prefill, r.Pos, caches} {
			b = binary.AppendUvarint(b, uint64(v))
		}
	}
	return b, nil
}

// RunRequestHeader encodes the node protocol header of a request to run
// the graph nodes (ascending indices) of a model's version on a cloud, with
// the body in tensorcodec preset codec: what an edge sends, for tools and
// tests that speak the protocol themselves.
func RunRequestHeader(model, version, codec string, nodes []int) ([]byte, error) {
	r := segmentRequest{Op: opRun, Model: model, Version: version, Codec: codec, Nodes: nodes}
	return r.marshal()
}

// unmarshalSegmentRequest decodes and checks a request header.
func unmarshalSegmentRequest(b []byte) (segmentRequest, error) {
	var r segmentRequest
	d := protoDecoder{b: b}
	d.version()
	r.Op = op(d.byte("op"))
	r.Model = d.string("model")
	r.Version = d.string("version")
	r.Codec = d.string("codec")
	n := d.uvarint("range count")
	if d.err == nil && n > maxRanges {
		d.err = protoErr("%d ranges, limit %d", n, maxRanges)
	}
	end := uint64(0)
	for i := uint64(0); i < n && d.err == nil; i++ {
		gap, l := d.uvarint("range gap"), d.uvarint("range length")
		if d.err != nil {
			break
		}
		// end ≤ maxModelNodes, so neither sum overflows once each term is bounded.
		if gap > maxModelNodes || l >= maxModelNodes || end+gap+l+1 > maxModelNodes {
			d.err = protoErr("range %d (gap %d, length %d) reaches past node %d", i, gap, l+1, maxModelNodes)
			break
		}
		if i > 0 && gap == 0 {
			d.err = protoErr("range %d touches the previous one (not merged)", i)
			break
		}
		start := end + gap
		for v := start; v <= start+l; v++ {
			r.Nodes = append(r.Nodes, int(v))
		}
		end = start + l + 1
	}
	if r.Op == opRunVia {
		if s := d.uvarint("split"); d.err == nil && s >= maxModelNodes {
			d.err = protoErr("split %d past node %d", s, maxModelNodes)
		} else {
			r.Split = int(s)
		}
		r.Next = d.string("next")
		r.Codec2 = d.string("codec2")
	}
	if r.Op == opGenerate || r.Op == opGenerateEnd {
		r.Session = d.string("session")
	}
	if r.Op == opGenerate {
		for _, f := range []struct {
			name string
			v    *int
		}{{"cut", &r.Cut}, {"decode", &r.Decode}, {"prefill", &r.Prefill}, {"pos", &r.Pos}} {
			if v := d.uvarint(f.name); d.err == nil && v > maxGenerateSize {
				d.err = protoErr("%s = %d, limit %d", f.name, v, maxGenerateSize)
			} else {
				*f.v = int(v)
			}
		}
		switch v := d.uvarint("caches"); {
		case d.err != nil:
		case v > 1:
			d.err = protoErr("caches = %d, want 0 or 1", v)
		default:
			r.Caches = v == 1
		}
	}
	if err := d.end(); err != nil {
		return segmentRequest{}, err
	}
	if err := r.check(); err != nil {
		return segmentRequest{}, err
	}
	return r, nil
}

// marshal encodes the response header.
func (r *segmentResponse) marshal() []byte {
	b := make([]byte, 0, 2+7*binary.MaxVarintLen64+len(r.Version))
	b = append(b, protocolVersion)
	for _, d := range []time.Duration{r.Queue, r.Decode, r.Compute, r.Encode, r.RecvTime} {
		b = binary.AppendUvarint(b, uint64(max(d, 0)))
	}
	b = binary.AppendUvarint(b, uint64(max(r.RecvBytes, 0)))
	b = binary.AppendUvarint(b, uint64(len(r.Version)))
	return append(b, r.Version...)
}

// unmarshalSegmentResponse decodes and checks a response header.
func unmarshalSegmentResponse(b []byte) (segmentResponse, error) {
	var r segmentResponse
	d := protoDecoder{b: b}
	d.version()
	r.Queue = d.duration("queue")
	r.Decode = d.duration("decode")
	r.Compute = d.duration("compute")
	r.Encode = d.duration("encode")
	r.RecvTime = d.duration("recv time")
	r.RecvBytes = int64(d.duration("recv bytes"))
	r.Version = d.string("model version")
	if err := d.end(); err != nil {
		return segmentResponse{}, err
	}
	if r.RecvBytes == 0 && r.RecvTime != 0 {
		return segmentResponse{}, protoErr("recv time %v without recv bytes", r.RecvTime)
	}
	return r, nil
}

// protoDecoder reads a header's fields in order; the first error sticks.
type protoDecoder struct {
	b   []byte
	err error
}

func (d *protoDecoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = protoErr("header ends before %s", field)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *protoDecoder) version() {
	if d.err == nil && len(d.b) == 0 {
		d.err = protoErr("empty header")
		return
	}
	if v := d.byte("version"); d.err == nil && v != protocolVersion {
		d.err = protoErr("version %d, want %d", v, protocolVersion)
	}
}

func (d *protoDecoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = protoErr("bad varint in %s", field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *protoDecoder) duration(field string) time.Duration {
	v := d.uvarint(field)
	if d.err == nil && v > math.MaxInt64 {
		d.err = protoErr("%s = %d overflows", field, v)
	}
	return time.Duration(v)
}

func (d *protoDecoder) string(field string) string {
	n := d.uvarint(field + " length")
	if d.err != nil {
		return ""
	}
	if n > maxNameBytes {
		d.err = protoErr("%s is %d bytes, limit %d", field, n, maxNameBytes)
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = protoErr("%s claims %d bytes, %d left", field, n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *protoDecoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = protoErr("%d trailing bytes", len(d.b))
	}
	return d.err
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

// report fills the arrival timing of a response, when the body came in
// more than one read.
func (c *recvClock) report(r *segmentResponse) {
	if c.after > 0 {
		r.RecvTime, r.RecvBytes = c.last.Sub(c.first), c.after
	}
}
