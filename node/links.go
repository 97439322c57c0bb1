package node

import (
	"context"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/transport"
	"gorgonia.org/tensor"
)

// pingInterval is how often an edge pings each cloud to track the path's
// round-trip time.
const pingInterval = 500 * time.Millisecond

// pingWindow is how many recent pings an estimate keeps. Pings sent while
// the edge was handing an upload of its own to that cloud are "loaded": they
// may queue behind it in the link's buffer. The RTT is the median of the last
// rttClean unloaded pings within the window, so it follows a longer path
// within rttClean·pingInterval; when there are fewer (the edge offloads back
// to back) it is the least of the window, since queueing only ever adds to a
// ping (a longer path then shows after pingWindow·pingInterval).
const (
	pingWindow = 6
	rttClean   = 3
)

// upAlpha weighs each new uplink sample: per request, not per second of busy
// time, so a few transfers on a new link outweigh a long history on an old
// one.
const upAlpha = 0.5

// linkEstimate is an edge's view of its path to one cloud: the RTT from
// pings, the uplink goodput from what its own transfers and probes achieved.
type linkEstimate struct {
	mu      sync.Mutex
	pings   [pingWindow]ping
	np      int // pings recorded (ring index = np % pingWindow)
	up      scheduler.EWMA
	sending int // uploads (transfers, probes) to this cloud being handed to QUIC
}

type ping struct {
	d      time.Duration
	loaded bool
}

// upload wraps the body of a transfer or probe to the cloud: the edge counts
// as sending from now until the body has been read to its end (handed to
// QUIC) or done is called, whichever comes first.
func (l *linkEstimate) upload(r io.Reader) *uploadBody {
	l.mu.Lock()
	l.sending++
	l.mu.Unlock()
	return &uploadBody{r: r, l: l}
}

type uploadBody struct {
	r    io.Reader
	l    *linkEstimate
	once sync.Once
}

func (u *uploadBody) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if err != nil {
		u.done()
	}
	return n, err
}

// done ends the upload (idempotent).
func (u *uploadBody) done() {
	u.once.Do(func() {
		u.l.mu.Lock()
		u.l.sending--
		u.l.mu.Unlock()
	})
}

// busy says whether data of the edge's own is in flight to the cloud.
func (l *linkEstimate) busy() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sending > 0
}

// observePing records a ping that took d; loaded if the edge was sending to
// the cloud when it left.
func (l *linkEstimate) observePing(d time.Duration, loaded bool) {
	l.mu.Lock()
	l.pings[l.np%pingWindow] = ping{d, loaded}
	l.np++
	l.mu.Unlock()
}

// rtt is the median of the last rttClean unloaded pings, or the least of the
// window when there are fewer; 0 when there is no ping yet.
func (l *linkEstimate) rtt() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(l.np, pingWindow)
	if n == 0 {
		return 0
	}
	var clean [rttClean]time.Duration
	k := 0
	lo := l.pings[(l.np-1)%pingWindow].d
	for i := 1; i <= n; i++ { // newest first
		p := l.pings[(l.np-i)%pingWindow]
		lo = min(lo, p.d)
		if !p.loaded && k < rttClean {
			clean[k] = p.d
			k++
		}
	}
	if k < rttClean {
		return lo
	}
	slices.Sort(clean[:])
	return clean[rttClean/2]
}

// upFullWeight is the serialisation time at which a transfer counts as a
// full uplink sample. A transfer's wire time is what is left of its network
// time after one RTT (the ping estimate) and the download, so it carries
// the RTT's jitter and the timers' noise — a few milliseconds. A 400-byte
// boundary whose 0.2 ms of serialisation measured as 5 ms would otherwise
// read as a 25× slower uplink; it now moves the estimate 1/50 as much.
const upFullWeight = 10 * time.Millisecond

// observeUp folds in a transfer of n bytes that took d on the wire, given the
// current estimate est (bytes/s): it weighs as much as its serialisation at
// est is long, relative to upFullWeight. While the estimate is still the
// prior, a sample of less than half a weight is dropped.
func (l *linkEstimate) observeUp(n int64, d time.Duration, est float64) {
	if n <= 0 || d <= 0 {
		return
	}
	w := 1.0
	if est > 0 {
		w = min(1, float64(n)/est/upFullWeight.Seconds())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.up.Count() == 0 && w < 0.5 {
		return
	}
	l.up.AddWeighted(float64(n)/d.Seconds(), w)
}

func (l *linkEstimate) upRate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up.Value()
}

// linkTo returns the estimate for the named cloud, creating it.
func (n *Node) linkTo(cloud string) *linkEstimate {
	n.linksMu.Lock()
	defer n.linksMu.Unlock()
	l, ok := n.links[cloud]
	if !ok {
		l = &linkEstimate{}
		l.up.Alpha = upAlpha
		n.links[cloud] = l
	}
	return l
}

// pingLoop pings every live cloud each pingInterval (edges only).
func (n *Node) pingLoop() {
	defer n.wg.Done()
	t := time.NewTicker(pingInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stopMeta:
			return
		case <-t.C:
		}
		for _, p := range n.members.Peers() {
			if !p.Alive || p.Meta.Role != RoleCloud || len(p.Meta.Models) == 0 {
				continue
			}
			n.wg.Add(1)
			go func(p Peer) {
				defer n.wg.Done()
				l := n.linkTo(p.Name)
				loaded := l.busy()
				if d, err := n.probe(p, nil); err == nil {
					l.observePing(d, loaded)
				}
			}(p)
		}
	}
}

// probe sends body (nil: nothing) to cloud p, which discards it, and returns
// how long the exchange took.
func (n *Node) probe(p Peer, body *uploadBody) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ref := p.Meta.Models[0]
	start := time.Now()
	var r io.Reader
	if body != nil {
		r = body
		defer body.done()
	}
	resp, err := n.ep.Call(ctx, p.Meta.QUICAddr, &transport.Request{ID: n.reqID.Add(1), Model: ref.ID, Version: ref.Version,
		Meta: map[string]string{metaOp: opProbe}}, r)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), err
}

// codecTable is an edge's codec costs for one model: speeds measured at
// start, ratios per prefix cut measured at start on a seeded input and then
// learned from every boundary actually sent.
type codecTable struct {
	mu     sync.Mutex
	codecs []scheduler.CodecModel // CutRatios filled, len = nodes+1
}

// ratioAlpha weighs a ratio observed on a real send against the table.
const ratioAlpha = 0.5

// snapshot returns a copy the scheduler can read while sends update the table.
func (t *codecTable) snapshot() []scheduler.CodecModel {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := slices.Clone(t.codecs)
	for i := range out {
		out[i].CutRatios = slices.Clone(out[i].CutRatios)
	}
	return out
}

// observe folds the ratio of one real send at prefix cut k into the table.
func (t *codecTable) observe(codec string, k int, raw, wire int64) {
	if raw <= 0 || wire <= 0 || k < 0 {
		return
	}
	r := float64(raw) / float64(wire)
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.codecs {
		c := &t.codecs[i]
		if c.Name != codec || k >= len(c.CutRatios) {
			continue
		}
		if c.CutRatios[k] > 0 {
			c.CutRatios[k] += ratioAlpha * (r - c.CutRatios[k])
		} else {
			c.CutRatios[k] = r
		}
	}
}

// newCodecTable measures each codec's ratio at every prefix cut of m: it runs
// m once on a seeded input with every boundary tensor kept as an output, and
// encodes each cut's boundary with each preset.
func newCodecTable(ctx context.Context, m *Model, base []scheduler.CodecModel) (*codecTable, error) {
	cuts, err := partition.Cuts(m.Graph)
	if err != nil {
		return nil, err
	}
	g := *m.Graph
	g.Outputs = nil
	seen := map[string]bool{}
	for _, c := range cuts {
		for _, name := range c.Boundary {
			if !seen[name] {
				seen[name] = true
				g.Outputs = append(g.Outputs, model.ValueInfo{Name: name, Shape: m.Graph.Shapes[name]})
			}
		}
	}
	net, err := model.Compile(&g, model.Options{})
	if err != nil {
		return nil, err
	}
	inputs := make([]*tensor.Dense, len(g.Inputs))
	for i, in := range g.Inputs {
		inputs[i] = model.UniformTensor(in.Shape, uint64(7+i))
	}
	outs, err := net.NewExtractor().Run(ctx, inputs...)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*tensor.Dense, len(outs))
	for i, o := range g.Outputs {
		byName[o.Name] = outs[i]
	}
	for i, in := range g.Inputs {
		byName[in.Name] = inputs[i]
	}
	t := &codecTable{codecs: slices.Clone(base)}
	var buf []byte
	ts := make([]*tensor.Dense, 0, 4)
	for i := range t.codecs {
		c := &t.codecs[i]
		p, err := tensorcodec.ParsePreset(c.Name)
		if err != nil {
			return nil, err
		}
		c.CutRatios = make([]float64, len(cuts))
		for k, cut := range cuts {
			if k == len(cuts)-1 {
				break // edge-only sends nothing
			}
			ts = ts[:0]
			for _, name := range cut.Boundary {
				ts = append(ts, byName[name])
			}
			var st tensorcodec.Stats
			if buf, st, err = tensorcodec.EncodePreset(buf[:0], p, ts...); err != nil {
				return nil, err
			}
			c.CutRatios[k] = st.Ratio()
		}
	}
	return t, nil
}

// overheadWindow is how many recent residuals the overhead estimate takes
// the median of.
const overheadWindow = 15

// maxOverhead bounds the learned per-request overhead. The fixed cost of a
// request is a fraction of a millisecond; a larger residual is the profile
// being off (a slower or busier machine than when it was measured), which
// is not a per-request constant and must not be added to every plan.
const maxOverhead = 2 * time.Millisecond

// overheadEstimate learns an edge's fixed per-request cost for one model:
// what an edge-only request takes beyond the profile's compute (request
// handling, scheduling, timer wake-ups). It is added to every plan alike.
// It is the median of the last overheadWindow residuals: a fixed cost, seen
// through a shared host's occasional preemptions (a probe's encryption
// running beside the request, a GC), which a mean would fold into every
// prediction.
type overheadEstimate struct {
	mu   sync.Mutex
	ring [overheadWindow]time.Duration
	n    int // residuals seen (ring index = n % overheadWindow)
}

func (o *overheadEstimate) observe(residual time.Duration) {
	r := min(max(residual, 0), maxOverhead)
	o.mu.Lock()
	o.ring[o.n%overheadWindow] = r
	o.n++
	o.mu.Unlock()
}

func (o *overheadEstimate) value() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := min(o.n, overheadWindow)
	if k == 0 {
		return 0
	}
	var buf [overheadWindow]time.Duration
	w := buf[:k]
	copy(w, o.ring[:k])
	slices.Sort(w)
	return w[k/2]
}

// calibrateOverhead runs model m edge-only a few times at start, as a
// request would, to seed the overhead estimate.
func (n *Node) calibrateOverhead(ctx context.Context, m *Model) error {
	o := &overheadEstimate{}
	n.overheads[m.ID] = o
	x := make([]*tensor.Dense, len(m.Graph.Inputs))
	for i, in := range m.Graph.Inputs {
		x[i] = model.UniformTensor(in.Shape, uint64(3+i))
	}
	compute := n.profiles[m.ID].HeadLatency(m.Nodes())
	var res InferResult
	for i := range 6 {
		start := time.Now()
		if err := n.runLocal(ctx, m, x, nil, &res); err != nil {
			return err
		}
		if i > 0 { // the first run compiles the piece
			o.observe(time.Since(start) - compute)
		}
	}
	return nil
}
