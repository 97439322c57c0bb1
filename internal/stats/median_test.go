package stats

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []int64
		want int64
	}{
		{nil, 0},
		{[]int64{7}, 7},
		{[]int64{3, 1, 2}, 2},
		{[]int64{4, 1, 3, 2}, 2}, // (2+3)/2 rounded toward the lower
		{[]int64{10, 20}, 15},
		{[]int64{-5, -1}, -3},
		{[]int64{5, 5, 5, 1, 9}, 5},
	} {
		in := slices.Clone(tc.in)
		if got := Median(in); got != tc.want {
			t.Errorf("Median(%v) = %d, want %d", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("Median modified its input: %v, was %v", in, tc.in)
		}
	}
	if got := Median([]float64{1, 2, 4, 8}); got != 3 {
		t.Errorf("float median %v, want 3", got)
	}
	ds := []time.Duration{40 * time.Microsecond, 5 * time.Millisecond, 40 * time.Microsecond}
	if got := Median(ds); got != 40*time.Microsecond {
		t.Errorf("duration median %v, want 40µs", got)
	}
	// Extremes of one sign do not overflow.
	if got := Median([]uint8{250, 254}); got != 252 {
		t.Errorf("uint8 median %d, want 252", got)
	}
}

// TestMedianMatchesSort checks Median against the definition on random
// inputs of odd and even lengths.
func TestMedianMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		xs := make([]float64, 1+rng.IntN(20))
		for i := range xs {
			xs[i] = float64(rng.IntN(100))
		}
		s := slices.Clone(xs)
		slices.Sort(s)
		want := s[len(s)/2]
		if len(s)%2 == 0 {
			want = (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		if got := Median(xs); got != want {
			t.Fatalf("Median(%v) = %v, want %v", xs, got, want)
		}
	}
}

func TestMedianInPlaceAllocatesNothing(t *testing.T) {
	buf := make([]time.Duration, 15)
	allocs := testing.AllocsPerRun(100, func() {
		for i := range buf {
			buf[i] = time.Duration(len(buf) - i)
		}
		MedianInPlace(buf)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per call, want 0", allocs)
	}
}

func BenchmarkMedianInPlace(b *testing.B) {
	buf := make([]time.Duration, 15)
	for b.Loop() {
		for i := range buf {
			buf[i] = time.Duration(len(buf) - i)
		}
		MedianInPlace(buf)
	}
}
