package ocrtest

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// TextLines are n seeded lines of 2–5 words, digits and punctuation
// (Lines(n, seed, 2, 5)).
func TextLines(n int, seed uint64) []string { return Lines(n, seed, 2, 5) }

// Lines are n seeded lines of minWords–maxWords words (English words, city
// names, two-digit numbers, some capitalised), some ending in punctuation.
// The same arguments give the same lines.
func Lines(n int, seed uint64, minWords, maxWords int) []string {
	words := strings.Fields("edge cloud split tensor latency model layer token network device camera signal " +
		"bandwidth packet server budget accuracy frame image text reader north river garden window paper " +
		"Monday April Berlin Paris Tokyo Lagos Lima Oslo")
	punct := []string{"", "", "", ".", ",", ":", "!", "?"}
	minWords = max(1, minWords)
	maxWords = max(minWords, maxWords)
	rng := rand.New(rand.NewPCG(seed, 1))
	lines := make([]string, n)
	for i := range lines {
		k := minWords + rng.IntN(maxWords-minWords+1)
		var ws []string
		for j := 0; j < k; j++ {
			w := words[rng.IntN(len(words))]
			switch rng.IntN(6) {
			case 0:
				w = strings.ToUpper(w[:1]) + w[1:]
			case 1:
				w = "0123456789"[rng.IntN(10):][:1] + string("0123456789"[rng.IntN(10)])
			}
			ws = append(ws, w)
		}
		lines[i] = strings.Join(ws, " ") + punct[rng.IntN(len(punct))]
	}
	return lines
}

// face opens ttf at size px (72 DPI, full hinting).
func face(ttf []byte, size float64) (font.Face, error) {
	f, err := opentype.Parse(ttf)
	if err != nil {
		return nil, fmt.Errorf("ocrtest: %w", err)
	}
	fc, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, fmt.Errorf("ocrtest: %w", err)
	}
	return fc, nil
}

// ink is the text colour: dark blue-grey on white.
var ink = color.RGBA{20, 20, 30, 255}

// Page renders lines of text, dark on white, in the TrueType font ttf at
// size px on a w×h page: one line every 2·size pixels, the first baseline
// 1.3·size from the top, each starting size pixels from the left.
func Page(ttf []byte, w, h int, size float64, lines ...string) (*image.RGBA, error) {
	fc, err := face(ttf, size)
	if err != nil {
		return nil, err
	}
	defer fc.Close()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(ink), Face: fc}
	for i, l := range lines {
		d.Dot = fixed.P(int(size), int(size*(2*float64(i)+1.3)))
		d.DrawString(l)
	}
	return img, nil
}

// Line renders one line of text as a tight crop, as a text detector would
// cut it: the text's advance plus size/2 on each side wide, 1.5·size high,
// the baseline 1.1·size from the top.
func Line(ttf []byte, size float64, text string) (*image.RGBA, error) {
	fc, err := face(ttf, size)
	if err != nil {
		return nil, err
	}
	defer fc.Close()
	adv := font.MeasureString(fc, text).Ceil()
	margin := int(math.Round(size / 2))
	img := image.NewRGBA(image.Rect(0, 0, adv+2*margin, int(math.Ceil(1.5*size))))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(ink), Face: fc, Dot: fixed.P(margin, int(math.Round(1.1*size)))}
	d.DrawString(text)
	return img, nil
}

// DebianFontPackage is the Debian package that installs the DebianFonts
// (apt-get install fonts-dejavu-core).
const DebianFontPackage = "fonts-dejavu-core"

// DejaVuDir is where fonts-dejavu-core installs its fonts.
var DejaVuDir = "/usr/share/fonts/truetype/dejavu"

// DebianFonts reads DejaVu Sans, DejaVu Serif and DejaVu Sans Mono (in that
// order) from DejaVuDir. The error, when one is missing, names the package.
func DebianFonts() ([][]byte, error) {
	var fonts [][]byte
	for _, name := range []string{"DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf"} {
		b, err := os.ReadFile(filepath.Join(DejaVuDir, name))
		if err != nil {
			return nil, fmt.Errorf("ocrtest: %w (Debian package %s)", err, DebianFontPackage)
		}
		fonts = append(fonts, b)
	}
	return fonts, nil
}

// EditDistance is the Levenshtein distance between a and b, in runes.
func EditDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			c := prev[j-1]
			if ra[i-1] != rb[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// NoSpace drops spaces: the Chinese PP-OCRv4 recogniser often merges the
// words of Latin text, so scores are also given without them.
func NoSpace(s string) string { return strings.ReplaceAll(s, " ", "") }

// Score accumulates character accuracy over lines read: 1 − edit distance
// / reference length, with and without spaces. The zero Score is empty.
type Score struct {
	// Lines counts the lines added; Exact those read exactly (surrounding
	// spaces aside).
	Lines, Exact int
	// Chars and Dist are the reference length and the edit distance;
	// CharsNoSpace and DistNoSpace the same with spaces dropped.
	Chars, Dist, CharsNoSpace, DistNoSpace int
}

// Add scores the text read got against the reference want.
func (s *Score) Add(got, want string) {
	got = strings.TrimSpace(got)
	s.Dist += EditDistance(got, want)
	s.Chars += len([]rune(want))
	s.DistNoSpace += EditDistance(NoSpace(got), NoSpace(want))
	s.CharsNoSpace += len([]rune(NoSpace(want)))
	s.Lines++
	if got == want {
		s.Exact++
	}
}

// Accuracy is the character accuracy, spaces included (1 when empty).
func (s Score) Accuracy() float64 { return accuracy(s.Dist, s.Chars) }

// AccuracyNoSpace is the character accuracy with spaces dropped.
func (s Score) AccuracyNoSpace() float64 { return accuracy(s.DistNoSpace, s.CharsNoSpace) }

func accuracy(dist, n int) float64 {
	if n == 0 {
		return 1
	}
	return 1 - float64(dist)/float64(n)
}

// String is "N lines, C characters: character accuracy A (B without
// spaces), E lines exact".
func (s Score) String() string {
	return fmt.Sprintf("%d lines, %d characters: character accuracy %.4f (%.4f without spaces), %d lines exact",
		s.Lines, s.Chars, s.Accuracy(), s.AccuracyNoSpace(), s.Exact)
}
