package ocr

import (
	"context"
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/font/gofont/goregular"

	"github.com/edgesplit/edgesplit/model/ocr/ocrtest"
	"github.com/edgesplit/edgesplit/model/onnx"
)

// cached returns the path of a file scripts/fetch-models.sh caches, or
// skips the test (fails it with EDGESPLIT_REQUIRE_ORT=1, as in CI, where
// the models are fetched with the reference runtime).
func cached(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(onnx.CacheDir(), name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("EDGESPLIT_REQUIRE_ORT") == "1" {
			t.Fatalf("%s not cached (run scripts/fetch-models.sh): %v", name, err)
		}
		t.Skipf("%s not cached (run scripts/fetch-models.sh): %v", name, err)
	}
	return p
}

func newTestPipeline(t testing.TB) *Pipeline {
	t.Helper()
	p, err := New(Config{Det: cached(t, DetFile), Rec: cached(t, RecFile), Keys: cached(t, KeysFile)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// page renders lines of text, dark on white, in Go Regular at size px,
// one line every 2·size pixels, the first baseline 1.3·size from the top.
func page(t testing.TB, w, h int, size float64, lines ...string) *image.RGBA {
	t.Helper()
	return pageFont(t, goregular.TTF, w, h, size, lines...)
}

// pageFont is page in the TrueType font ttf.
func pageFont(t testing.TB, ttf []byte, w, h int, size float64, lines ...string) *image.RGBA {
	t.Helper()
	img, err := ocrtest.Page(ttf, w, h, size, lines...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// noSpace drops spaces: the Chinese PP-OCRv4 recogniser often merges the
// words of Latin text, so the tests compare the other characters exactly.
func noSpace(s string) string { return ocrtest.NoSpace(s) }

func TestReadLine(t *testing.T) {
	p := newTestPipeline(t)
	want := "Split inference 2026"
	img := page(t, 360, 48, 28, want)
	l, err := p.ReadLine(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ReadLine: %q (score %.3f)", l.Text, l.Score)
	if noSpace(l.Text) != noSpace(want) {
		t.Errorf("ReadLine = %q, want %q (spaces aside)", l.Text, want)
	}
	if l.Box != img.Bounds() {
		t.Errorf("ReadLine box %v, want the image's %v", l.Box, img.Bounds())
	}
}

func TestRead(t *testing.T) {
	p := newTestPipeline(t)
	want := []string{"The quick brown fox", "jumps over 13 lazy dogs.", "Edge and cloud, split."}
	img := page(t, 640, 360, 32, want...)
	lines, err := p.Read(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		t.Logf("%v %q (score %.3f)", l.Box, l.Text, l.Score)
		got = append(got, noSpace(l.Text))
	}
	var wantNS []string
	for _, w := range want {
		wantNS = append(wantNS, noSpace(w))
	}
	if strings.Join(got, "|") != strings.Join(wantNS, "|") {
		t.Errorf("Read = %q, want %q (spaces aside)", got, wantNS)
	}
	// Boxes lie inside the image, top to bottom.
	for i, l := range lines {
		if !l.Box.In(img.Bounds()) || i > 0 && l.Box.Min.Y <= lines[i-1].Box.Min.Y {
			t.Errorf("line %d box %v (image %v, previous %v)", i, l.Box, img.Bounds(), lines[max(0, i-1)].Box)
		}
	}
	// A blank page has no text.
	blank := page(t, 200, 100, 20)
	if lines, err := p.Read(context.Background(), blank); err != nil || len(lines) != 0 {
		t.Errorf("blank page: %v, %v", lines, err)
	}
}

func TestBadInput(t *testing.T) {
	p := newTestPipeline(t)
	ctx := context.Background()
	for _, img := range []image.Image{nil, image.NewRGBA(image.Rect(0, 0, 0, 10))} {
		if _, err := p.Read(ctx, img); !errors.Is(err, ErrImage) {
			t.Errorf("Read(%v): err = %v, want ErrImage", img, err)
		}
		if _, err := p.ReadLine(ctx, img); !errors.Is(err, ErrImage) {
			t.Errorf("ReadLine(%v): err = %v, want ErrImage", img, err)
		}
	}
	// No detector: Read refuses, ReadLine works.
	q, err := New(Config{Rec: cached(t, RecFile), Keys: cached(t, KeysFile)})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Read(ctx, page(t, 64, 64, 20, "x")); err == nil {
		t.Error("Read without a detector succeeded")
	}
	// Missing files and an alphabet that does not fit the recogniser.
	if _, err := New(Config{Rec: "nope.onnx", Keys: cached(t, KeysFile)}); err == nil {
		t.Error("New with a missing recogniser succeeded")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New with an empty Config succeeded")
	}
	keys := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keys, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Rec: cached(t, RecFile), Keys: keys}); !errors.Is(err, ErrAlphabet) {
		t.Errorf("New with a 2-entry alphabet: err = %v, want ErrAlphabet", err)
	}
}

// BenchmarkReadLine reads one rendered 48×360 line (the recogniser at
// 1×3×48×384 after padding, plus pre- and post-processing).
func BenchmarkReadLine(b *testing.B) {
	p := newTestPipeline(b)
	img := page(b, 360, 48, 28, "Split inference 2026")
	ctx := context.Background()
	for b.Loop() {
		if _, err := p.ReadLine(ctx, img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead reads a rendered 640×360 page of three lines (detection at
// 640×352, three crops recognised).
func BenchmarkRead(b *testing.B) {
	p := newTestPipeline(b)
	img := page(b, 640, 360, 32, "The quick brown fox", "jumps over 13 lazy dogs.", "Edge and cloud, split.")
	ctx := context.Background()
	for b.Loop() {
		if _, err := p.Read(ctx, img); err != nil {
			b.Fatal(err)
		}
	}
}
