package node

import (
	"context"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/transport"
	"gorgonia.org/tensor"
)

// linkEstimate is an edge's handle on its path to one cloud: the learning
// rules live in scheduler.EdgeLearner (shared with sim); node adds the I/O
// (pings, transfers, probes), the wall clock, and the lock.
type linkEstimate struct {
	cloud  string
	access *accessLink
}

// accessLink is what an edge learns of its links to all clouds (one
// scheduler.EdgeLearner, under mu), and whether it is sending on its access
// link.
type accessLink struct {
	mu      sync.Mutex
	learn   scheduler.EdgeLearner
	sending int // uploads (transfers, probes) being handed to QUIC
	anon    int // paths made by newLinkEstimate
}

// newLinkEstimate returns the estimate of a new, unnamed path through
// access (tests; nodes name theirs by cloud, linkTo).
func newLinkEstimate(access *accessLink) *linkEstimate {
	access.mu.Lock()
	access.anon++
	name := "\x00path" + strconv.Itoa(access.anon)
	access.mu.Unlock()
	return &linkEstimate{cloud: name, access: access}
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
	l.access.mu.Lock()
	defer l.access.mu.Unlock()
	l.access.learn.ObservePing(l.cloud, at, d, loaded)
}

// rtt is the path's RTT estimate now (see scheduler.EdgeLearner.RTT).
func (l *linkEstimate) rtt() time.Duration { return l.rttAt(time.Now()) }

func (l *linkEstimate) rttAt(now time.Time) time.Duration {
	l.access.mu.Lock()
	defer l.access.mu.Unlock()
	return l.access.learn.RTT(l.cloud, now)
}

// observeUp folds in a transfer of n bytes that took d on the wire, given the
// current estimate est (bytes/s); see scheduler.EdgeLearner.ObserveTransfer.
func (l *linkEstimate) observeUp(n int64, d time.Duration, est float64) {
	l.access.mu.Lock()
	defer l.access.mu.Unlock()
	l.access.learn.ObserveTransfer(l.cloud, time.Now(), n, d, est)
}

// observeTimedUp folds in n bytes that the cloud saw arrive within d, back
// to back (recvClock); see scheduler.EdgeLearner.ObserveTimed.
func (l *linkEstimate) observeTimedUp(n int64, d time.Duration) {
	l.access.mu.Lock()
	defer l.access.mu.Unlock()
	l.access.learn.ObserveTimed(l.cloud, time.Now(), n, d)
}

// learnUpload folds in what one upload to the cloud taught (see
// uploadSample and scheduler.EdgeLearner.ObserveUpload).
func (l *linkEstimate) learnUpload(n int64, network, down time.Duration, est scheduler.LinkEstimate, meta map[string]string, loaded bool) {
	l.learnUploadAt(time.Now(), n, network, down, est, meta, loaded)
}

func (l *linkEstimate) learnUploadAt(at time.Time, n int64, network, down time.Duration, est scheduler.LinkEstimate, meta map[string]string, loaded bool) {
	u := uploadSample(n, network, down, est, meta, loaded)
	l.access.mu.Lock()
	defer l.access.mu.Unlock()
	l.access.learn.ObserveUpload(l.cloud, at, u)
}

// uploadSample translates what one upload measured into the learning
// core's terms: n bytes sent, network the exchange's time less the cloud's
// own work, down the answer's download at the estimate est (taken before
// the upload), meta the cloud's response metadata (its timing of the
// body's arrival, recvClock), and loaded whether another upload of the
// edge's was in flight when it left.
func uploadSample(n int64, network, down time.Duration, est scheduler.LinkEstimate, meta map[string]string, loaded bool) scheduler.Upload {
	u := scheduler.Upload{Bytes: n, Network: network, Down: down, Est: est, Loaded: loaded}
	if rd, rb, ok := parseRecv(meta); ok {
		u.RecvTime, u.RecvBytes = rd, rb
	}
	return u
}

// upRate is the uplink estimate in bytes/s (see scheduler.EdgeLearner.Up;
// 0: nothing learned yet).
func (l *linkEstimate) upRate() float64 {
	l.access.mu.Lock()
	defer l.access.mu.Unlock()
	return l.access.learn.Up(l.cloud)
}

// linkTo returns the estimate for the named cloud.
func (n *Node) linkTo(cloud string) *linkEstimate {
	return &linkEstimate{cloud: cloud, access: &n.access}
}

// pingLoop pings every live cloud each scheduler.PingInterval (edges only).
func (n *Node) pingLoop() {
	defer n.wg.Done()
	t := time.NewTicker(scheduler.PingInterval)
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

// observe folds the ratio of one real send at prefix cut k into the table
// (scheduler.ObserveCutRatio).
func (t *codecTable) observe(codec string, k int, raw, wire int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	scheduler.ObserveCutRatio(t.codecs, codec, k, raw, wire)
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

// overheadWindow is scheduler.OverheadWindow, the residuals the overhead
// estimate takes the median of.
const overheadWindow = scheduler.OverheadWindow

// overheadEstimate is an edge's fixed per-request cost for one model
// (scheduler.OverheadLearner), under a lock.
type overheadEstimate struct {
	mu sync.Mutex
	o  scheduler.OverheadLearner
}

func (o *overheadEstimate) observe(residual time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.o.Observe(residual)
}

func (o *overheadEstimate) value() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.o.Value()
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
