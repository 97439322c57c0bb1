package main

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/edgesplit/edgesplit/model/ocr"
)

// writeTextPNG writes a white PNG with text in Go Mono, one line per
// element, and returns its path.
func writeTextPNG(t *testing.T, lines ...string) string {
	t.Helper()
	f, err := opentype.Parse(gomono.TTF)
	if err != nil {
		t.Fatal(err)
	}
	face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: 28, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, 520, 40+60*len(lines)))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.Gray{Y: 30}), Face: face}
	for i, l := range lines {
		d.Dot = fixed.P(24, 56+60*i)
		d.DrawString(l)
	}
	p := filepath.Join(t.TempDir(), "text.png")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := png.Encode(out, img); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOCRCommand(t *testing.T) {
	cfg := ocr.CachedConfig()
	for _, f := range []string{cfg.Det, cfg.Rec, cfg.Keys} {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("EDGESPLIT_REQUIRE_ORT") == "1" {
				t.Fatalf("%s not cached (scripts/fetch-models.sh): %v", f, err)
			}
			t.Skipf("%s not cached (scripts/fetch-models.sh): %v", f, err)
		}
	}
	img := writeTextPNG(t, "HELLO EDGE 42", "cloud-split")
	out, err := runCLI(t, "ocr", img)
	if err != nil {
		t.Fatalf("ocr: %v\n%s", err, out)
	}
	if got := strings.ReplaceAll(out, " ", ""); got != "HELLOEDGE42\ncloud-split\n" {
		t.Errorf("ocr printed %q", out)
	}
	out, err = runCLI(t, "ocr", "--boxes", img)
	if err != nil || len(strings.Split(strings.TrimSpace(out), "\n")) != 2 || strings.Count(out, "\t") != 4 {
		t.Errorf("ocr --boxes: %v\n%s", err, out)
	}
	out, err = runCLI(t, "ocr", "--line", writeTextPNG(t, "LINE 7"))
	if err != nil || strings.ReplaceAll(out, " ", "") != "LINE7\n" {
		t.Errorf("ocr --line: %v, printed %q", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ocr"}, "requires at least 1 arg"},
		{[]string{"ocr", filepath.Join(t.TempDir(), "none.png")}, "none.png"},
		{[]string{"ocr", "--rec", "no-such.onnx", img}, "no-such.onnx"},
	} {
		if out, err := runCLI(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want one naming %q\n%s", tc.args, err, tc.want, out)
		}
	}
}
