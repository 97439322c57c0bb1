package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/edgesplit/edgesplit/internal/heap"
	"github.com/edgesplit/edgesplit/internal/linkprofile"
	"github.com/edgesplit/edgesplit/internal/mahimahi"
)

// MTU is the bytes one Mahimahi delivery opportunity carries.
const MTU = mahimahi.OpportunityBytes

// maxTraceLines bounds a trace file (a day of 1 Gbit/s is far below it).
const maxTraceLines = 50_000_000

// Trace is a Mahimahi packet-delivery trace: each entry is a millisecond
// offset at which one MTU-sized packet can be delivered; the trace repeats
// with a period of its last timestamp.
type Trace struct {
	ops    mahimahi.Trace // ms, non-decreasing
	period int64          // ms
}

// ParseTrace reads a Mahimahi trace: one non-negative integer millisecond
// timestamp (below 2³² ms) per line, non-decreasing, the last one positive.
// Blank lines and lines starting with # are skipped.
func ParseTrace(r io.Reader) (*Trace, error) {
	ops, err := mahimahi.Parse(r, mahimahi.Limits{MaxOpportunities: maxTraceLines, MaxLineBytes: bufio.MaxScanTokenSize})
	if err != nil {
		return nil, traceError(err)
	}
	return &Trace{ops: ops, period: int64(ops[len(ops)-1])}, nil
}

// traceError words a parse error as the simulator always has (it reaches
// scenario validation messages).
func traceError(err error) error {
	var e *mahimahi.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("trace: %w", err)
	}
	switch e.Kind {
	case mahimahi.NotTimestamp:
		return fmt.Errorf("trace line %d: %q is not a millisecond timestamp ≥ 0", e.Line, e.Text)
	case mahimahi.Decreasing:
		return fmt.Errorf("trace line %d: timestamp %d goes back (previous %d)", e.Line, e.Value, e.Prev)
	case mahimahi.TooMany:
		return fmt.Errorf("trace: more than %d lines", e.Limit)
	case mahimahi.ReadFailed:
		return fmt.Errorf("trace: %w", e.Err)
	case mahimahi.Empty:
		return errors.New("trace: no timestamps")
	case mahimahi.NoPeriod:
		return errors.New("trace: last timestamp must be > 0 (it is the period)")
	}
	return fmt.Errorf("trace: %w", err)
}

// TraceFromRate builds a trace of a constant rate in Mbit/s over periodMs
// (1 ≤ periodMs < 2³²).
func TraceFromRate(mbps float64, periodMs int64) *Trace {
	perMs := mbps * 1e6 / 8 / MTU / 1000
	t := &Trace{period: periodMs}
	acc := 0.0
	for ms := int64(1); ms <= periodMs; ms++ {
		acc += perMs
		for acc >= 1 {
			t.ops = append(t.ops, uint32(ms))
			acc--
		}
	}
	if len(t.ops) == 0 || int64(t.ops[len(t.ops)-1]) != periodMs {
		t.ops = append(t.ops, uint32(periodMs))
	}
	return t
}

// MeanMbps is the trace's average rate.
func (t *Trace) MeanMbps() float64 { return t.ops.MeanRate() / 1e6 }

// count is the number of opportunities strictly before time ns (from 0).
func (t *Trace) count(ns int64) int64 { return t.ops.CountBefore(time.Duration(ns)) }

// at is the time (ns) of opportunity number c (0-based).
func (t *Trace) at(c int64) int64 { return int64(t.ops.At(c)) }

// finish returns when bytes sent from time start (ns) have all been
// delivered: the time of the ceil(bytes/MTU)-th opportunity at or after
// start. phase shifts the trace (ns).
func (t *Trace) finish(start, phase, bytes int64) int64 {
	if bytes <= 0 {
		return start
	}
	pk := (bytes + MTU - 1) / MTU
	c := t.count(start + phase)
	return t.at(c+pk-1) - phase
}

// rate is the mean rate in bytes/s over [from, to) (ns), phase-shifted.
func (t *Trace) rate(from, to, phase int64) float64 {
	if to <= from {
		return 0
	}
	b := t.ops.Bytes(time.Duration(from+phase), time.Duration(to+phase))
	return float64(b) / (float64(to-from) / 1e9)
}

// cell shares an uplink among the flows in progress by egalitarian
// processor sharing, using virtual time: every active flow has received v
// bytes since the cell was idle; a flow finishes when v reaches its start v
// plus its size. The next completion is rescheduled on every change; events
// of an older generation are ignored.
type cell struct {
	rate  float64 // uplink bytes per ns
	down  float64 // downlink bytes per ns (no sharing)
	delay int64   // one-way ns
	v     float64
	last  int64
	flows heap.Heap[float64, int32] // requests by virtual finish, then start order
	gen   int32
	busy  int64 // ns with at least one flow (for utilisation)
}

func (c *cell) advance(now int64) {
	if n := c.flows.Len(); n > 0 {
		c.v += float64(now-c.last) * c.rate / float64(n)
		c.busy += now - c.last
	}
	c.last = now
}

// next returns when the earliest flow completes, given no change.
func (c *cell) next(now int64) int64 {
	fin, _ := c.flows.Peek()
	d := (fin - c.v) * float64(c.flows.Len()) / c.rate
	return now + max(1, int64(math.Ceil(d)))
}

// due reports whether the earliest flow has been served (to rounding).
func (c *cell) due() bool {
	if c.flows.Len() == 0 {
		return false
	}
	fin, _ := c.flows.Peek()
	return fin <= c.v+1e-9*math.Abs(c.v)+1e-6
}

// LinkProfile is a named fixed link: rates in Mbit/s, one-way delay in
// milliseconds, random loss as a fraction.
type LinkProfile struct {
	UpMbps, DownMbps float64
	DelayMs          float64
	Loss             float64
	Source           string
}

// LinkProfileNamed returns the named link profile, from the table the
// emulator (transport/linkem) uses too (internal/linkprofile): the mean
// rates (a time-varying profile's mean; the simulator's fixed profile has no
// blockage) and the one-way delay.
func LinkProfileNamed(name string) (LinkProfile, bool) {
	p, ok := linkprofile.Lookup(name)
	if !ok {
		return LinkProfile{}, false
	}
	return LinkProfile{UpMbps: p.Up.MeanMbps(), DownMbps: p.Down.MeanMbps(),
		DelayMs: float64(p.Up.Delay) / float64(time.Millisecond), Source: p.Source}, true
}

// LinkProfileNames lists the named link profiles, sorted.
func LinkProfileNames() []string { return linkprofile.Names() }
