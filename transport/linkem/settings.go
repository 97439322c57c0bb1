package linkem

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Direction names one direction of an emulated link.
type Direction uint8

const (
	// Uplink carries packets written to the [Conn] (local → remote).
	Uplink Direction = iota
	// Downlink carries packets read from the [Conn] (remote → local).
	Downlink
)

// String returns "uplink" or "downlink".
func (d Direction) String() string {
	switch d {
	case Uplink:
		return "uplink"
	case Downlink:
		return "downlink"
	default:
		return fmt.Sprintf("Direction(%d)", uint8(d))
	}
}

// Mbps converts megabits per second to bits per second.
func Mbps(m float64) float64 { return m * 1e6 }

// DefaultQueueDelay is the drop-tail queue limit used when a rate-limited
// direction sets neither QueueBytes nor QueueDelay.
const DefaultQueueDelay = 100 * time.Millisecond

// minQueueBytes is the smallest queue a rate-limited link gets, so that a
// very slow link still holds a few full-size packets.
const minQueueBytes = 8 * 1500

// LinkSettings configures one direction of an emulated link. The zero value
// is a pass-through: no rate limit, no delay, no loss.
type LinkSettings struct {
	// Rate is the serialisation rate in bits per second, counting UDP payload
	// bytes plus Overhead per packet. Zero means unlimited. Ignored when
	// Trace is set.
	Rate float64
	// Trace, when set, gives the link's capacity over time as Mahimahi
	// delivery opportunities (looping); it overrides Rate.
	Trace *Trace
	// Cellular, when set, replays a burst-aware CellReplay direction
	// (BurstTrace): it replaces Rate, Trace and Delay (the base delay is the
	// trace's, varying over time). Packets are charged their size plus
	// Overhead against its 1400-byte opportunities.
	Cellular *BurstTrace
	// Overhead is added to each packet's size when charging it against the
	// rate or trace (28 counts IPv4+UDP headers, as Mahimahi does). Default 0.
	Overhead int
	// Delay is the one-way propagation delay.
	Delay time.Duration
	// Jitter spreads each packet's delay uniformly over
	// [Delay-Jitter, Delay+Jitter] (never below zero). Packets keep their
	// order unless AllowReorder is set.
	Jitter time.Duration
	// AllowReorder lets jitter reorder packets.
	AllowReorder bool
	// Loss is the probability in [0, 1] that a packet is dropped at random.
	Loss float64
	// Burst, when set, adds Gilbert–Elliott bursty loss.
	Burst *GilbertElliott
	// QueueBytes limits the drop-tail queue (bytes waiting for, or in,
	// serialisation). Zero means: use QueueDelay.
	QueueBytes int
	// QueueDelay limits the queue to this much time at the configured rate
	// (the trace's mean rate for a trace). When both QueueBytes and
	// QueueDelay are zero on a rate-limited link, DefaultQueueDelay is used.
	QueueDelay time.Duration
	// MTU drops packets whose UDP payload exceeds it. Zero means no limit.
	MTU int
	// Seed seeds this direction's random source (loss, jitter). Zero picks
	// a fixed default so runs are reproducible.
	Seed uint64
}

// GilbertElliott is a two-state bursty loss model. In each state a packet is
// lost with that state's probability; before each packet the state changes
// with probability PGoodToBad (from Good) or PBadToGood (from Bad). The mean
// burst length is 1/PBadToGood packets.
type GilbertElliott struct {
	PGoodToBad float64
	PBadToGood float64
	LossGood   float64
	LossBad    float64
}

// MeanLoss returns the stationary loss rate of the model.
func (g GilbertElliott) MeanLoss() float64 {
	s := g.PGoodToBad + g.PBadToGood
	if s == 0 {
		return g.LossGood
	}
	pBad := g.PGoodToBad / s
	return (1-pBad)*g.LossGood + pBad*g.LossBad
}

// ErrInvalidSettings is wrapped by every settings validation error.
var ErrInvalidSettings = errors.New("linkem: invalid link settings")

func prob(name string, p float64) error {
	if math.IsNaN(p) || p < 0 || p > 1 {
		return fmt.Errorf("%w: %s = %v, want a probability in [0, 1]", ErrInvalidSettings, name, p)
	}
	return nil
}

// Validate reports the first invalid field, wrapping [ErrInvalidSettings].
func (s LinkSettings) Validate() error {
	if math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) || s.Rate < 0 {
		return fmt.Errorf("%w: Rate = %v bit/s, want ≥ 0", ErrInvalidSettings, s.Rate)
	}
	if s.Rate > 0 && s.Rate < 1000 {
		return fmt.Errorf("%w: Rate = %v bit/s is below 1 kbit/s", ErrInvalidSettings, s.Rate)
	}
	if s.Trace != nil {
		if err := s.Trace.validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidSettings, err)
		}
	}
	if s.Cellular != nil && s.Cellular.link == nil {
		return fmt.Errorf("%w: Cellular is not a parsed BurstTrace", ErrInvalidSettings)
	}
	if s.Overhead < 0 || s.Overhead > 1<<16 {
		return fmt.Errorf("%w: Overhead = %d, want 0..65536", ErrInvalidSettings, s.Overhead)
	}
	if s.Delay < 0 || s.Jitter < 0 || s.QueueDelay < 0 {
		return fmt.Errorf("%w: negative Delay, Jitter or QueueDelay", ErrInvalidSettings)
	}
	if s.Delay > time.Hour || s.Jitter > time.Hour || s.QueueDelay > time.Hour {
		return fmt.Errorf("%w: Delay, Jitter or QueueDelay over an hour", ErrInvalidSettings)
	}
	if s.QueueBytes < 0 {
		return fmt.Errorf("%w: QueueBytes = %d, want ≥ 0", ErrInvalidSettings, s.QueueBytes)
	}
	if s.MTU < 0 {
		return fmt.Errorf("%w: MTU = %d, want ≥ 0", ErrInvalidSettings, s.MTU)
	}
	if err := prob("Loss", s.Loss); err != nil {
		return err
	}
	if b := s.Burst; b != nil {
		for _, p := range []struct {
			n string
			v float64
		}{{"Burst.PGoodToBad", b.PGoodToBad}, {"Burst.PBadToGood", b.PBadToGood}, {"Burst.LossGood", b.LossGood}, {"Burst.LossBad", b.LossBad}} {
			if err := prob(p.n, p.v); err != nil {
				return err
			}
		}
	}
	return nil
}

// PassThrough reports whether the settings leave packets untouched.
func (s LinkSettings) PassThrough() bool {
	return s.Rate == 0 && s.Trace == nil && s.Cellular == nil && s.Delay == 0 && s.Jitter == 0 &&
		s.Loss == 0 && s.Burst == nil && s.MTU == 0
}

// limited reports whether the direction serialises at a finite rate.
func (s LinkSettings) limited() bool { return s.Rate > 0 || s.Trace != nil || s.Cellular != nil }

// MeanRate returns the configured capacity in bit/s: Rate, or the trace's
// (a cellular trace's heavy, long-flow) mean rate. Zero means unlimited.
func (s LinkSettings) MeanRate() float64 {
	if s.Cellular != nil {
		return s.Cellular.MeanRate()
	}
	if s.Trace != nil {
		return s.Trace.MeanRate()
	}
	return s.Rate
}

// queueLimit returns the drop-tail limit in bytes (0 = unlimited).
func (s LinkSettings) queueLimit() int {
	if !s.limited() {
		return 0
	}
	if s.QueueBytes > 0 {
		return s.QueueBytes
	}
	d := s.QueueDelay
	if d == 0 {
		d = DefaultQueueDelay
	}
	b := int(s.MeanRate() / 8 * d.Seconds())
	return max(b, minQueueBytes)
}
