package ocr

import (
	"context"
	"testing"

	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"

	"github.com/edgesplit/edgesplit/model/ocr/ocrtest"
)

// TestCharacterAccuracy reads 120 rendered lines — in Go Regular, Go Mono
// and Go Bold at 22–34 px — one by one (ReadLine), and 120 more set five to
// a page through the whole pipeline (Read), and reports the character
// accuracy, 1 − edit distance / reference length, with and without the
// spaces (which the Chinese recogniser often drops between Latin words).
func TestCharacterAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 240 rendered lines")
	}
	p := newTestPipeline(t)
	ctx := context.Background()
	fonts := [][]byte{goregular.TTF, gomono.TTF, gobold.TTF}
	report := func(what string, s ocrtest.Score) float64 {
		t.Logf("%s: %s", what, s)
		return s.AccuracyNoSpace()
	}
	var single, paged ocrtest.Score
	lines := ocrtest.TextLines(240, 20261203)
	for i, want := range lines[:120] {
		size := 22 + float64(i%13)
		img := pageFont(t, fonts[i%3], int(size*0.62*float64(len(want)))+2*int(size), 48, size, want)
		l, err := p.ReadLine(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		single.Add(l.Text, want)
	}
	for i := 0; i < 120; i += 5 {
		size := 24 + float64(i%9)
		page := lines[120+i : 125+i]
		img := pageFont(t, fonts[(i/5)%3], 26*int(size), int(size)*11, size, page...)
		got, err := p.Read(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range page {
			text := ""
			if k < len(got) {
				text = got[k].Text
			}
			paged.Add(text, want)
		}
		for _, extra := range got[min(len(got), len(page)):] {
			paged.Dist += len([]rune(extra.Text))
		}
	}
	if a := report("ReadLine", single); a < 0.97 {
		t.Errorf("ReadLine character accuracy (spaces aside) %.4f, want ≥ 0.97", a)
	}
	if a := report("Read", paged); a < 0.95 {
		t.Errorf("Read character accuracy (spaces aside) %.4f, want ≥ 0.95", a)
	}
}
