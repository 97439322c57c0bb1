package mahimahi

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

// BenchmarkParse parses a 100 000-line trace and reports the time relative
// to referenceParse (strings and strconv) measured in the same run.
// (Parse's own allocations are checked by TestParseAllocs.)
func BenchmarkParse(b *testing.B) {
	var in []byte
	for i := range 100_000 {
		in = strconv.AppendInt(in, int64(i/12+1), 10)
		in = append(in, '\n')
	}
	var ours, ref time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := Parse(bytes.NewReader(in), Limits{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := referenceParse(in, Limits{}); err != nil {
			b.Fatal(err)
		}
		ours += t1.Sub(t0)
		ref += time.Since(t1)
	}
	// ns/op covers both parsers; these split it.
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "parse-ns/op")
	b.ReportMetric(float64(ours)/float64(ref), "x-reference")
}

// BenchmarkBytes is the per-call cost of Bytes on a 5 000-opportunity trace.
func BenchmarkBytes(b *testing.B) {
	tr := make(Trace, 5000)
	for i := range tr {
		tr[i] = uint32(i/5 + 1)
	}
	var sum int64
	d := time.Duration(0)
	for b.Loop() {
		sum += tr.Bytes(d, d+10*time.Millisecond)
		d += 777 * time.Microsecond
	}
	if sum == 0 {
		b.Fatal("no capacity")
	}
}
