package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
)

// maybeProbe keeps the link estimates fresh while requests run on the edge:
// with nothing offloaded, transport measures no goodput and an improved link
// would never be noticed. When a probe is due (scheduler.ProbeWait after
// the last), it sends one sized to the current estimate
// (scheduler.ProbeSize) in the background; the cloud discards it and says
// how long it took to arrive.
func (n *Node) maybeProbe(m *Model) {
	if n.Closed() {
		return
	}
	// One probe at a time, to the cloud probed least recently
	// (scheduler.EdgeLearner.ProbeTarget). Banned clouds are probed too, so
	// their estimate is fresh when the ban ends.
	n.edge.access.mu.Lock()
	due := n.edge.access.learn.ProbeDue(time.Now())
	n.edge.access.mu.Unlock()
	if !due {
		return
	}
	var names []string
	peers := map[string]Peer{}
	for _, p := range n.members.Peers() {
		if !n.usableCloud(p, m) {
			continue
		}
		names = append(names, p.Name)
		peers[p.Name] = p
	}
	n.edge.access.mu.Lock()
	name, ok := n.edge.access.learn.ProbeTarget(time.Now(), names)
	n.edge.access.mu.Unlock()
	if !ok {
		return
	}
	target := peers[name]
	est := n.linkEstimate(target)
	size := scheduler.ProbeSize(est.Up)
	n.wg.Add(1)
	go func(p Peer) {
		defer n.wg.Done()
		l := n.linkTo(p.Name)
		loaded := l.busy()
		d, rh, err := n.probe(p, l.upload(bytes.NewReader(probePayload[:size])))
		var air time.Duration
		if err == nil {
			air = d - est.RTT
			if rd, _, ok := rh.recvTiming(); ok {
				air = rd // the cloud's timing of the arrival is the better measure
			}
		}
		u := uploadSample(int64(size), d, 0, est, rh, loaded)
		now := time.Now()
		n.edge.access.mu.Lock()
		n.edge.access.learn.ProbeDone(now, air, err == nil)
		if err == nil {
			n.edge.access.learn.ObserveUpload(p.Name, now, u)
		}
		n.edge.access.mu.Unlock()
	}(target)
}

// probePayload is incompressible-looking filler (QUIC does not compress,
// but keep it realistic for any middlebox that would).
var probePayload = func() (b [scheduler.MaxProbeBytes]byte) {
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}()

// pingLoop pings every live cloud each scheduler.PingInterval (edges and
// edge servers).
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
		n.prefetchProfiles()
		if n.cfg.Role == RoleEdgeServer {
			// An edge server sends boundaries on only when edges plan
			// three tiers through it, and they plan them on the uplink it
			// gossips: it probes its uplinks itself.
			n.maybeProbe(nil)
		}
		for _, p := range n.members.Peers() {
			if !n.usableCloud(p, nil) {
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
// how long the exchange took and the cloud's response header.
func (n *Node) probe(p Peer, body *uploadBody) (time.Duration, segmentResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ref := p.Meta.Models[0]
	start := time.Now()
	var r io.Reader
	if body != nil {
		r = body
		defer body.done()
	}
	resp, err := n.callPeer(ctx, p, segmentRequest{Op: opProbe, Model: ref.ID, Version: ref.Version}, r)
	if err != nil {
		return 0, segmentResponse{}, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	rh, herr := unmarshalSegmentResponse(resp.Header)
	if herr != nil {
		return 0, segmentResponse{}, fmt.Errorf("node: probe answer from %s: %w", p.Name, herr)
	}
	return d, rh, err
}
