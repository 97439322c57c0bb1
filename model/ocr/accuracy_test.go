package ocr

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
)

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
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

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"中文", "中x文", 1}, {"same", "same", 0}} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
	}
}

// textLines are n seeded lines of 2–5 words, digits and punctuation.
func textLines(n int, seed uint64) []string {
	words := strings.Fields("edge cloud split tensor latency model layer token network device camera signal " +
		"bandwidth packet server budget accuracy frame image text reader north river garden window paper " +
		"Monday April Berlin Paris Tokyo Lagos Lima Oslo")
	punct := []string{"", "", "", ".", ",", ":", "!", "?"}
	rng := rand.New(rand.NewPCG(seed, 1))
	lines := make([]string, n)
	for i := range lines {
		k := 2 + rng.IntN(4)
		var ws []string
		for j := 0; j < k; j++ {
			w := words[rng.IntN(len(words))]
			switch rng.IntN(6) {
			case 0:
				w = strings.ToUpper(w[:1]) + w[1:]
			case 1:
				w = strings.Repeat("0123456789"[rng.IntN(10):][:1], 1) + string("0123456789"[rng.IntN(10)])
			}
			ws = append(ws, w)
		}
		lines[i] = strings.Join(ws, " ") + punct[rng.IntN(len(punct))]
	}
	return lines
}

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
	type score struct{ dist, n, distNS, nNS, exact, lines int }
	add := func(s *score, got, want string) {
		s.dist += editDistance(strings.TrimSpace(got), want)
		s.n += len([]rune(want))
		s.distNS += editDistance(noSpace(got), noSpace(want))
		s.nNS += len([]rune(noSpace(want)))
		s.lines++
		if strings.TrimSpace(got) == want {
			s.exact++
		}
	}
	report := func(what string, s score) float64 {
		acc := 1 - float64(s.dist)/float64(s.n)
		accNS := 1 - float64(s.distNS)/float64(s.nNS)
		t.Logf("%s: %d lines, %d characters: character accuracy %.4f (%.4f without spaces), %d lines exact",
			what, s.lines, s.n, acc, accNS, s.exact)
		return accNS
	}
	var single, paged score
	lines := textLines(240, 20261203)
	for i, want := range lines[:120] {
		size := 22 + float64(i%13)
		img := pageFont(t, fonts[i%3], int(size*0.62*float64(len(want)))+2*int(size), 48, size, want)
		l, err := p.ReadLine(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		add(&single, l.Text, want)
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
			add(&paged, text, want)
		}
		for _, extra := range got[min(len(got), len(page)):] {
			paged.dist += len([]rune(extra.Text))
		}
	}
	if a := report("ReadLine", single); a < 0.97 {
		t.Errorf("ReadLine character accuracy (spaces aside) %.4f, want ≥ 0.97", a)
	}
	if a := report("Read", paged); a < 0.95 {
		t.Errorf("Read character accuracy (spaces aside) %.4f, want ≥ 0.95", a)
	}
}
