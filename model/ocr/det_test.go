package ocr

import (
	"math"
	"testing"
)

// probMap is a w×h map with the given filled rectangles [x0,x1)×[y0,y1).
func probMap(w, h int, v float32, rects ...[4]int) []float32 {
	p := make([]float32, w*h)
	for _, r := range rects {
		for y := r[1]; y < r[3]; y++ {
			for x := r[0]; x < r[2]; x++ {
				p[y*w+x] = v
			}
		}
	}
	return p
}

func TestTextBoxes(t *testing.T) {
	o := DetOptions{}.withDefaults()
	const w, h = 200, 100
	// Two words on one line (the right one first in memory order of its
	// top row), one line below, a speck and a faint region.
	p := probMap(w, h, 0.9, [4]int{120, 10, 180, 30}, [4]int{10, 12, 100, 30}, [4]int{10, 60, 150, 80}, [4]int{190, 90, 192, 92})
	for i, v := range probMap(w, h, 0.4, [4]int{160, 50, 190, 70}) {
		p[i] = max(p[i], v)
	}
	got := textBoxes(p, w, h, o)
	unclip := func(x0, y0, x1, y1 float64) box {
		bw, bh := x1-x0, y1-y0
		d := bw * bh * 1.5 / (2 * (bw + bh))
		return box{max(0, x0-d), max(0, y0-d), min(w, x1+d), min(h, y1+d)}
	}
	want := []box{unclip(10, 12, 100, 30), unclip(120, 10, 180, 30), unclip(10, 60, 150, 80)}
	if len(got) != len(want) {
		t.Fatalf("got %d boxes %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		g, e := got[i], want[i]
		if math.Abs(g.x0-e.x0)+math.Abs(g.y0-e.y0)+math.Abs(g.x1-e.x1)+math.Abs(g.y1-e.y1) > 1e-9 {
			t.Errorf("box %d = %+v, want %+v", i, g, e)
		}
	}
	// Diagonal neighbours join one region (8-connectivity); its box is half
	// empty, so a lower BoxThresh keeps it.
	d := probMap(20, 20, 0.9, [4]int{2, 2, 8, 8}, [4]int{8, 8, 14, 14})
	od := o
	od.BoxThresh = 0.4
	if b := textBoxes(d, 20, 20, od); len(b) != 1 {
		t.Errorf("diagonally touching squares gave %d boxes, want 1", len(b))
	}
	// An empty map and a full one.
	if b := textBoxes(make([]float32, 64), 8, 8, o); len(b) != 0 {
		t.Errorf("empty map gave %v", b)
	}
	if b := textBoxes(probMap(8, 8, 1, [4]int{0, 0, 8, 8}), 8, 8, o); len(b) != 1 || b[0] != (box{0, 0, 8, 8}) {
		t.Errorf("full map gave %v, want the whole map", b)
	}
	// MaxCandidates bounds the boxes.
	o1 := o
	o1.MaxCandidates = 1
	if b := textBoxes(p, w, h, o1); len(b) != 1 {
		t.Errorf("MaxCandidates 1 gave %d boxes", len(b))
	}
}
