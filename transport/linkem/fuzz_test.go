package linkem

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func FuzzParseTrace(f *testing.F) {
	f.Add([]byte("1\n1\n2\n4\n"))
	f.Add([]byte("# c\n\n0\n5\n"))
	f.Add([]byte("3\n2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ParseTrace(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadTrace) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if _, err := tr.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		tr2, err := ParseTrace(&buf)
		if err != nil || tr2.Len() != tr.Len() || tr2.Period() != tr.Period() {
			t.Fatalf("round trip: %v", err)
		}
		if tr.CapacityBytes(0, 3*tr.Period()) != int64(3*tr.Len()*OpportunityBytes) {
			t.Fatal("capacity over three loops")
		}
	})
}

func FuzzParseRateCSV(f *testing.F) {
	f.Add([]byte("second,mbps\n0,12\n1,24\n"))
	f.Add([]byte("5\n6.5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rates, err := ParseRateCSV(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadTrace) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if len(rates) > 64 { // keep each fuzz run cheap
			rates = rates[:64]
		}
		for i := range rates {
			rates[i] = min(rates[i], 100)
		}
		if _, err := TraceFromRates(rates, 1e9); err != nil && !errors.Is(err, ErrBadTrace) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

func FuzzParseBurstTrace(f *testing.F) {
	f.Add([]byte("0 30 0 2 5\n100 40 0 1\n"), []byte("1\n2\n3\n"))
	f.Add([]byte("0 30 0\n"), []byte("0\n"))
	f.Fuzz(func(t *testing.T, light, heavy []byte) {
		b, err := ParseBurstTrace(bytes.NewReader(light), bytes.NewReader(heavy))
		if err != nil {
			if !errors.Is(err, ErrBadTrace) {
				t.Fatalf("error %v does not wrap ErrBadTrace", err)
			}
			return
		}
		if b.MeanRate() <= 0 || b.MeanDelay() < 0 {
			t.Fatalf("parsed trace with rate %v, delay %v", b.MeanRate(), b.MeanDelay())
		}
		if got := b.Transfer(time.Second, 100000); got < time.Second {
			t.Fatalf("Transfer ended before it began: %v", got)
		}
	})
}
