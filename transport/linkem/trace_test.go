package linkem

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTraceErrors pins linkem's trace error messages across the shared
// parser; every one wraps ErrBadTrace.
func TestTraceErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "linkem: bad trace: no delivery opportunities"},
		{"x\n", `linkem: bad trace: line 1: "x" is not a millisecond timestamp`},
		{"+5\n", `linkem: bad trace: line 1: "+5" is not a millisecond timestamp`},
		{"4294967296\n", `linkem: bad trace: line 1: "4294967296" is not a millisecond timestamp`},
		{"5\n3\n", "linkem: bad trace: line 2: timestamp 3 ms is before the previous one (5 ms)"},
		{"0\n0\n", "linkem: bad trace: last timestamp is 0 ms, so the trace has no period"},
		{"1\n#" + strings.Repeat("c", 5000) + "\n2\n", "linkem: bad trace: line 2: bufio.Scanner: token too long"},
	}
	for _, tc := range tests {
		_, err := ParseTrace(strings.NewReader(tc.in))
		if !errors.Is(err, ErrBadTrace) || err.Error() != tc.want {
			t.Errorf("%.20q: got %v, want %q", tc.in, err, tc.want)
		}
	}
	if _, err := ParseTrace(strings.NewReader(strings.Repeat(" ", 5000))); !errors.Is(err, bufio.ErrTooLong) {
		t.Errorf("long line: %v does not wrap bufio.ErrTooLong", err)
	}
	for _, tc := range []struct {
		ms   []uint32
		want string
	}{
		{nil, "linkem: bad trace: no delivery opportunities"},
		{[]uint32{1, 3, 2}, "linkem: bad trace: line 3: timestamp 2 ms is before the previous one (3 ms)"},
		{[]uint32{0}, "linkem: bad trace: last timestamp is 0 ms, so the trace has no period"},
	} {
		if _, err := NewTrace(tc.ms); !errors.Is(err, ErrBadTrace) || err.Error() != tc.want {
			t.Errorf("NewTrace(%v): got %v, want %q", tc.ms, err, tc.want)
		}
	}
	// A zero Trace in LinkSettings is rejected, not used.
	if err := (LinkSettings{Trace: &Trace{}}).Validate(); !errors.Is(err, ErrBadTrace) {
		t.Errorf("zero Trace: %v", err)
	}
	// NewTrace copies its input.
	in := []uint32{1, 2}
	tr, err := NewTrace(in)
	if err != nil {
		t.Fatal(err)
	}
	in[1] = 0
	if tr.Period() != 2e6 {
		t.Errorf("NewTrace kept the caller's slice: period %v", tr.Period())
	}
}

func TestLoadTrace(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "up.trace"), filepath.Join(dir, "bad.trace")
	os.WriteFile(good, []byte("1\n1\n2\n4\n"), 0o644)
	os.WriteFile(bad, []byte("4\n2\n"), 0o644)
	tr, err := LoadTrace(good)
	if err != nil || tr.Len() != 4 || tr.MeanRate() != 12e6 {
		t.Fatalf("LoadTrace: %v %v", tr, err)
	}
	if _, err := LoadTrace(bad); !errors.Is(err, ErrBadTrace) || err.Error() != bad+": linkem: bad trace: line 2: timestamp 2 ms is before the previous one (4 ms)" {
		t.Errorf("bad file: %v", err)
	}
	if _, err := LoadTrace(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrBadTrace) {
		t.Errorf("missing file: %v", err)
	}
}
