package node

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/transport"
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
