package mahimahi

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// referenceParse is the straightforward parser the package replaced
// (strings and strconv, one allocation a line): Parse must agree with it.
func referenceParse(data []byte, lim Limits) (Trace, error) {
	lim = lim.withDefaults()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64), lim.MaxLineBytes)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	var t Trace
	for i, l := range lines {
		s := strings.TrimSpace(l)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		v, err := strconv.ParseUint(s, 10, 32)
		switch {
		case err != nil:
			return nil, &Error{Kind: NotTimestamp, Line: i + 1, Text: s}
		case len(t) > 0 && uint32(v) < t[len(t)-1]:
			return nil, &Error{Kind: Decreasing, Line: i + 1, Value: uint32(v), Prev: t[len(t)-1]}
		case len(t) == lim.MaxOpportunities:
			return nil, &Error{Kind: TooMany, Limit: lim.MaxOpportunities}
		}
		t = append(t, uint32(v))
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{Kind: ReadFailed, Line: len(lines) + 1, Err: err}
	}
	return t, Validate(t)
}

// FuzzParse: Parse agrees with the reference parser on acceptance, result
// and error; errors are one-line *Errors; an accepted trace is valid, round-
// trips through WriteTo, and its arithmetic matches an enumeration of three
// loops.
func FuzzParse(f *testing.F) {
	f.Add([]byte("1\n1\n3\n4\n"))
	f.Add([]byte("# c\n\n0\n5\n"))
	f.Add([]byte("3\n2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxOpportunities: 256, MaxLineBytes: 64}
		tr, err := Parse(bytes.NewReader(data), lim)
		ref, refErr := referenceParse(data, lim)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("Parse: %v, reference: %v", err, refErr)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind < NotTimestamp || e.Kind > NoPeriod {
				t.Fatalf("not a typed error: %#v", err)
			}
			if err.Error() != refErr.Error() || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q, reference %q", err, refErr)
			}
			if e.Line < 0 || e.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("line %d of a %d-byte input", e.Line, len(data))
			}
			return
		}
		if !equal(tr, ref) || Validate(tr) != nil || len(tr) > lim.MaxOpportunities {
			t.Fatalf("Parse %v, reference %v", tr, ref)
		}
		var buf bytes.Buffer
		if _, err := tr.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		if back, err := Parse(&buf, lim); err != nil || !equal(back, tr) {
			t.Fatalf("round trip: %v %v", back, err)
		}
		checkArithmetic(t, tr)
	})
}

// checkArithmetic compares CountBefore, Bytes and At with an enumeration of
// the first three loops, at a few dozen instants.
func checkArithmetic(t *testing.T, tr Trace) {
	p := tr.Period()
	n := int64(len(tr))
	var times []time.Duration
	var atEnd []bool
	for k := range 3 {
		for _, v := range tr {
			times = append(times, time.Duration(k)*p+time.Duration(v)*time.Millisecond)
			atEnd = append(atEnd, time.Duration(v)*time.Millisecond == p)
		}
	}
	count := func(d time.Duration) int64 {
		var c int64
		for i, x := range times {
			if x < d || atEnd[i] && x == d {
				c++
			}
		}
		return c
	}
	step := max(p/16, 1)
	for d := -step; d <= 2*p; d += step {
		for _, x := range []time.Duration{d, d + 1, d + time.Millisecond - 1} {
			if got, want := tr.CountBefore(x), count(x); got != want {
				t.Fatalf("%v: CountBefore(%v) = %d, want %d", tr, x, got, want)
			}
			if got, want := tr.Bytes(x, x+p), max(count(x+p)-count(x), 0)*OpportunityBytes; x+p <= 3*p && got != want {
				t.Fatalf("%v: Bytes(%v, +period) = %d, want %d", tr, x, got, want)
			}
		}
	}
	if got := tr.Bytes(0, 3*p); got != 3*n*OpportunityBytes {
		t.Fatalf("%v: Bytes over three loops = %d", tr, got)
	}
	for c := int64(0); c < 3*n; c += max(1, n/8) {
		if at := tr.At(c); at != times[c] || tr.CountBefore(at-1) > c || tr.CountBefore(at+1) <= c {
			t.Fatalf("%v: At(%d) = %v, want %v", tr, c, at, times[c])
		}
	}
}
