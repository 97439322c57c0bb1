package linkem

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/internal/mahimahi"
)

// OpportunityBytes is the number of bytes one Mahimahi delivery opportunity
// carries.
const OpportunityBytes = mahimahi.OpportunityBytes

// MaxTraceLines bounds the number of delivery opportunities a parsed trace
// may hold (≈ 20 minutes at 1 Gbit/s), so a hostile file cannot exhaust memory.
const MaxTraceLines = 100_000_000

// maxTraceLineBytes bounds one line of a trace file.
const maxTraceLineBytes = 4096

// ErrBadTrace is wrapped by every trace parsing or validation error.
var ErrBadTrace = errors.New("linkem: bad trace")

// Trace is a link capacity schedule in Mahimahi's format: a non-decreasing
// list of millisecond timestamps, one per 1500-byte delivery opportunity. Two
// opportunities in the same millisecond appear as two equal timestamps. The
// trace loops with a period equal to its last timestamp. A Trace is immutable
// and safe for concurrent use.
type Trace struct {
	ms mahimahi.Trace
}

// NewTrace builds a trace from opportunity timestamps in milliseconds. The
// slice is copied.
func NewTrace(ms []uint32) (*Trace, error) {
	t := &Trace{ms: slices.Clone(ms)}
	if err := t.validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// validate checks a Trace that may not have come from this package's
// constructors (a zero Trace literal).
func (t *Trace) validate() error {
	if err := mahimahi.Validate(t.ms); err != nil {
		return fmt.Errorf("%w: %w", ErrBadTrace, err)
	}
	return nil
}

// Period returns the loop period (the last timestamp).
func (t *Trace) Period() time.Duration { return t.ms.Period() }

// Len returns the number of delivery opportunities per period.
func (t *Trace) Len() int { return len(t.ms) }

// MeanRate returns the trace's mean capacity in bit/s.
func (t *Trace) MeanRate() float64 { return t.ms.MeanRate() }

// CapacityBytes returns the bytes the trace can deliver in [from, to),
// measured on the link's clock (time since the link started).
func (t *Trace) CapacityBytes(from, to time.Duration) int64 { return t.ms.Bytes(from, to) }

// ParseTrace reads a Mahimahi trace: one non-negative integer millisecond
// timestamp per line. Blank lines and lines starting with '#' are skipped.
func ParseTrace(r io.Reader) (*Trace, error) {
	ms, err := mahimahi.Parse(r, mahimahi.Limits{MaxOpportunities: MaxTraceLines, MaxLineBytes: maxTraceLineBytes})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadTrace, err)
	}
	return &Trace{ms: ms}, nil
}

// LoadTrace reads a Mahimahi trace file.
func LoadTrace(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("linkem: load trace: %w", err)
	}
	defer f.Close()
	t, err := ParseTrace(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// WriteTo writes the trace in Mahimahi's format.
func (t *Trace) WriteTo(w io.Writer) (int64, error) { return t.ms.WriteTo(w) }

// TraceFromRates builds a trace from a capacity series: rates[i] Mbit/s
// holds during [i*step, (i+1)*step). step must be a whole number of
// milliseconds. Opportunities are spread evenly within each step, so the last
// one of a non-empty step falls on the step's end. If the last step has zero
// rate the loop period ends at the last opportunity (as in Mahimahi).
func TraceFromRates(rates []float64, step time.Duration) (*Trace, error) {
	if step < time.Millisecond || step%time.Millisecond != 0 {
		return nil, fmt.Errorf("%w: step %v is not a whole number of milliseconds", ErrBadTrace, step)
	}
	stepMs := int64(step / time.Millisecond)
	var ms []uint32
	for i, r := range rates {
		if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 || r > 1e6 {
			return nil, fmt.Errorf("%w: rate %d is %v Mbit/s, want 0..1e6", ErrBadTrace, i, r)
		}
		n := int64(math.Round(r * 1e6 * step.Seconds() / 8 / OpportunityBytes))
		if int64(len(ms))+n > MaxTraceLines {
			return nil, fmt.Errorf("%w: more than %d opportunities", ErrBadTrace, MaxTraceLines)
		}
		base := int64(i) * stepMs
		if base+stepMs > math.MaxUint32 {
			return nil, fmt.Errorf("%w: trace longer than %d ms", ErrBadTrace, uint32(math.MaxUint32))
		}
		for k := int64(1); k <= n; k++ {
			// ceil(k*stepMs/n)
			off := (k*stepMs + n - 1) / n
			ms = append(ms, uint32(base+off))
		}
	}
	t := &Trace{ms: ms}
	if err := t.validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// ParseRateCSV reads a per-second capacity series in Mbit/s: either one value
// per line or "second,mbps" rows (the last column is the rate). A first line
// that is not numeric is taken as a header. Blank lines and '#' comments are
// skipped.
func ParseRateCSV(r io.Reader) ([]float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	var rates []float64
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == '\t' || r == ' ' })
		if len(fields) == 0 {
			return nil, fmt.Errorf("%w: csv line %d: %q has no rate", ErrBadTrace, line, s)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(fields[len(fields)-1]), 64)
		if err != nil {
			if len(rates) == 0 && line == 1 {
				continue // header
			}
			return nil, fmt.Errorf("%w: csv line %d: %q is not a rate in Mbit/s", ErrBadTrace, line, s)
		}
		if math.IsNaN(v) || v < 0 || v > 1e6 {
			return nil, fmt.Errorf("%w: csv line %d: rate %v Mbit/s out of range 0..1e6", ErrBadTrace, line, v)
		}
		if len(rates) >= 1<<22 {
			return nil, fmt.Errorf("%w: csv has more than %d rows", ErrBadTrace, 1<<22)
		}
		rates = append(rates, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: csv line %d: %w", ErrBadTrace, line+1, err)
	}
	if len(rates) == 0 {
		return nil, fmt.Errorf("%w: csv has no rates", ErrBadTrace)
	}
	return rates, nil
}

// ConvertCSV converts a per-second Mbit/s CSV (see [ParseRateCSV]) into a
// Mahimahi trace written to w.
func ConvertCSV(w io.Writer, r io.Reader) error {
	rates, err := ParseRateCSV(r)
	if err != nil {
		return err
	}
	t, err := TraceFromRates(rates, time.Second)
	if err != nil {
		return err
	}
	_, err = t.WriteTo(w)
	return err
}
