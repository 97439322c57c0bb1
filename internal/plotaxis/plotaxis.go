// Package plotaxis holds the axis helpers the benchmark figures share
// (gonum/plot tick markers), so bench/figures and bench/accuracy draw their
// log axes alike.
package plotaxis

import (
	"math"
	"strconv"

	"gonum.org/v1/plot"
)

// Ticks125 labels a log axis at 1, 2 and 5 times each power of ten (every
// other integer multiple gets an unlabelled tick).
type Ticks125 struct{}

// Ticks implements plot.Ticker.
func (Ticks125) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	if lo <= 0 || hi <= lo {
		return plot.LogTicks{Prec: -1}.Ticks(lo, hi)
	}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1; m <= 9; m++ {
			v := float64(m) * base
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
}
