package linkem

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OpportunityBytes is the number of bytes one Mahimahi delivery opportunity
// carries.
const OpportunityBytes = 1500

// MaxTraceLines bounds the number of delivery opportunities a parsed trace
// may hold (≈ 20 minutes at 1 Gbit/s), so a hostile file cannot exhaust memory.
const MaxTraceLines = 100_000_000

// ErrBadTrace is wrapped by every trace parsing or validation error.
var ErrBadTrace = errors.New("linkem: bad trace")

// Trace is a link capacity schedule in Mahimahi's format: a non-decreasing
// list of millisecond timestamps, one per 1500-byte delivery opportunity. Two
// opportunities in the same millisecond appear as two equal timestamps. The
// trace loops with a period equal to its last timestamp. A Trace is immutable
// and safe for concurrent use.
type Trace struct {
	ms []uint32
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

func (t *Trace) validate() error {
	if len(t.ms) == 0 {
		return fmt.Errorf("%w: no delivery opportunities", ErrBadTrace)
	}
	for i := 1; i < len(t.ms); i++ {
		if t.ms[i] < t.ms[i-1] {
			return fmt.Errorf("%w: line %d: timestamp %d ms is before the previous one (%d ms)", ErrBadTrace, i+1, t.ms[i], t.ms[i-1])
		}
	}
	if t.ms[len(t.ms)-1] == 0 {
		return fmt.Errorf("%w: last timestamp is 0 ms, so the trace has no period", ErrBadTrace)
	}
	return nil
}

// Period returns the loop period (the last timestamp).
func (t *Trace) Period() time.Duration { return time.Duration(t.ms[len(t.ms)-1]) * time.Millisecond }

// Len returns the number of delivery opportunities per period.
func (t *Trace) Len() int { return len(t.ms) }

// MeanRate returns the trace's mean capacity in bit/s.
func (t *Trace) MeanRate() float64 {
	return float64(len(t.ms)) * OpportunityBytes * 8 / t.Period().Seconds()
}

// countBefore returns the number of opportunities at times < d (d ≥ 0),
// counting loops.
func (t *Trace) countBefore(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	period := t.Period()
	loops := int64(d / period)
	r := d - time.Duration(loops)*period
	// opportunities in this loop with ms*1ms < r
	i := sort.Search(len(t.ms), func(i int) bool { return time.Duration(t.ms[i])*time.Millisecond >= r })
	return loops*int64(len(t.ms)) + int64(i)
}

// CapacityBytes returns the bytes the trace can deliver in [from, to),
// measured on the link's clock (time since the link started).
func (t *Trace) CapacityBytes(from, to time.Duration) int64 {
	if to <= from {
		return 0
	}
	return (t.countBefore(to) - t.countBefore(from)) * OpportunityBytes
}

// ParseTrace reads a Mahimahi trace: one non-negative integer millisecond
// timestamp per line. Blank lines and lines starting with '#' are skipped.
func ParseTrace(r io.Reader) (*Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	var ms []uint32
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %q is not a millisecond timestamp", ErrBadTrace, line, s)
		}
		if n := len(ms); n > 0 && uint32(v) < ms[n-1] {
			return nil, fmt.Errorf("%w: line %d: timestamp %d ms is before the previous one (%d ms)", ErrBadTrace, line, v, ms[n-1])
		}
		if len(ms) >= MaxTraceLines {
			return nil, fmt.Errorf("%w: more than %d lines", ErrBadTrace, MaxTraceLines)
		}
		ms = append(ms, uint32(v))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %w", ErrBadTrace, line+1, err)
	}
	t := &Trace{ms: ms}
	if err := t.validate(); err != nil {
		return nil, err
	}
	return t, nil
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
func (t *Trace) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	var buf [16]byte
	for _, v := range t.ms {
		b := strconv.AppendUint(buf[:0], uint64(v), 10)
		b = append(b, '\n')
		m, err := bw.Write(b)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

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
