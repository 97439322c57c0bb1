package scheduler

import (
	"fmt"
	"math"
	"time"

	"github.com/edgesplit/edgesplit/internal/cellreplay"
)

// TransferCurve is a burst-aware transfer term (CellReplay, Sentosa et al.,
// NSDI 2025: a short burst gets less bandwidth than a long flow, because a
// cellular scheduler grants a new flow little at first). A burst's k-th
// packet of PacketBytes arrives Light[k-1] after its first (Light[0] is
// usually 0); the packets past len(Light) leave at max(Delay, Light[last])
// after the start and then go at the long-flow rate LongBps, so a
// transfer's effective bandwidth grows with its size (EffectiveBps). Delay
// is the one-way base delay the curve was measured with (the link's RTT/2).
// A LinkEstimate with a curve prices its transfers with it instead of
// bytes ÷ rate.
type TransferCurve struct {
	PacketBytes int
	Light       []time.Duration
	LongBps     float64
	Delay       time.Duration
}

// CurveFromCellReplay is the mean transfer curve of a CellReplay link: the
// light trains' mean PDOs, the heavy trace's mean rate, the mean base
// delay.
func CurveFromCellReplay(l *cellreplay.Link) *TransferCurve {
	return &TransferCurve{PacketBytes: cellreplay.PacketBytes, Light: l.MeanPDOs(), LongBps: l.HeavyRate(), Delay: l.MeanDelay()}
}

func (c *TransferCurve) validate(field string) error {
	if c.PacketBytes <= 0 || !(c.LongBps > 0) || math.IsInf(c.LongBps, 0) || c.Delay < 0 {
		return &InputError{field, fmt.Sprintf("needs PacketBytes > 0, LongBps > 0 and finite, Delay ≥ 0 (got %d, %v, %v)", c.PacketBytes, c.LongBps, c.Delay)}
	}
	for i, d := range c.Light {
		if d < 0 || i > 0 && d < c.Light[i-1] {
			return &InputError{fmt.Sprintf("%s.Light[%d]", field, i), "must be ≥ 0 and non-decreasing"}
		}
	}
	return nil
}

// Time is the transfer term of a burst of n bytes: the time from the first
// packet's arrival to the last's (the base delay is in the RTT).
func (c *TransferCurve) Time(n int64) time.Duration {
	if n <= 0 {
		return 0
	}
	pb := int64(c.PacketBytes)
	pk := (n + pb - 1) / pb
	if len(c.Light) == 0 {
		return durOf(float64(n) / c.LongBps)
	}
	if pk <= int64(len(c.Light)) {
		return c.Light[pk-1]
	}
	last := c.Light[len(c.Light)-1]
	rest := float64(n - int64(len(c.Light))*pb)
	heavy := max(last-c.Delay, 0) + durOf(rest/c.LongBps)
	return max(heavy, last)
}

// EffectiveBps is n bytes ÷ Time(n), bytes per second (LongBps for a burst
// that takes no time).
func (c *TransferCurve) EffectiveBps(n int64) float64 {
	t := c.Time(n)
	if t <= 0 {
		return c.LongBps
	}
	return float64(n) / t.Seconds()
}

// upTime is the uplink term of wire bytes on l.
func (l *LinkEstimate) upTime(wire int64) time.Duration {
	if l.UpCurve != nil {
		return l.UpCurve.Time(wire)
	}
	return durOf(float64(wire) / l.Up)
}

// downTime is the downlink term of n bytes on l.
func (l *LinkEstimate) downTime(n int64) time.Duration {
	if l.DownCurve != nil {
		return l.DownCurve.Time(n)
	}
	return durOf(float64(n) / l.Down)
}

// bursty reports whether l prices transfers with a curve.
func (l *LinkEstimate) bursty() bool { return l.UpCurve != nil || l.DownCurve != nil }
