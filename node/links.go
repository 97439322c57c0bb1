package node

import (
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
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
func (l *linkEstimate) learnUpload(n int64, network, down time.Duration, est scheduler.LinkEstimate, rh segmentResponse, loaded bool) {
	l.learnUploadAt(time.Now(), n, network, down, est, rh, loaded)
}

func (l *linkEstimate) learnUploadAt(at time.Time, n int64, network, down time.Duration, est scheduler.LinkEstimate, rh segmentResponse, loaded bool) {
	u := uploadSample(n, network, down, est, rh, loaded)
	l.access.mu.Lock()
	defer l.access.mu.Unlock()
	l.access.learn.ObserveUpload(l.cloud, at, u)
}

// uploadSample translates what one upload measured into the learning
// core's terms: n bytes sent, network the exchange's time less the cloud's
// own work, down the answer's download at the estimate est (taken before
// the upload), rh the cloud's response header (its timing of the
// body's arrival, recvClock), and loaded whether another upload of the
// edge's was in flight when it left.
func uploadSample(n int64, network, down time.Duration, est scheduler.LinkEstimate, rh segmentResponse, loaded bool) scheduler.Upload {
	u := scheduler.Upload{Bytes: n, Network: network, Down: down, Est: est, Loaded: loaded}
	if rd, rb, ok := rh.recvTiming(); ok {
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
	return &linkEstimate{cloud: cloud, access: &n.edge.access}
}
