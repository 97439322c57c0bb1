package mahimahi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

const ms = time.Millisecond

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     Trace
	}{
		{"plain", "1\n1\n3\n4\n", Trace{1, 1, 3, 4}},
		{"no final newline", "2\n5", Trace{2, 5}},
		{"comments blanks spaces", "# up\n\n  1 \n\t1\r\n# x\n3\n\n4\n", Trace{1, 1, 3, 4}},
		{"leading zero timestamp", "0\n0\n7\n", Trace{0, 0, 7}},
		{"leading zeros", "007\n", Trace{7}},
		{"largest", "4294967295\n", Trace{math.MaxUint32}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.in), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat(" ", 100) + "5\n"
	tests := []struct {
		name, in string
		lim      Limits
		kind     Kind
		line     int
		msg      string
	}{
		{"empty", "", Limits{}, Empty, 0, "no delivery opportunities"},
		{"only comments", "# a\n\n#b\n", Limits{}, Empty, 0, "no delivery opportunities"},
		{"zero period", "0\n0\n", Limits{}, NoPeriod, 0, "last timestamp is 0 ms, so the trace has no period"},
		{"word", "1\nx\n", Limits{}, NotTimestamp, 2, `line 2: "x" is not a millisecond timestamp`},
		{"negative", "# c\n-1\n", Limits{}, NotTimestamp, 2, `line 2: "-1" is not a millisecond timestamp`},
		{"plus sign", "+5\n", Limits{}, NotTimestamp, 1, `line 1: "+5" is not a millisecond timestamp`},
		{"fraction", "1.5\n", Limits{}, NotTimestamp, 1, `line 1: "1.5" is not a millisecond timestamp`},
		{"two numbers", "1 2\n", Limits{}, NotTimestamp, 1, `line 1: "1 2" is not a millisecond timestamp`},
		{"too large", "4294967296\n", Limits{}, NotTimestamp, 1, `line 1: "4294967296" is not a millisecond timestamp`},
		{"huge", "99999999999999999999999\n", Limits{}, NotTimestamp, 1, `line 1: "99999999999999999999999" is not a millisecond timestamp`},
		{"decreasing", "1\n\n5\n3\n", Limits{}, Decreasing, 4, "line 4: timestamp 3 ms is before the previous one (5 ms)"},
		{"too many", "1\n2\n3\n4\n", Limits{MaxOpportunities: 3}, TooMany, 0, "more than 3 lines"},
		{"line too long", "1\n" + long, Limits{MaxLineBytes: 64}, ReadFailed, 2, "line 2: bufio.Scanner: token too long"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Parse(strings.NewReader(tc.in), tc.lim)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, %v; want an *Error", tr, err)
			}
			if e.Kind != tc.kind || e.Line != tc.line || err.Error() != tc.msg {
				t.Fatalf("got kind %d line %d %q, want kind %d line %d %q", e.Kind, e.Line, err, tc.kind, tc.line, tc.msg)
			}
		})
	}
	// The same long line passes under the default limit.
	if _, err := Parse(strings.NewReader("1\n"+long), Limits{}); err != nil {
		t.Errorf("default line limit: %v", err)
	}
	// Exactly the limit is accepted; one more is not.
	lim := Limits{MaxOpportunities: 4}
	if _, err := Parse(strings.NewReader("1\n2\n3\n4\n"), lim); err != nil {
		t.Errorf("4 lines under a limit of 4: %v", err)
	}
	// A line too long unwraps to bufio.ErrTooLong; a failing reader to its error.
	if _, err := Parse(strings.NewReader(long), Limits{MaxLineBytes: 16}); !errors.Is(err, bufio.ErrTooLong) {
		t.Errorf("long line: %v", err)
	}
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("1\n2\n"), iotest.ErrReader(boom))
	if _, err := Parse(r, Limits{}); !errors.Is(err, boom) || err.Error() != "line 3: boom" {
		t.Errorf("reader error: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		ms   []uint32
		kind Kind // 0: valid
		line int
	}{
		{[]uint32{5}, 0, 0},
		{[]uint32{0, 0, 1}, 0, 0},
		{nil, Empty, 0},
		{[]uint32{0}, NoPeriod, 0},
		{[]uint32{1, 2, 1, 3}, Decreasing, 3},
	}
	for _, tc := range tests {
		err := Validate(tc.ms)
		var e *Error
		switch {
		case tc.kind == 0 && err != nil:
			t.Errorf("%v: %v", tc.ms, err)
		case tc.kind != 0 && (!errors.As(err, &e) || e.Kind != tc.kind || e.Line != tc.line):
			t.Errorf("%v: got %v, want kind %d line %d", tc.ms, err, tc.kind, tc.line)
		}
	}
}

func TestArithmetic(t *testing.T) {
	tr := Trace{1, 1, 3, 4} // period 4 ms, 4 opportunities
	if tr.Period() != 4*ms || tr.MeanRate() != 12e6 {
		t.Fatalf("period %v rate %v", tr.Period(), tr.MeanRate())
	}
	counts := []struct {
		d    time.Duration
		want int64
	}{
		{-ms, 0},
		{0, 0},
		{ms, 0},         // the opportunities at 1 ms are not before 1 ms
		{ms + 1, 2},     // ... but are before 1 ms + 1 ns
		{3 * ms, 2},     //
		{4*ms - 1, 3},   // the one at the period is not before it...
		{4 * ms, 4},     // ... but counts as just before the loop's end
		{5 * ms, 4},     //
		{5*ms + 1, 6},   // 4 + two at 5 ms
		{400 * ms, 400}, // 100 loops
		{401*ms + 1, 402},
		// 2305843009213 loops of 4 ms, then 2.775807 ms: two more.
		{math.MaxInt64, 2305843009213*4 + 2},
	}
	for _, c := range counts {
		if got := tr.CountBefore(c.d); got != c.want {
			t.Errorf("CountBefore(%v) = %d, want %d", c.d, got, c.want)
		}
	}
	at := []struct {
		c    int64
		want time.Duration
	}{
		{-1, ms}, {0, ms}, {1, ms}, {2, 3 * ms}, {3, 4 * ms}, {4, 5 * ms}, {7, 8 * ms}, {400, 401 * ms},
		{math.MaxInt64, math.MaxInt64},
	}
	for _, a := range at {
		if got := tr.At(a.c); got != a.want {
			t.Errorf("At(%d) = %v, want %v", a.c, got, a.want)
		}
	}
	bytesTests := []struct {
		from, to time.Duration
		want     int64
	}{
		{0, 8 * ms, 8 * 1500},
		{0, 0, 0},
		{5 * ms, 4 * ms, 0},
		{2 * ms, 3*ms + 1, 1500},
		{4 * ms, 5 * ms, 0},
		{4*ms - 1, 4 * ms, 1500},
		{0, math.MaxInt64, (2305843009213*4 + 2) * 1500},
	}
	for _, b := range bytesTests {
		if got := tr.Bytes(b.from, b.to); got != b.want {
			t.Errorf("Bytes(%v, %v) = %d, want %d", b.from, b.to, got, b.want)
		}
	}
	// Saturation: a dense trace counted over all of time.
	dense := make(Trace, 1<<20)
	dense[len(dense)-1] = 1
	if got := dense.CountBefore(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("dense CountBefore(max) = %d", got)
	}
	if got := dense.Bytes(0, math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("dense Bytes = %d", got)
	}
}

// TestArithmeticBruteForce checks CountBefore, At and Bytes against a
// direct enumeration of the looped schedule, in which an opportunity at the
// period counts as just before the end of its loop.
func TestArithmeticBruteForce(t *testing.T) {
	for _, tr := range []Trace{{1}, {0, 2}, {1, 1, 3, 4}, {0, 0, 0, 5, 5}, {3, 3, 3}, {2, 7, 7, 7, 9, 10}} {
		var times []time.Duration // the first 5 loops
		var atEnd []bool
		for k := range 5 {
			for _, v := range tr {
				times = append(times, time.Duration(k)*tr.Period()+time.Duration(v)*ms)
				atEnd = append(atEnd, time.Duration(v)*ms == tr.Period())
			}
		}
		for c, want := range times {
			if got := tr.At(int64(c)); got != want {
				t.Fatalf("%v: At(%d) = %v, want %v", tr, c, got, want)
			}
		}
		end := 4 * tr.Period()
		for d := time.Duration(0); d <= end; d += 250 * time.Microsecond {
			var want int64
			for i, x := range times {
				if x < d || atEnd[i] && x == d {
					want++
				}
			}
			if got := tr.CountBefore(d); got != want {
				t.Fatalf("%v: CountBefore(%v) = %d, want %d", tr, d, got, want)
			}
			if got := tr.Bytes(d/2, d); got != (want-tr.CountBefore(d/2))*OpportunityBytes {
				t.Fatalf("%v: Bytes(%v, %v) = %d", tr, d/2, d, got)
			}
		}
	}
}

func TestWriteTo(t *testing.T) {
	tr := Trace{0, 1, 1, 4294967295}
	var buf bytes.Buffer
	n, err := tr.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) || buf.String() != "0\n1\n1\n4294967295\n" {
		t.Fatalf("WriteTo: %d %v %q", n, err, buf.String())
	}
	back, err := Parse(&buf, Limits{})
	if err != nil || !equal(back, tr) {
		t.Fatalf("round trip: %v %v", back, err)
	}
}

func TestParseAllocs(t *testing.T) {
	in := strings.Repeat("17\n", 1000)
	// The slice grows by doubling; no allocation per line.
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := Parse(strings.NewReader(in), Limits{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 20 {
		t.Errorf("%v allocations to parse 1000 lines", allocs)
	}
}

func equal(a, b Trace) bool { return slices.Equal(a, b) }
