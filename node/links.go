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

// RTT samples: pings, and the RTTs that uploads measured themselves
// (learnUpload). A sample taken while the edge was handing an upload of its
// own to QUIC (to any cloud: they share the access link's buffer) is
// "loaded": it may have queued behind that upload. An estimate keeps the
// last pingWindow samples; the RTT is the median of the last rttClean
// unloaded ones, so it follows a longer path within rttClean samples.
const (
	pingWindow = 6
	rttClean   = 3
	// rttFresh is how recent a path's own clean samples must be to be
	// preferred over the access link's (see linkEstimate.rtt).
	rttFresh = time.Second
)

type ping struct {
	d      time.Duration
	at     time.Time
	loaded bool
}

// rttRing holds the recent RTT samples of a path or of the access link.
type rttRing struct {
	s [pingWindow]ping
	n int // samples recorded (ring index = n % pingWindow)
}

func (r *rttRing) add(p ping) {
	r.s[r.n%pingWindow] = p
	r.n++
}

// clean returns the median of the last rttClean unloaded samples and the
// time of the oldest of them; ok is false when there are fewer.
func (r *rttRing) clean() (d time.Duration, oldest time.Time, ok bool) {
	var c [rttClean]time.Duration
	k := 0
	for i := 1; i <= min(r.n, pingWindow) && k < rttClean; i++ { // newest first
		p := r.s[(r.n-i)%pingWindow]
		if !p.loaded {
			c[k] = p.d
			oldest = p.at
			k++
		}
	}
	if k < rttClean {
		return 0, time.Time{}, false
	}
	slices.Sort(c[:])
	return c[rttClean/2], oldest, true
}

// least is the smallest sample of the window (0 when empty): queueing only
// ever adds to a sample.
func (r *rttRing) least() time.Duration {
	var lo time.Duration
	for i := 1; i <= min(r.n, pingWindow); i++ {
		d := r.s[(r.n-i)%pingWindow].d
		if i == 1 || d < lo {
			lo = d
		}
	}
	return lo
}

// linkEstimate is an edge's view of its path to one cloud: the RTT from
// pings and uploads, the uplink goodput from what its own transfers and
// probes achieved.
//
// Both are learned twice: on this path alone, and on the edge's access link
// (accessLink: every sample to any cloud counts). The access link is usually
// every path's bottleneck, so when it changes, the transfers to one cloud
// tell the edge about all of them, and the planner does not flee to a cloud
// whose estimate is merely older. The uplink is the path's own estimate
// scaled by how much the access link's changed since the path's last sample:
// a change of the radio moves every path alike, and a cloud behind a slower
// path keeps its ratio to the others. The RTT is the path's own while it has fresh clean samples, the
// access link's when it has not (a cloud the edge is not sending to, whose
// pings all queue behind the uploads to another).
type linkEstimate struct {
	mu       sync.Mutex
	rtts     rttRing
	up       scheduler.RateLearner
	accessAt float64 // the access link's estimate just after up's last sample
	access   *accessLink
}

// accessLink is what an edge learns of its access link from its traffic to
// all clouds, and whether it is sending on it.
type accessLink struct {
	mu      sync.Mutex
	rtts    rttRing
	up      scheduler.RateLearner
	sending int // uploads (transfers, probes) being handed to QUIC
}

// newLinkEstimate returns the estimate of a path through access.
func newLinkEstimate(access *accessLink) *linkEstimate {
	return &linkEstimate{access: access}
}

// upload wraps the body of a transfer or probe: the edge counts as sending
// from now until the body has been read to its end (handed to QUIC) or done
// is called, whichever comes first.
func (l *linkEstimate) upload(r io.Reader) *uploadBody {
	a := l.access
	a.mu.Lock()
	a.sending++
	a.mu.Unlock()
	return &uploadBody{r: r, a: a}
}

type uploadBody struct {
	r    io.Reader
	a    *accessLink
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
		u.a.mu.Lock()
		u.a.sending--
		u.a.mu.Unlock()
	})
}

// busy says whether the edge is handing data of its own to QUIC.
func (l *linkEstimate) busy() bool {
	a := l.access
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sending > 0
}

// observePing records an RTT sample d taken now; loaded if the edge was
// sending when it left.
func (l *linkEstimate) observePing(d time.Duration, loaded bool) {
	l.observePingAt(time.Now(), d, loaded)
}

func (l *linkEstimate) observePingAt(at time.Time, d time.Duration, loaded bool) {
	p := ping{d: d, at: at, loaded: loaded}
	l.mu.Lock()
	l.rtts.add(p)
	l.mu.Unlock()
	l.access.mu.Lock()
	l.access.rtts.add(p)
	l.access.mu.Unlock()
}

// rtt is the path's RTT estimate now (see rttAt).
func (l *linkEstimate) rtt() time.Duration { return l.rttAt(time.Now()) }

// rttAt is the median of the path's last rttClean clean samples when all are
// within rttFresh of now; else the access link's when its are; else the
// path's stale median; else the least sample of the path's window; 0 when
// there is none.
func (l *linkEstimate) rttAt(now time.Time) time.Duration {
	l.mu.Lock()
	own, ownAt, ownOK := l.rtts.clean()
	least := l.rtts.least()
	l.mu.Unlock()
	if ownOK && now.Sub(ownAt) <= rttFresh {
		return own
	}
	l.access.mu.Lock()
	acc, accAt, accOK := l.access.rtts.clean()
	l.access.mu.Unlock()
	switch {
	case accOK && now.Sub(accAt) <= rttFresh:
		return acc
	case ownOK:
		return own
	}
	return least
}

// observeUp folds in a transfer of n bytes that took d on the wire, given the
// current estimate est (bytes/s). The wire time is what was left of the
// network time after one RTT (the estimate) and the download, so it carries
// the RTT's jitter: the sample weighs as much as its serialisation at est
// is long.
func (l *linkEstimate) observeUp(n int64, d time.Duration, est float64) {
	if n <= 0 || d <= 0 {
		return
	}
	ser := scheduler.RateFullWeight
	if est > 0 {
		ser = time.Duration(float64(n) / est * float64(time.Second))
	}
	l.observeRate(float64(n)/d.Seconds(), ser)
}

// minTimedBytes is the least a cloud must have timed arriving (after the
// first read) for its timing to be an uplink sample: three packets, so the
// rate is not one packet's scheduling noise.
const minTimedBytes = 3 * 1200

// observeTimedUp folds in n bytes that the cloud saw arrive within d, back
// to back (recvClock): a sample weighing as much as d is long.
func (l *linkEstimate) observeTimedUp(n int64, d time.Duration) {
	if n < minTimedBytes || d <= 0 {
		return
	}
	l.observeRate(float64(n)/d.Seconds(), d)
}

// observeRate folds an uplink sample into this path's learner and the
// access link's.
func (l *linkEstimate) observeRate(rate float64, airtime time.Duration) {
	l.access.mu.Lock()
	l.access.up.Observe(rate, airtime)
	a := l.access.up.Value()
	l.access.mu.Unlock()
	l.mu.Lock()
	l.up.Observe(rate, airtime)
	l.accessAt = a
	l.mu.Unlock()
}

// learnUpload folds in what one upload to the cloud taught: n bytes sent,
// network the exchange's time less the cloud's own work, down the answer's
// download at the estimate est (taken before the upload), meta the cloud's
// response metadata, and loaded whether another upload of the edge's was in
// flight when it left. When the cloud timed the body's arrival (recvClock),
// the RTT is what is left of the network time after that arrival, the part
// that came with the first read (at est) and the download: a sample as clean
// as an unloaded ping's, so the RTT stays fresh while the edge offloads back
// to back. The uplink sample is the cloud's timing when it covers enough
// bytes, else the network time less one RTT and the download.
func (l *linkEstimate) learnUpload(n int64, network, down time.Duration, est scheduler.LinkEstimate, meta map[string]string, loaded bool) {
	rd, rb, timed := parseRecv(meta)
	if !timed || rb > n {
		rd, rb, timed = 0, 0, false
	}
	var first time.Duration
	if est.Up > 0 {
		first = time.Duration(float64(n-rb) / est.Up * float64(time.Second))
	}
	if rtt := network - rd - first - down; !loaded && rtt > 0 {
		l.observePing(rtt, false)
	}
	if timed && rb >= minTimedBytes {
		l.observeTimedUp(rb, rd)
		return
	}
	l.observeUp(n, max(network-est.RTT-down, 100*time.Microsecond), est.Up)
}

// upRate is the uplink estimate in bytes/s: this path's, scaled by the
// access link's change since the path's last sample; the access link's
// when the path has none (0: nothing learned yet).
func (l *linkEstimate) upRate() float64 {
	l.mu.Lock()
	up, at := l.up.Value(), l.accessAt
	l.mu.Unlock()
	l.access.mu.Lock()
	a := l.access.up.Value()
	l.access.mu.Unlock()
	switch {
	case up == 0:
		return a
	case at > 0 && a > 0:
		return up * a / at
	}
	return up
}

// linkTo returns the estimate for the named cloud, creating it.
func (n *Node) linkTo(cloud string) *linkEstimate {
	n.linksMu.Lock()
	defer n.linksMu.Unlock()
	l, ok := n.links[cloud]
	if !ok {
		l = newLinkEstimate(&n.access)
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
				if d, _, err := n.probe(p, nil); err == nil {
					l.observePing(d, loaded)
				}
			}(p)
		}
	}
}

// probe sends body (nil: nothing) to cloud p, which discards it, and returns
// how long the exchange took and the cloud's response metadata.
func (n *Node) probe(p Peer, body *uploadBody) (time.Duration, map[string]string, error) {
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
		return 0, nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), resp.Meta, err
}

// codecTable is an edge's codec costs for one model: speeds measured at
// start, ratios per prefix cut measured at start on a seeded input — or,
// when the model is calibrated, the ratios, speeds and agreement measured on
// its calibration inputs — and then learned from every boundary sent.
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
	if m.Calibration != nil {
		t.codecs = m.Calibration.Apply(t.codecs)
	}
	return t, nil
}

// CutCodecs returns the codec costs an edge would plan model m with at
// start: base's speeds, each codec's ratio at every prefix cut (measured on
// a seeded input), and, when m is calibrated, the ratios, speeds and
// agreement its calibration measured on real inputs.
func CutCodecs(ctx context.Context, m *Model, base []scheduler.CodecModel) ([]scheduler.CodecModel, error) {
	t, err := newCodecTable(ctx, m, base)
	if err != nil {
		return nil, err
	}
	return t.snapshot(), nil
}

// calibrate replaces the table's figures by a calibration's (fetched from
// a peer after start).
func (t *codecTable) calibrate(c *scheduler.Calibration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.codecs = c.Apply(t.codecs)
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
