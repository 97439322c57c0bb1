package linkem

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/edgesplit/edgesplit/internal/cellreplay"
	"github.com/edgesplit/edgesplit/internal/mahimahi"
)

// BurstTrace is one direction of a burst-aware cellular link recorded by
// CellReplay (Sentosa et al., NSDI 2025): a light trace of probe trains
// (each with the base delay its first packet saw and the delivery
// opportunities, PDOs, of a short burst) and a heavy Mahimahi-style trace
// recorded under a saturating flow. Replayed through LinkSettings.Cellular,
// a packet that finds the link idle starts a new light train at the base
// delay of that moment, the following packets take the train's PDOs, and
// those past them are served by the heavy trace: short bursts get the
// (lower) bandwidth short bursts get, long flows the heavy trace's, and the
// RTT varies as recorded. The format is internal/cellreplay's (the public
// repository's files: up-delay-light-pdo, up-heavy-pdo). A BurstTrace is
// immutable and safe for concurrent use.
type BurstTrace struct {
	link *cellreplay.Link
}

// ParseBurstTrace reads a light (packet-train) trace and a heavy trace.
// Errors wrap ErrBadTrace.
func ParseBurstTrace(light, heavy io.Reader) (*BurstTrace, error) {
	trains, err := cellreplay.ParseLight(light, cellreplay.Limits{})
	if err != nil {
		return nil, fmt.Errorf("%w: light trace: %w", ErrBadTrace, err)
	}
	h, err := mahimahi.Parse(heavy, mahimahi.Limits{MaxOpportunities: MaxTraceLines, MaxLineBytes: maxTraceLineBytes})
	if err != nil {
		return nil, fmt.Errorf("%w: heavy trace: %w", ErrBadTrace, err)
	}
	l, err := cellreplay.NewLink(trains, h)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadTrace, err)
	}
	return &BurstTrace{link: l}, nil
}

// LoadBurstTrace reads a light and a heavy trace file.
func LoadBurstTrace(lightPath, heavyPath string) (*BurstTrace, error) {
	lf, err := os.Open(lightPath)
	if err != nil {
		return nil, fmt.Errorf("linkem: %w", err)
	}
	defer lf.Close()
	hf, err := os.Open(heavyPath)
	if err != nil {
		return nil, fmt.Errorf("linkem: %w", err)
	}
	defer hf.Close()
	b, err := ParseBurstTrace(lf, hf)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", lightPath, heavyPath, err)
	}
	return b, nil
}

// MeanDelay is the mean one-way base delay of the light trains.
func (b *BurstTrace) MeanDelay() time.Duration { return b.link.MeanDelay() }

// BaseDelay is the one-way base delay at t from the trace's start
// (interpolated between trains, looping).
func (b *BurstTrace) BaseDelay(t time.Duration) time.Duration { return b.link.BaseDelay(t) }

// MeanRate is the heavy trace's mean rate in bit/s (a long flow's).
func (b *BurstTrace) MeanRate() float64 { return b.link.HeavyRate() * 8 }

// Transfer returns when the last byte of an n-byte burst sent at t from
// the trace's start on an idle link arrives, base delay included.
func (b *BurstTrace) Transfer(t time.Duration, n int64) time.Duration { return b.link.Transfer(t, n) }

// Link is the underlying replay model, for the scheduler's transfer curve
// (scheduler.CurveFromCellReplay) within this module.
func (b *BurstTrace) Link() *cellreplay.Link { return b.link }
