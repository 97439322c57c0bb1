package scheduler

import "time"

// Learning a link from an edge's own traffic. An edge that offloads learns
// its uplink from what each of its transfers achieved; one that computes
// locally sends probes now and then so that a link that got better is
// noticed. EdgeLearner (edgelearn.go) applies these rules; node/ feeds it
// real transfers and sim/ simulated ones (estimation source "learned"), so
// a simulated device's view of its link lags and errs the way a real edge's
// does.
const (
	// RateAlpha weighs each new rate sample: per transfer, not per second
	// of busy time, so a few transfers on a new link outweigh a long
	// history on an old one.
	RateAlpha = 0.5
	// RateFullWeight is the airtime at which a transfer counts as a full
	// sample. Shorter ones carry the timers' and the RTT's jitter (a few
	// milliseconds) on a short time: a 400-byte boundary whose 0.2 ms
	// measured as 5 ms would read as a 25× slower link, so it moves the
	// estimate 1/50 as much as a full sample.
	RateFullWeight = 10 * time.Millisecond

	// ProbeAirtime is the uplink time a probe aims to take: long enough to
	// measure the rate above the jitter, short enough not to hold up the
	// requests queued behind it (a fixed 48 KiB probe held a 3G uplink for
	// 350 ms).
	ProbeAirtime = 50 * time.Millisecond
	// MinProbeBytes and MaxProbeBytes bound a probe.
	MinProbeBytes = 8 << 10
	MaxProbeBytes = 48 << 10
	// ProbeInterval is the least time between two probes to one cloud,
	// MaxProbeInterval the most (a probe that met an outage is slow, not
	// large).
	ProbeInterval    = time.Second
	MaxProbeInterval = 3 * time.Second
	// ProbeDuty bounds the share of the uplink's time probes may take: a
	// probe that took longer than ProbeInterval·ProbeDuty delays the next.
	ProbeDuty = 0.05
)

// RateLearner learns one direction of a link's goodput from transfers, as
// an EWMA (RateAlpha) of their rates weighted by their airtime. The zero
// value is ready and has no estimate; it is not safe for concurrent use.
type RateLearner struct {
	e EWMA
}

// Observe folds in a transfer that achieved rate (bytes/s) over airtime: it
// weighs min(1, airtime/RateFullWeight) of a full sample. Pass as airtime
// the transfer's time on the link as measured or, when the measurement is
// noisier than the transfer is long, as expected at the current estimate.
// Until the learner has a sample, one of less than half a weight is dropped:
// the caller's prior is better than a tiny transfer's rate.
func (l *RateLearner) Observe(rate float64, airtime time.Duration) {
	if rate <= 0 || airtime <= 0 {
		return
	}
	w := min(1, airtime.Seconds()/RateFullWeight.Seconds())
	if l.e.Count() == 0 && w < 0.5 {
		return
	}
	l.e.Alpha = RateAlpha
	l.e.AddWeighted(rate, w)
}

// Value is the learned rate in bytes/s, 0 before the first sample.
func (l *RateLearner) Value() float64 { return l.e.Value() }

// ProbeSize is the size in bytes of a probe on an uplink estimated at up
// bytes/s: ProbeAirtime of it, within [MinProbeBytes, MaxProbeBytes].
func ProbeSize(up float64) int {
	return int(min(max(up*ProbeAirtime.Seconds(), MinProbeBytes), MaxProbeBytes))
}

// ProbeWait is how long after a probe that took airtime on the uplink the
// next one may leave: at least ProbeInterval, long enough that probes take
// at most ProbeDuty of the link, at most MaxProbeInterval.
func ProbeWait(airtime time.Duration) time.Duration {
	return min(max(ProbeInterval, time.Duration(float64(airtime)/ProbeDuty)), MaxProbeInterval)
}
