package ocr

import (
	"cmp"
	"math"
	"slices"
)

// DetOptions are the text detector's pre- and post-processing parameters.
// A zero field takes PaddleOCR's inference default, given in its comment.
type DetOptions struct {
	// MaxSide bounds the longer side of the detector's input: an image
	// larger than this is scaled down (default 960). Both sides are then
	// rounded to multiples of 32, as the network needs.
	MaxSide int
	// Thresh binarises the probability map (default 0.3).
	Thresh float32
	// BoxThresh drops a region whose box has a lower mean probability
	// (default 0.6).
	BoxThresh float32
	// UnclipRatio sets how far a region's box is grown: by
	// area·UnclipRatio/perimeter on every side (default 1.5), undoing the
	// shrinking of text regions the network was trained with.
	UnclipRatio float64
	// MinSize drops regions whose shorter side, in map pixels, is below it
	// (default 3; after unclipping, below MinSize+2).
	MinSize int
	// MaxCandidates bounds the regions considered (default 1000).
	MaxCandidates int
}

func (o DetOptions) withDefaults() DetOptions {
	orDefault(&o.MaxSide, 960)
	orDefault(&o.Thresh, 0.3)
	orDefault(&o.BoxThresh, 0.6)
	orDefault(&o.UnclipRatio, 1.5)
	orDefault(&o.MinSize, 3)
	orDefault(&o.MaxCandidates, 1000)
	return o
}

// orDefault sets *p to d when *p is zero or negative.
func orDefault[T int | float32 | float64](p *T, d T) {
	if *p <= 0 {
		*p = d
	}
}

// box is an axis-aligned rectangle [x0, x1) × [y0, y1) in map pixels.
type box struct{ x0, y0, x1, y1 float64 }

func (b box) w() float64 { return b.x1 - b.x0 }
func (b box) h() float64 { return b.y1 - b.y0 }

// textBoxes finds text regions in a w×h probability map (row-major), as
// PaddleOCR's DB post-processing does: binarise at o.Thresh, take each
// 8-connected region's bounding box, keep it when its mean probability
// reaches o.BoxThresh, grow it by the unclip distance and clip it to the
// map. o must have its defaults filled in. Boxes come sorted in reading
// order (top to bottom; left to right within 10 map pixels of height).
func textBoxes(prob []float32, w, h int, o DetOptions) []box {
	label := make([]int32, w*h) // 0 unvisited, -1 background or done
	var stack []int32
	var boxes []box
	for start := range prob[:w*h] {
		if label[start] != 0 {
			continue
		}
		if !(prob[start] > o.Thresh) {
			label[start] = -1
			continue
		}
		// Flood-fill the region from start.
		x0, y0, x1, y1 := w, h, -1, -1
		stack = append(stack[:0], int32(start))
		label[start] = -1
		for len(stack) > 0 {
			p := int(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			px, py := p%w, p/w
			x0, y0, x1, y1 = min(x0, px), min(y0, py), max(x1, px), max(y1, py)
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					qx, qy := px+dx, py+dy
					if qx < 0 || qy < 0 || qx >= w || qy >= h {
						continue
					}
					q := qy*w + qx
					if label[q] != 0 {
						continue
					}
					if prob[q] > o.Thresh {
						label[q] = -1
						stack = append(stack, int32(q))
					} else {
						label[q] = -1
					}
				}
			}
		}
		if len(boxes) >= o.MaxCandidates {
			continue
		}
		b := box{float64(x0), float64(y0), float64(x1 + 1), float64(y1 + 1)}
		if min(b.w(), b.h()) < float64(o.MinSize) {
			continue
		}
		if boxScore(prob, w, x0, y0, x1, y1) < o.BoxThresh {
			continue
		}
		d := b.w() * b.h() * o.UnclipRatio / (2 * (b.w() + b.h()))
		b = box{max(0, b.x0-d), max(0, b.y0-d), min(float64(w), b.x1+d), min(float64(h), b.y1+d)}
		if min(b.w(), b.h()) < float64(o.MinSize+2) {
			continue
		}
		boxes = append(boxes, b)
	}
	sortReadingOrder(boxes)
	return boxes
}

// boxScore is the mean of prob over the inclusive pixel rectangle.
func boxScore(prob []float32, w, x0, y0, x1, y1 int) float32 {
	var s float64
	for y := y0; y <= y1; y++ {
		for _, v := range prob[y*w+x0 : y*w+x1+1] {
			s += float64(v)
		}
	}
	return float32(s / float64((x1-x0+1)*(y1-y0+1)))
}

// sortReadingOrder sorts boxes top to bottom, then swaps neighbours that
// sit on one line (tops within 10 pixels) into left-to-right order, as
// PaddleOCR's sorted_boxes does.
func sortReadingOrder(b []box) {
	slices.SortStableFunc(b, func(p, q box) int {
		if c := cmp.Compare(p.y0, q.y0); c != 0 {
			return c
		}
		return cmp.Compare(p.x0, q.x0)
	})
	for i := 0; i+1 < len(b); i++ {
		for j := i; j >= 0; j-- {
			if math.Abs(b[j+1].y0-b[j].y0) < 10 && b[j+1].x0 < b[j].x0 {
				b[j], b[j+1] = b[j+1], b[j]
			} else {
				break
			}
		}
	}
}
