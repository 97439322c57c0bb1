package sim

import (
	"strings"
	"testing"
)

// TestTraceErrors pins the simulator's trace error messages (they reach
// scenario validation messages) across the shared parser.
func TestTraceErrors(t *testing.T) {
	long := "1\n" + strings.Repeat(" ", 70_000) + "2\n"
	tests := []struct{ in, want string }{
		{"", "trace: no timestamps"},
		{"# only a comment\n\n", "trace: no timestamps"},
		{"x\n", `trace line 1: "x" is not a millisecond timestamp ≥ 0`},
		{"1\n-1\n", `trace line 2: "-1" is not a millisecond timestamp ≥ 0`},
		{"4294967296\n", `trace line 1: "4294967296" is not a millisecond timestamp ≥ 0`},
		{"5\n\n3\n", "trace line 3: timestamp 3 goes back (previous 5)"},
		{"0\n", "trace: last timestamp must be > 0 (it is the period)"},
		{"0\n0\n", "trace: last timestamp must be > 0 (it is the period)"},
		{long, "trace: bufio.Scanner: token too long"},
	}
	for _, tc := range tests {
		_, err := ParseTrace(strings.NewReader(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%.20q: got %v, want %q", tc.in, err, tc.want)
		}
	}
	// Lines up to 64 KiB (bufio's default) are accepted, as before.
	tr, err := ParseTrace(strings.NewReader("1\n#" + strings.Repeat("c", 5000) + "\n" + strings.Repeat(" ", 5000) + "2\n"))
	if err != nil || tr.period != 2 || len(tr.ops) != 2 {
		t.Errorf("long comment: %v %v", tr, err)
	}
}

// TestTraceBoundaries checks finish and rate at the loop boundary and far
// out, where the old millisecond rounding could overflow.
func TestTraceBoundaries(t *testing.T) {
	tr, err := ParseTrace(strings.NewReader("1\n1\n3\n4\n"))
	if err != nil {
		t.Fatal(err)
	}
	const ms = 1_000_000
	tests := []struct{ start, bytes, want int64 }{
		{4*ms - 1, 1, 4 * ms},                    // the opportunity at the period
		{4 * ms, 1, 5 * ms},                      // counted as just before the loop's end
		{3 * ms, 1500 * 3, 5 * ms},               // 3, 4, 5
		{1 << 62, 1, (1<<62/(4*ms))*4*ms + 4*ms}, // 2⁶² ns is 3.39 ms into a loop
	}
	for _, tc := range tests {
		if got := tr.finish(tc.start, 0, tc.bytes); got != tc.want {
			t.Errorf("finish(%d, %d) = %d, want %d", tc.start, tc.bytes, got, tc.want)
		}
	}
	// Phase shifts the trace: with a phase of 1 ms, time 0 is trace time
	// 1 ms, and the third opportunity (3 ms) comes at 2 ms.
	if got := tr.finish(0, ms, 1500*3); got != 2*ms {
		t.Errorf("phased finish = %d, want %d", got, 2*ms)
	}
	if r := tr.rate(1<<62, 1<<62+400*ms, 0); r != 1.5e6 {
		t.Errorf("rate far out = %v, want 1.5e6", r)
	}
}
