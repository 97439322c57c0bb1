package ocr

import (
	"context"
	"errors"
	"image"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/font/gofont/goregular"
	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model/ocr/ocrtest"
)

// tinyKeys writes a two-entry alphabet: classes blank, a, b, space.
func tinyKeys(t *testing.T) string {
	t.Helper()
	keys := filepath.Join(t.TempDir(), "keys.txt")
	if err := os.WriteFile(keys, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return keys
}

// steps is a one-hot recogniser output over the tiny alphabet's 4 classes.
func steps(classes ...int) []float32 {
	out := make([]float32, 4*len(classes))
	for i, c := range classes {
		out[4*i+c] = 1
	}
	return out
}

func TestRecognizer(t *testing.T) {
	keys := tinyKeys(t)
	ab := steps(1, 1, 0, 2, 3, 1) // "ab a"
	boom := errors.New("boom")
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		out   func() (*tensor.Dense, error)
		want  string
		isErr error
	}{
		{"1×T×C", func() (*tensor.Dense, error) {
			return tensor.New(tensor.WithShape(1, 6, 4), tensor.WithBacking(ab)), nil
		}, "ab a", nil},
		{"flat T·C", func() (*tensor.Dense, error) { return tensor.New(tensor.WithShape(24), tensor.WithBacking(ab)), nil }, "ab a", nil},
		{"1×(T·C), as /v1/infer", func() (*tensor.Dense, error) { return tensor.New(tensor.WithShape(1, 24), tensor.WithBacking(ab)), nil }, "ab a", nil},
		{"error", func() (*tensor.Dense, error) { return nil, boom }, "", boom},
		{"nil", func() (*tensor.Dense, error) { return nil, nil }, "", ErrRecognizer},
		{"float64", func() (*tensor.Dense, error) {
			return tensor.New(tensor.WithShape(1, 2, 4), tensor.WithBacking(make([]float64, 8))), nil
		}, "", ErrRecognizer},
		{"wrong classes", func() (*tensor.Dense, error) {
			return tensor.New(tensor.WithShape(1, 4, 5), tensor.WithBacking(make([]float32, 20))), nil
		}, "", ErrRecognizer},
		{"batch of 2", func() (*tensor.Dense, error) {
			return tensor.New(tensor.WithShape(2, 3, 4), tensor.WithBacking(make([]float32, 24))), nil
		}, "", ErrRecognizer},
		{"flat, not a multiple", func() (*tensor.Dense, error) {
			return tensor.New(tensor.WithShape(1, 10), tensor.WithBacking(make([]float32, 10))), nil
		}, "", ErrRecognizer},
		{"no steps", func() (*tensor.Dense, error) {
			return tensor.New(tensor.WithShape(1, 0, 4), tensor.WithBacking([]float32{})), nil
		}, "", ErrRecognizer},
		{"4-D", func() (*tensor.Dense, error) {
			return tensor.New(tensor.WithShape(1, 1, 6, 4), tensor.WithBacking(ab)), nil
		}, "", ErrRecognizer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *tensor.Dense
			p, err := New(Config{Keys: keys, FixedWidth: DefaultFixedWidth, Recognizer: RecognizerFunc(func(_ context.Context, x *tensor.Dense) (*tensor.Dense, error) {
				got = x
				return tc.out()
			})})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			l, err := p.ReadLine(ctx, image.NewGray(image.Rect(0, 0, 100, 20)))
			if tc.isErr != nil {
				if !errors.Is(err, tc.isErr) {
					t.Fatalf("ReadLine: %v, want %v", err, tc.isErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Text != tc.want || l.Score != 1 {
				t.Errorf("ReadLine = %q (score %v), want %q (1)", l.Text, l.Score, tc.want)
			}
			if s := got.Shape(); len(s) != 4 || s[0] != 1 || s[1] != 3 || s[2] != RecHeight || s[3] != DefaultFixedWidth {
				t.Errorf("the recogniser got %v, want [1 3 %d %d]", s, RecHeight, DefaultFixedWidth)
			}
		})
	}
}

func TestFixedWidth(t *testing.T) {
	keys := tinyKeys(t)
	for _, tc := range []struct {
		name       string
		fixed      int
		w, h       int
		wantW      int // input width
		wantInkEnd int // first all-padding column (the scaled line's width)
	}{
		{"narrow line, padded", 320, 100, 24, 320, 200},
		{"wide line, squeezed", 320, 1000, 48, 320, 320},
		{"exactly fits", 320, 160, 24, 320, 320},
		{"unfixed: multiple of 32, at least 320", 0, 500, 48, 512, 500},
		{"unfixed narrow", 0, 100, 48, 320, 100},
		{"other fixed width", 640, 300, 24, 640, 600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(Config{Keys: keys, FixedWidth: tc.fixed, Recognizer: RecognizerFunc(func(context.Context, *tensor.Dense) (*tensor.Dense, error) {
				return nil, errors.New("unused")
			})})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			img := image.NewGray(image.Rect(0, 0, tc.w, tc.h)) // black: -1 after normalising
			x, err := p.LineInput(img)
			if err != nil {
				t.Fatal(err)
			}
			s := x.Shape()
			if len(s) != 4 || s[0] != 1 || s[1] != 3 || s[2] != RecHeight || s[3] != tc.wantW {
				t.Fatalf("LineInput of %d×%d: shape %v, want [1 3 %d %d]", tc.w, tc.h, s, RecHeight, tc.wantW)
			}
			data := x.Data().([]float32)
			for c := 0; c < s[3]; c++ {
				inked := data[c] != 0
				if inked != (c < tc.wantInkEnd) {
					t.Fatalf("column %d has %v; want the line in columns [0, %d), zeros after", c, data[c], tc.wantInkEnd)
				}
			}
		})
	}
}

func TestRecognizerConfig(t *testing.T) {
	keys := tinyKeys(t)
	rec := RecognizerFunc(func(context.Context, *tensor.Dense) (*tensor.Dense, error) { return nil, nil })
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"recogniser, no Rec", Config{Keys: keys, Recognizer: rec}, true},
		{"no keys", Config{Recognizer: rec}, false},
		{"neither Rec nor recogniser", Config{Keys: keys}, false},
		{"negative width", Config{Keys: keys, Recognizer: rec, FixedWidth: -1}, false},
		{"width over MaxLineWidth", Config{Keys: keys, Recognizer: rec, FixedWidth: 4000}, false},
		{"width within MaxLineWidth", Config{Keys: keys, Recognizer: rec, FixedWidth: 4000, MaxLineWidth: 4000}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok %v", err, tc.ok)
			}
			if p != nil {
				p.Close()
			}
		})
	}
	// Recognize checks its input before running anything.
	p, err := New(Config{Keys: keys, Recognizer: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, x := range []*tensor.Dense{
		nil,
		tensor.New(tensor.WithShape(1, 3, 32, 320), tensor.Of(tensor.Float32)),
		tensor.New(tensor.WithShape(1, 1, RecHeight, 320), tensor.Of(tensor.Float32)),
		tensor.New(tensor.WithShape(2, 3, RecHeight, 320), tensor.Of(tensor.Float32)),
		tensor.New(tensor.WithShape(3, RecHeight, 320), tensor.Of(tensor.Float32)),
		tensor.New(tensor.WithShape(1, 3, RecHeight, 320), tensor.Of(tensor.Float64)),
	} {
		if _, err := p.Recognize(context.Background(), x); !errors.Is(err, ErrRecognizer) {
			t.Errorf("Recognize(%v): %v, want ErrRecognizer", x, err)
		}
	}
}

// TestRemoteRecognizerMatchesLocal reads rendered lines at the fixed width
// with the engine, and with a Pipeline whose recogniser is another
// Pipeline (as a remote one would be): the same texts.
func TestRemoteRecognizerMatchesLocal(t *testing.T) {
	rec, keys := cached(t, RecFile), cached(t, KeysFile)
	local, err := New(Config{Rec: rec, Keys: keys, FixedWidth: DefaultFixedWidth})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	var calls int
	remote, err := New(Config{Keys: keys, FixedWidth: DefaultFixedWidth, Recognizer: RecognizerFunc(func(ctx context.Context, x *tensor.Dense) (*tensor.Dense, error) {
		calls++
		y, err := local.Recognize(ctx, x)
		if err != nil {
			return nil, err
		}
		// Flattened, as an edge's /v1/infer answers.
		return tensor.New(tensor.WithShape(1, y.Shape().TotalSize()), tensor.WithBacking(y.Data())), nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	ctx := context.Background()
	var sl, sr ocrtest.Score
	for i, want := range ocrtest.Lines(12, 5, 1, 3) {
		img, err := ocrtest.Line(goregular.TTF, 20+float64(i%5)*3, want)
		if err != nil {
			t.Fatal(err)
		}
		a, err := local.ReadLine(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		b, err := remote.ReadLine(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		if a.Text != b.Text || a.Score != b.Score {
			t.Errorf("line %q: local %q (%v), through the Recognizer %q (%v)", want, a.Text, a.Score, b.Text, b.Score)
		}
		sl.Add(a.Text, want)
		sr.Add(b.Text, want)
	}
	t.Logf("local: %s; through the Recognizer: %s", sl, sr)
	if calls != 12 {
		t.Errorf("the Recognizer was called %d times, want 12", calls)
	}
	if sl.AccuracyNoSpace() < 0.9 {
		t.Errorf("character accuracy at width %d %.4f, want ≥ 0.9", DefaultFixedWidth, sl.AccuracyNoSpace())
	}
}
