package mahimahi

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"time"
)

// OpportunityBytes is the number of bytes one delivery opportunity carries.
const OpportunityBytes = 1500

// Defaults for the zero fields of [Limits].
const (
	// DefaultMaxOpportunities bounds a trace to 100 million opportunities
	// (400 MB of timestamps; about 20 minutes of 1 Gbit/s).
	DefaultMaxOpportunities = 100_000_000
	// DefaultMaxLineBytes bounds a line, comments included; a timestamp
	// needs at most 10 digits.
	DefaultMaxLineBytes = 4096
)

// Limits bounds what [Parse] accepts, so that a hostile input cannot exhaust
// memory. The zero value means the defaults.
type Limits struct {
	// MaxOpportunities is the most timestamps a trace may hold; zero means
	// DefaultMaxOpportunities.
	MaxOpportunities int
	// MaxLineBytes is the longest line accepted; zero means
	// DefaultMaxLineBytes.
	MaxLineBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxOpportunities <= 0 {
		l.MaxOpportunities = DefaultMaxOpportunities
	}
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = DefaultMaxLineBytes
	}
	return l
}

// Kind says what is wrong with a trace.
type Kind uint8

// The kinds of [Error].
const (
	// NotTimestamp: a line is not a decimal integer in 0..2^32-1 (Text).
	NotTimestamp Kind = iota + 1
	// Decreasing: a timestamp (Value) is before the previous one (Prev).
	Decreasing
	// TooMany: the trace has more than Limit opportunities.
	TooMany
	// ReadFailed: reading failed or a line was longer than the limit (Err,
	// which is [bufio.ErrTooLong] for the latter).
	ReadFailed
	// Empty: the trace has no opportunity.
	Empty
	// NoPeriod: the last timestamp is 0, so the trace has no period.
	NoPeriod
)

// Error is the error [Parse] and [Validate] return. Its message names the
// line but carries no package prefix, so that callers can put their own.
type Error struct {
	Kind Kind
	// Line is the 1-based line of the input (for Validate, the 1-based
	// index of the timestamp); 0 for Empty, NoPeriod and TooMany.
	Line int
	// Text is the offending line, trimmed (NotTimestamp).
	Text string
	// Value and Prev are the timestamps out of order (Decreasing).
	Value, Prev uint32
	// Limit is the bound that was exceeded (TooMany).
	Limit int
	// Err is the reader's error (ReadFailed).
	Err error
}

func (e *Error) Error() string {
	switch e.Kind {
	case NotTimestamp:
		return fmt.Sprintf("line %d: %q is not a millisecond timestamp", e.Line, e.Text)
	case Decreasing:
		return fmt.Sprintf("line %d: timestamp %d ms is before the previous one (%d ms)", e.Line, e.Value, e.Prev)
	case TooMany:
		return fmt.Sprintf("more than %d lines", e.Limit)
	case ReadFailed:
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	case Empty:
		return "no delivery opportunities"
	case NoPeriod:
		return "last timestamp is 0 ms, so the trace has no period"
	}
	return fmt.Sprintf("line %d: bad trace (kind %d)", e.Line, e.Kind)
}

// Unwrap returns the reader's error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Trace is a valid schedule of delivery opportunities: non-empty,
// non-decreasing millisecond timestamps, the last one positive (the loop
// period). Its methods assume validity (as returned by [Parse] or accepted by
// [Validate]) and never modify it, so they are safe for concurrent use.
type Trace []uint32

// Parse reads a trace in Mahimahi's format and validates it. Blank lines
// and lines starting with '#' are skipped; surrounding white space is
// ignored. Every error is an [*Error].
func Parse(r io.Reader, lim Limits) (Trace, error) {
	lim = lim.withDefaults()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(4096, lim.MaxLineBytes)), lim.MaxLineBytes)
	var t Trace
	line := 0
	for sc.Scan() {
		line++
		s := bytes.TrimSpace(sc.Bytes())
		if len(s) == 0 || s[0] == '#' {
			continue
		}
		v, ok := parseMs(s)
		if !ok {
			return nil, &Error{Kind: NotTimestamp, Line: line, Text: string(s)}
		}
		if n := len(t); n > 0 && v < t[n-1] {
			return nil, &Error{Kind: Decreasing, Line: line, Value: v, Prev: t[n-1]}
		}
		if len(t) >= lim.MaxOpportunities {
			return nil, &Error{Kind: TooMany, Limit: lim.MaxOpportunities}
		}
		t = append(t, v)
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{Kind: ReadFailed, Line: line + 1, Err: err}
	}
	if err := Validate(t); err != nil {
		return nil, err
	}
	return t, nil
}

// parseMs parses a decimal integer in 0..2^32-1 (digits only, no sign),
// as strconv.ParseUint(s, 10, 32) does, without allocating.
func parseMs(s []byte) (uint32, bool) {
	if len(s) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
		if v > math.MaxUint32 {
			return 0, false
		}
	}
	return uint32(v), true
}

// Validate reports whether ms is a valid trace: at least one timestamp,
// non-decreasing, the last one positive. The error is an [*Error] whose
// Line is the 1-based index of the offending timestamp.
func Validate(ms []uint32) error {
	if len(ms) == 0 {
		return &Error{Kind: Empty}
	}
	for i := 1; i < len(ms); i++ {
		if ms[i] < ms[i-1] {
			return &Error{Kind: Decreasing, Line: i + 1, Value: ms[i], Prev: ms[i-1]}
		}
	}
	if ms[len(ms)-1] == 0 {
		return &Error{Kind: NoPeriod}
	}
	return nil
}

// Period returns the loop period: the last timestamp.
func (t Trace) Period() time.Duration { return time.Duration(t[len(t)-1]) * time.Millisecond }

// MeanRate returns the mean capacity in bit/s.
func (t Trace) MeanRate() float64 {
	return float64(len(t)) * OpportunityBytes * 8 / t.Period().Seconds()
}

// CountBefore returns the number of opportunities at times strictly before
// d, counting loops from time 0: opportunity i of loop k is at
// k·Period + t[i] ms, except that one at the period itself (t[i] = Period)
// counts as just before the end of its loop, so CountBefore(k·Period) is
// exactly k·len(t). It is 0 for d ≤ 0 and saturates at math.MaxInt64.
func (t Trace) CountBefore(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	period := t.Period()
	loops := int64(d / period)
	r := d - time.Duration(loops)*period
	// The first opportunity of this loop at or after r: t[i] ≥ ceil(r in ms).
	rms := int64(r / time.Millisecond)
	if r%time.Millisecond != 0 {
		rms++
	}
	i := sort.Search(len(t), func(i int) bool { return int64(t[i]) >= rms })
	n := int64(len(t))
	if loops > (math.MaxInt64-int64(i))/n {
		return math.MaxInt64
	}
	return loops*n + int64(i)
}

// Bytes returns the bytes the trace can deliver in [from, to), counting
// loops; 0 if to ≤ from. It saturates at math.MaxInt64.
func (t Trace) Bytes(from, to time.Duration) int64 {
	if to <= from {
		return 0
	}
	c := t.CountBefore(to) - t.CountBefore(from)
	if c > math.MaxInt64/OpportunityBytes {
		return math.MaxInt64
	}
	return c * OpportunityBytes
}

// At returns the time of opportunity c (0-based, counting loops; c < 0 is
// taken as 0), the inverse of [Trace.CountBefore]:
// CountBefore(At(c)-1) ≤ c < CountBefore(At(c)+1). It saturates at
// math.MaxInt64.
func (t Trace) At(c int64) time.Duration {
	c = max(c, 0)
	n := int64(len(t))
	loops := c / n
	period := t.Period()
	off := time.Duration(t[c%n]) * time.Millisecond
	if loops > int64((math.MaxInt64-off)/period) {
		return math.MaxInt64
	}
	return time.Duration(loops)*period + off
}

// WriteTo writes the trace in Mahimahi's format, one timestamp a line.
func (t Trace) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	var buf [16]byte
	for _, v := range t {
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
