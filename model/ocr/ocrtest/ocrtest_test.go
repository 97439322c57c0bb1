package ocrtest

import (
	"slices"
	"testing"

	"golang.org/x/image/font/gofont/goregular"
)

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"中文", "中x文", 1}, {"same", "same", 0}} {
		if d := EditDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

func TestLines(t *testing.T) {
	a, b := Lines(50, 7, 1, 3), Lines(50, 7, 1, 3)
	if !slices.Equal(a, b) {
		t.Fatal("Lines with the same seed differ")
	}
	if slices.Equal(a, Lines(50, 8, 1, 3)) {
		t.Error("Lines with different seeds are equal")
	}
	for _, l := range a {
		if l == "" {
			t.Fatal("empty line")
		}
	}
	if !slices.Equal(TextLines(10, 3), Lines(10, 3, 2, 5)) {
		t.Error("TextLines is not Lines(…, 2, 5)")
	}
}

func TestScore(t *testing.T) {
	for _, tc := range []struct {
		got, want    string
		acc, accNS   float64
		exact, chars int
	}{
		{"edge cloud", "edge cloud", 1, 1, 1, 10},
		{"edgecloud", "edge cloud", 0.9, 1, 0, 10},
		{" abcd ", "abce", 0.75, 0.75, 0, 4},
		{"", "ab", 0, 0, 0, 2},
	} {
		var s Score
		s.Add(tc.got, tc.want)
		if s.Accuracy() != tc.acc || s.AccuracyNoSpace() != tc.accNS || s.Exact != tc.exact || s.Chars != tc.chars || s.Lines != 1 {
			t.Errorf("Add(%q, %q): %+v: accuracy %v / %v, want %v / %v, %d exact, %d chars", tc.got, tc.want, s, s.Accuracy(), s.AccuracyNoSpace(), tc.acc, tc.accNS, tc.exact, tc.chars)
		}
	}
	if (Score{}).Accuracy() != 1 {
		t.Error("empty Score accuracy is not 1")
	}
}

func TestRender(t *testing.T) {
	img, err := Line(goregular.TTF, 24, "Split 2026")
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dy() != 36 || b.Dx() < 24*4 {
		t.Errorf("Line bounds %v, want 36 high and wider than 96", b)
	}
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if img.RGBAAt(x, y).R < 128 {
				dark++
			}
		}
	}
	if dark == 0 {
		t.Error("Line drew nothing")
	}
	if _, err := Line([]byte("not a font"), 24, "x"); err == nil {
		t.Error("Line with a bad font succeeded")
	}
	if _, err := Page(goregular.TTF, 100, 60, 20, "a", "b"); err != nil {
		t.Error(err)
	}
	if fonts, err := DebianFonts(); err != nil {
		t.Logf("no Debian fonts: %v", err)
	} else if len(fonts) != 3 {
		t.Errorf("DebianFonts gave %d fonts, want 3", len(fonts))
	}
}
