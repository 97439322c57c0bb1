package stats

import "slices"

// Number is a type Median can average two values of: any integer or float
// type, time.Duration included.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr |
		~float32 | ~float64
}

// Median returns the median of xs without modifying it: the middle value
// of the sorted values, or for an even count the mean of the two middle
// ones (rounded toward the lower for integers). It is 0 for an empty xs;
// floats must not be NaN. It copies xs: see MedianInPlace.
func Median[T Number](xs []T) T {
	return MedianInPlace(slices.Clone(xs))
}

// MedianInPlace is Median that sorts xs in place instead of copying it, for
// callers that own the slice (a scratch buffer): it allocates nothing.
func MedianInPlace[T Number](xs []T) T {
	n := len(xs)
	if n == 0 {
		return 0
	}
	slices.Sort(xs)
	hi := xs[n/2]
	if n%2 == 1 {
		return hi
	}
	lo := xs[n/2-1]
	return lo + (hi-lo)/2
}
