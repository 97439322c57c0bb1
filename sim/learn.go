package sim

import (
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
)

// DeviceLearner is what a simulated device learns of its link (estimation
// source "learned"): a [scheduler.EdgeLearner], the rules an edge node
// learns by, fed what an edge node would measure, in simulated time (ns
// from the start of the run): a ping each [scheduler.PingInterval] from
// time 0, and for each upload the rate and the RTT that the cloud's timing
// of its arrival gives a node. sim gives a device one path shape to every
// server (its access link and the backhaul), so one path's samples stand
// for all. It is exported so that node's tests can feed it and a node's
// learner the same events. The zero value is ready; it is not safe for
// concurrent use.
type DeviceLearner struct {
	learn    scheduler.EdgeLearner
	pingNext int64 // the next ping not fed to learn yet
}

// devicePath names a device's one path in its learner.
const devicePath = ""

// simTime is simulated time ns as the learner's clock.
func simTime(ns int64) time.Time { return time.Unix(0, ns) }

// Pings feeds the pings the device sent by now, each measuring rtt(t), the
// path's RTT when it left. Only the last scheduler.RTTWindow of a run of
// them can matter: the learner keeps no more. Call it before any other
// sample at now, so samples go in in time order.
func (d *DeviceLearner) Pings(now int64, rtt func(t int64) time.Duration) {
	pi := int64(scheduler.PingInterval)
	if d.pingNext > now {
		return
	}
	last := now - now%pi
	for t := max(d.pingNext, last-(scheduler.RTTWindow-1)*pi); t <= last; t += pi {
		d.learn.ObservePing(devicePath, simTime(t), rtt(t), false)
	}
	d.pingNext = last + pi
}

// Upload feeds an upload whose answer is back at now: it achieved rate
// (bytes/s; 0: no rate sample) over air ns on the uplink, and its packets
// met an RTT of rtt.
func (d *DeviceLearner) Upload(now int64, rate float64, air int64, rtt time.Duration) {
	if rate > 0 {
		d.learn.ObserveRate(devicePath, simTime(now), rate, time.Duration(air))
	}
	d.learn.ObservePing(devicePath, simTime(now), rtt, false)
}

// Download feeds a download that achieved rate (bytes/s) over air ns.
func (d *DeviceLearner) Download(now int64, rate float64, air int64) {
	d.learn.ObserveDown(simTime(now), rate, time.Duration(air))
}

// Probe says whether a probe may leave at now; when it returns true, the
// probe is in flight until ProbeDone.
func (d *DeviceLearner) Probe(now int64) bool {
	_, ok := d.learn.ProbeTarget(simTime(now), []string{devicePath})
	return ok
}

// ProbeDone ends the probe in flight at now; it took air ns on the uplink.
func (d *DeviceLearner) ProbeDone(now, air int64) {
	d.learn.ProbeDone(simTime(now), time.Duration(air), true)
}

// Estimate is the device's estimate of its access link at now: prior (its
// link's configured rates) with what it has learned in its place.
func (d *DeviceLearner) Estimate(now int64, prior scheduler.LinkEstimate) scheduler.LinkEstimate {
	return d.learn.Link(devicePath, simTime(now), prior)
}
