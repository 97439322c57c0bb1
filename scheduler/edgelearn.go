package scheduler

import (
	"time"

	"github.com/edgesplit/edgesplit/internal/stats"
)

// The edge's learning core: every rule by which an edge learns its links
// and its own fixed cost from its traffic, in one place, with no I/O and no
// clock of its own. node/ feeds it what its pings, transfers and probes
// measured, stamped with time.Now(); sim/ feeds it what a simulated device
// would have measured, stamped with simulated time. Both read their
// estimates back from it, so an emulated edge and a simulated one learn
// alike by construction.

// PingInterval is how often an edge measures the RTT of its path to each
// cloud with a ping.
const PingInterval = 500 * time.Millisecond

// RTT samples: pings, and the RTTs that uploads measured themselves
// (EdgeLearner.ObserveUpload). A sample taken while the edge was handing an
// upload of its own to the network (to any cloud: they share the access
// link's buffer) is "loaded": it may have queued behind that upload. A path
// keeps its last RTTWindow samples; its RTT is the median of the last
// RTTClean unloaded ones, so it follows a longer path within RTTClean
// samples.
const (
	RTTWindow = 6
	RTTClean  = 3
	// RTTFresh is how recent a path's own clean samples must be to be
	// preferred over the access link's (see EdgeLearner.RTT).
	RTTFresh = time.Second
)

// MinTimedBytes is the least a cloud must have timed arriving (after the
// first read) for its timing to be an uplink sample: three packets, so the
// rate is not one packet's scheduling noise.
const MinTimedBytes = 3 * 1200

// OverheadWindow is how many recent residuals the per-request overhead
// estimate takes the median of.
const OverheadWindow = 15

// MaxOverhead bounds the learned per-request overhead. The fixed cost of a
// request is a fraction of a millisecond; a larger residual is the profile
// being off (a slower or busier machine than when it was measured), which
// is not a per-request constant and must not be added to every plan.
const MaxOverhead = 2 * time.Millisecond

// RatioAlpha weighs a codec ratio observed on a real send against the
// table's.
const RatioAlpha = 0.5

// rttSample is one RTT measurement.
type rttSample struct {
	d      time.Duration
	at     time.Time
	loaded bool
}

// rttRing holds the recent RTT samples of a path or of the access link.
type rttRing struct {
	s [RTTWindow]rttSample
	n int // samples recorded (ring index = n % RTTWindow)
}

func (r *rttRing) add(p rttSample) {
	r.s[r.n%RTTWindow] = p
	r.n++
}

// clean returns the median of the last RTTClean unloaded samples and the
// time of the oldest of them; ok is false when there are fewer.
func (r *rttRing) clean() (d time.Duration, oldest time.Time, ok bool) {
	var c [RTTClean]time.Duration
	k := 0
	for i := 1; i <= min(r.n, RTTWindow) && k < RTTClean; i++ { // newest first
		p := r.s[(r.n-i)%RTTWindow]
		if !p.loaded {
			c[k] = p.d
			oldest = p.at
			k++
		}
	}
	if k < RTTClean {
		return 0, time.Time{}, false
	}
	return stats.MedianInPlace(c[:]), oldest, true
}

// least is the smallest sample of the window (0 when empty): queueing only
// ever adds to a sample.
func (r *rttRing) least() time.Duration {
	var lo time.Duration
	for i := 1; i <= min(r.n, RTTWindow); i++ {
		d := r.s[(r.n-i)%RTTWindow].d
		if i == 1 || d < lo {
			lo = d
		}
	}
	return lo
}

// pathLearner is what an edge learned of its path to one cloud.
type pathLearner struct {
	rtts     rttRing
	up       RateLearner
	accessAt float64 // the access link's estimate just after up's last sample
}

// EdgeLearner is an edge's view of its links, learned from its own traffic:
// per cloud, the RTT and the uplink goodput; on the access link (every
// sample to any cloud), the same; the downlink goodput where the caller
// measures it; when the next link probe may leave and to which cloud.
//
// The access link is usually every path's bottleneck, so when it changes,
// the transfers to one cloud tell the edge about all of them, and the
// planner does not flee to a cloud whose estimate is merely older. A
// cloud's uplink is its own estimate scaled by how much the access link's
// changed since the cloud's last sample: a change of the radio moves every
// path alike, and a cloud behind a slower path keeps its ratio to the
// others. A cloud's RTT is its own while it has fresh clean samples, the
// access link's when it has not (a cloud the edge is not sending to, whose
// pings all queue behind the uploads to another).
//
// Clouds are named by any string the caller chooses (node: the member name;
// sim: one name for the one path shape its devices have to every server).
// Every Observe method takes the time of the observation and every query
// the time it is asked at; the learner never reads a clock. The zero value
// is ready; an EdgeLearner is not safe for concurrent use.
type EdgeLearner struct {
	paths     map[string]*pathLearner
	rtts      rttRing     // the access link's RTT samples
	up        RateLearner // the access link's uplink
	down      RateLearner // downlink, when the caller measures it (ObserveDown)
	lastProbe map[string]time.Time
	nextProbe time.Time
	probing   bool
}

func (l *EdgeLearner) path(cloud string) *pathLearner {
	p, ok := l.paths[cloud]
	if !ok {
		if l.paths == nil {
			l.paths = make(map[string]*pathLearner)
		}
		p = &pathLearner{}
		l.paths[cloud] = p
	}
	return p
}

// ObservePing records an RTT sample d to cloud taken at at; loaded if the
// edge was sending when it left. It counts for the cloud's path and for the
// access link.
func (l *EdgeLearner) ObservePing(cloud string, at time.Time, d time.Duration, loaded bool) {
	s := rttSample{d: d, at: at, loaded: loaded}
	l.path(cloud).rtts.add(s)
	l.rtts.add(s)
}

// RTT is the RTT estimate of the path to cloud at now: the median of its
// last RTTClean clean samples when all are within RTTFresh of now; else the
// access link's when its are; else the path's stale median; else the least
// sample of the path's window; 0 when there is none.
func (l *EdgeLearner) RTT(cloud string, now time.Time) time.Duration {
	var own, least time.Duration
	var ownAt time.Time
	ownOK := false
	if p, ok := l.paths[cloud]; ok {
		own, ownAt, ownOK = p.rtts.clean()
		least = p.rtts.least()
	}
	if ownOK && now.Sub(ownAt) <= RTTFresh {
		return own
	}
	acc, accAt, accOK := l.rtts.clean()
	switch {
	case accOK && now.Sub(accAt) <= RTTFresh:
		return acc
	case ownOK:
		return own
	}
	return least
}

// ObserveRate folds an uplink sample to cloud into the path's learner and
// the access link's: rate bytes/s over airtime (see RateLearner.Observe).
// at is the time of the sample; the uplink rules do not depend on it.
func (l *EdgeLearner) ObserveRate(cloud string, at time.Time, rate float64, airtime time.Duration) {
	l.up.Observe(rate, airtime)
	p := l.path(cloud)
	p.up.Observe(rate, airtime)
	p.accessAt = l.up.Value()
}

// ObserveTransfer folds in a transfer of n bytes to cloud that took d on the
// wire, given the uplink estimate est (bytes/s) it was planned with. The
// wire time is what was left of the network time after one RTT (the
// estimate) and the download, so it carries the RTT's jitter: the sample
// weighs as much as its serialisation at est is long (RateFullWeight when
// est is 0).
func (l *EdgeLearner) ObserveTransfer(cloud string, at time.Time, n int64, d time.Duration, est float64) {
	if n <= 0 || d <= 0 {
		return
	}
	ser := RateFullWeight
	if est > 0 {
		ser = time.Duration(float64(n) / est * float64(time.Second))
	}
	l.ObserveRate(cloud, at, float64(n)/d.Seconds(), ser)
}

// ObserveTimed folds in n bytes that the cloud saw arrive within d, back
// to back: a sample weighing as much as d is long; none under MinTimedBytes.
func (l *EdgeLearner) ObserveTimed(cloud string, at time.Time, n int64, d time.Duration) {
	if n < MinTimedBytes || d <= 0 {
		return
	}
	l.ObserveRate(cloud, at, float64(n)/d.Seconds(), d)
}

// Upload is what one upload (an offloaded request or a probe) measured.
type Upload struct {
	Bytes   int64         // body size
	Network time.Duration // the exchange's time less the cloud's own work
	Down    time.Duration // the answer's download at Est
	Est     LinkEstimate  // the estimate taken before the upload
	// RecvTime and RecvBytes are the cloud's timing of the body's arrival
	// (bytes after the first read and their time); RecvBytes 0: untimed.
	RecvTime  time.Duration
	RecvBytes int64
	// Loaded: another upload of the edge's was in flight when it left.
	Loaded bool
}

// ObserveUpload folds in what one upload to cloud taught, at at. When the
// cloud timed the body's arrival, the RTT is what is left of the network
// time after that arrival, the part that came with the first read (at Est)
// and the download: a sample as clean as an unloaded ping's, so the RTT
// stays fresh while the edge offloads back to back. The uplink sample is
// the cloud's timing when it covers MinTimedBytes, else the network time
// less one RTT and the download (ObserveTransfer).
func (l *EdgeLearner) ObserveUpload(cloud string, at time.Time, u Upload) {
	n := u.Bytes
	rd, rb := u.RecvTime, u.RecvBytes
	timed := rb > 0 && rd >= 0
	if !timed || rb > n {
		rd, rb, timed = 0, 0, false
	}
	var first time.Duration
	if u.Est.Up > 0 {
		first = time.Duration(float64(n-rb) / u.Est.Up * float64(time.Second))
	}
	if rtt := u.Network - rd - first - u.Down; !u.Loaded && rtt > 0 {
		l.ObservePing(cloud, at, rtt, false)
	}
	if timed && rb >= MinTimedBytes {
		l.ObserveTimed(cloud, at, rb, rd)
		return
	}
	l.ObserveTransfer(cloud, at, n, max(u.Network-u.Est.RTT-u.Down, 100*time.Microsecond), u.Est.Up)
}

// Up is the uplink estimate to cloud in bytes/s: the path's own, scaled by
// the access link's change since the path's last sample; the access link's
// when the path has none; 0 when nothing is learned yet.
func (l *EdgeLearner) Up(cloud string) float64 {
	var up, at float64
	if p, ok := l.paths[cloud]; ok {
		up, at = p.up.Value(), p.accessAt
	}
	a := l.up.Value()
	switch {
	case up == 0:
		return a
	case at > 0 && a > 0 && a != at:
		return up * a / at
	}
	return up
}

// ObserveDown folds a downlink sample (rate bytes/s over airtime) in, for a
// caller that measures its downlink from its transfers (sim; a node takes
// its downlink from transport instead).
func (l *EdgeLearner) ObserveDown(at time.Time, rate float64, airtime time.Duration) {
	l.down.Observe(rate, airtime)
}

// Down is the learned downlink in bytes/s (ObserveDown), 0 before the first
// sample.
func (l *EdgeLearner) Down() float64 { return l.down.Value() }

// Link is the estimate of the path to cloud at now: prior (the configured
// link) with what has been learned in its place — the RTT, the uplink, and
// the downlink when ObserveDown was fed.
func (l *EdgeLearner) Link(cloud string, now time.Time, prior LinkEstimate) LinkEstimate {
	if rtt := l.RTT(cloud, now); rtt > 0 {
		prior.RTT = rtt
	}
	if up := l.Up(cloud); up > 0 {
		prior.Up = up
	}
	if down := l.down.Value(); down > 0 {
		prior.Down = down
	}
	return prior
}

// PathLink is the estimate of the path to peer from that path's own samples
// only, prior where it has none: for a peer that does not sit behind the
// access link the edge's other paths share (an edge server on the local
// network, whose path is not the clouds' path), so the access link's
// figures, learned from traffic to clouds, do not apply. Its RTT is the
// median of the path's last clean samples however old, else its least
// sample; its uplink the path's learned rate.
func (l *EdgeLearner) PathLink(peer string, prior LinkEstimate) LinkEstimate {
	p, ok := l.paths[peer]
	if !ok {
		return prior
	}
	if rtt, _, ok := p.rtts.clean(); ok {
		prior.RTT = rtt
	} else if least := p.rtts.least(); least > 0 {
		prior.RTT = least
	}
	if up := p.up.Value(); up > 0 {
		prior.Up = up
	}
	return prior
}

// ProbeDue says whether a link probe may leave at now (none in flight, and
// the wait after the last one is over).
func (l *EdgeLearner) ProbeDue(now time.Time) bool {
	return !l.probing && !now.Before(l.nextProbe)
}

// ProbeTarget says whether a link probe may leave at now and to which of
// clouds: the one probed least recently (the first of equals; never probed
// counts as longest ago). One probe at a time: probes to all clouds at once
// would share the access link and each read as a fraction of it. When it
// returns ok, the probe counts as in flight until ProbeDone.
func (l *EdgeLearner) ProbeTarget(now time.Time, clouds []string) (cloud string, ok bool) {
	if !l.ProbeDue(now) {
		return "", false
	}
	var last time.Time
	for _, c := range clouds {
		if t := l.lastProbe[c]; !ok || t.Before(last) {
			cloud, last, ok = c, t, true
		}
	}
	if !ok {
		return "", false
	}
	if l.lastProbe == nil {
		l.lastProbe = make(map[string]time.Time)
	}
	l.lastProbe[cloud] = now
	l.probing = true
	return cloud, true
}

// ProbeDone ends the probe in flight at at: it took airtime on the uplink
// (the cloud's timing of its arrival, or its time less one RTT) when
// delivered; the next may leave ProbeWait(airtime) later, or ProbeInterval
// after a failed one. The probe's samples go in through ObserveUpload.
func (l *EdgeLearner) ProbeDone(at time.Time, airtime time.Duration, delivered bool) {
	wait := ProbeInterval
	if delivered {
		wait = ProbeWait(airtime)
	}
	l.probing = false
	l.nextProbe = at.Add(wait)
}

// OverheadLearner learns an edge's fixed per-request cost for one model:
// what an edge-only request takes beyond the profile's compute (request
// handling, scheduling, timer wake-ups), added to every plan alike. It is
// the median of the last OverheadWindow residuals, each within [0,
// MaxOverhead]: a fixed cost, seen through a shared host's occasional
// preemptions (a probe's encryption running beside the request, a GC),
// which a mean would fold into every prediction. The zero value is ready;
// it is not safe for concurrent use.
type OverheadLearner struct {
	ring [OverheadWindow]time.Duration
	n    int // residuals seen (ring index = n % OverheadWindow)
}

// Observe folds in one edge-only request's residual: its time less the
// profile's compute.
func (o *OverheadLearner) Observe(residual time.Duration) {
	o.ring[o.n%OverheadWindow] = min(max(residual, 0), MaxOverhead)
	o.n++
}

// Value is the learned overhead, 0 before the first residual.
func (o *OverheadLearner) Value() time.Duration {
	k := min(o.n, OverheadWindow)
	if k == 0 {
		return 0
	}
	var buf [OverheadWindow]time.Duration
	w := buf[:k]
	copy(w, o.ring[:k])
	return stats.MedianInPlace(w)
}

// ObserveCutRatio folds the ratio of one real send of codec at prefix cut k
// (raw bytes encoded as wire bytes) into codecs' CutRatios: an average
// (RatioAlpha) with the table's ratio, or the ratio itself where the table
// has none.
func ObserveCutRatio(codecs []CodecModel, codec string, k int, raw, wire int64) {
	if raw <= 0 || wire <= 0 || k < 0 {
		return
	}
	r := float64(raw) / float64(wire)
	for i := range codecs {
		c := &codecs[i]
		if c.Name != codec || k >= len(c.CutRatios) {
			continue
		}
		if c.CutRatios[k] > 0 {
			c.CutRatios[k] += RatioAlpha * (r - c.CutRatios[k])
		} else {
			c.CutRatios[k] = r
		}
	}
}
