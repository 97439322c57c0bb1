package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func writePNG(t *testing.T, path string, w, h int, v uint8) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{v, v, v, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJPEG(t *testing.T, path string, w, h int, v uint8) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdirs(t *testing.T, root string, dirs ...string) {
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadFolder(t *testing.T) {
	root := t.TempDir()
	mkdirs(t, root, "cat", "dog")
	for i := 0; i < 5; i++ {
		// mixed sizes and formats
		writePNG(t, filepath.Join(root, "cat", string(rune('a'+i))+".png"), 10+i*7, 12, 200)
		writeJPEG(t, filepath.Join(root, "dog", string(rune('a'+i))+".JPG"), 40, 30+i, 50)
	}
	os.WriteFile(filepath.Join(root, "cat", "broken.png"), []byte("not a png"), 0o644)
	os.WriteFile(filepath.Join(root, "dog", "notes.txt"), []byte("hello"), 0o644)
	p := Preprocess{Grayscale: true, Width: 8, Height: 8}
	sp, err := Load(context.Background(), root, Options{Preprocess: &p, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sp.Classes, []string{"cat", "dog"}) {
		t.Fatalf("classes %v", sp.Classes)
	}
	if len(sp.Skipped) != 2 {
		t.Fatalf("skipped %v, want broken.png and notes.txt", sp.Skipped)
	}
	if n := sp.Train.Len() + sp.Val.Len() + sp.Test.Len(); n != 10 {
		t.Fatalf("%d images in the splits, want 10", n)
	}
	if sp.Test.Len() != 2 { // one per class (20 % of 5)
		t.Fatalf("test split has %d images, want 2", sp.Test.Len())
	}
	for i := 0; i < sp.Train.Len(); i++ {
		want := float32(200.0 / 255)
		if sp.Train.Labels[i] == 1 {
			want = 50.0 / 255
		}
		for _, v := range sp.Train.Image(i) {
			if d := v - want; d > 0.02 || d < -0.02 {
				t.Fatalf("image %d (label %d): value %v, want ≈ %v", i, sp.Train.Labels[i], v, want)
			}
		}
	}
	// The same seed gives the same split.
	sp2, err := Load(context.Background(), root, Options{Preprocess: &p, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sp.Train.Images, sp2.Train.Images) {
		t.Fatal("same seed gave a different split")
	}
}

func TestLoadFolderErrors(t *testing.T) {
	p := Preprocess{Grayscale: true, Width: 8, Height: 8}
	empty := t.TempDir()
	if _, err := LoadFolder(context.Background(), empty, p, Options{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("no class folders: err = %v, want ErrEmpty", err)
	}
	root := t.TempDir()
	mkdirs(t, root, "a", "b")
	writePNG(t, filepath.Join(root, "a", "x.png"), 4, 4, 1)
	os.WriteFile(filepath.Join(root, "b", "bad.jpg"), []byte{0xff, 0xd8, 0}, 0o644)
	_, err := LoadFolder(context.Background(), root, p, Options{})
	if !errors.Is(err, ErrEmpty) {
		t.Errorf("class with only an unreadable image: err = %v, want ErrEmpty", err)
	}
	if _, err := Load(context.Background(), filepath.Join(root, "missing"), Options{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing folder: err = %v, want ErrNotFound", err)
	}
	bad := Preprocess{Width: 0, Height: 8}
	if _, err := Load(context.Background(), root, Options{Preprocess: &bad}); !errors.Is(err, ErrPreprocess) {
		t.Errorf("bad preprocess: err = %v, want ErrPreprocess", err)
	}
	if _, err := Load(context.Background(), root, Options{ValFraction: 2}); err == nil {
		t.Error("validation fraction 2 accepted")
	}
}

func TestIDXLabelsOutOfRange(t *testing.T) {
	dir := t.TempDir()
	img := append([]byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2}, make([]byte, 8)...)
	lab := []byte{0, 0, 8, 1, 0, 0, 0, 2, 3, 12}
	os.WriteFile(filepath.Join(dir, "i"), img, 0o644)
	os.WriteFile(filepath.Join(dir, "l"), lab, 0o644)
	_, err := readIDXPair("x", filepath.Join(dir, "i"), filepath.Join(dir, "l"), DigitClasses(), MNISTPreprocess(), 0)
	if !errors.Is(err, ErrLabel) {
		t.Fatalf("err = %v, want ErrLabel", err)
	}
	short := []byte{0, 0, 8, 1, 0, 0, 0, 3, 1}
	os.WriteFile(filepath.Join(dir, "l"), short, 0o644)
	if _, err := readIDXPair("x", filepath.Join(dir, "i"), filepath.Join(dir, "l"), DigitClasses(), MNISTPreprocess(), 0); !errors.Is(err, ErrIDX) {
		t.Fatalf("truncated labels: err = %v, want ErrIDX", err)
	}
}

func TestPreprocessPipeline(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 4, 2))
	for x := 0; x < 4; x++ {
		for y := 0; y < 2; y++ {
			img.Set(x, y, color.RGBA{255, 0, 0, 255})
		}
	}
	p := Preprocess{Grayscale: true, Width: 2, Height: 1, Mean: []float32{0.5}, Std: []float32{0.25}}
	out, err := p.Image(img)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Shape(); !reflect.DeepEqual([]int(got), []int{1, 1, 1, 2}) {
		t.Fatalf("shape %v", got)
	}
	want := (float32(0.299) - 0.5) / 0.25
	for _, v := range out.Data().([]float32) {
		if d := v - want; d > 1e-4 || d < -1e-4 {
			t.Fatalf("value %v, want %v", v, want)
		}
	}
	inv := Preprocess{Width: 4, Height: 2, Invert: true}
	out, err = inv.Image(img)
	if err != nil {
		t.Fatal(err)
	}
	d := out.Data().([]float32)
	if d[0] != 0 || d[8] != 1 || d[16] != 1 { // R plane 1−1, G and B 1−0
		t.Fatalf("RGB inverted planes start %v %v %v", d[0], d[8], d[16])
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q Preprocess
	if err := json.Unmarshal(b, &q); err != nil || !reflect.DeepEqual(p, q) {
		t.Fatalf("JSON round trip: %s → %+v (%v)", b, q, err)
	}
	for _, bad := range []Preprocess{{Width: -1, Height: 2}, {Width: 2, Height: 2, Mean: []float32{1}}, {Width: 2, Height: 2, Grayscale: true, Mean: []float32{0}, Std: []float32{0}}} {
		if _, err := bad.Image(img); !errors.Is(err, ErrPreprocess) {
			t.Errorf("%+v: err = %v, want ErrPreprocess", bad, err)
		}
	}
}

// TestResizeKeepsConstant: resampling a constant image keeps it constant,
// in both directions.
func TestResizeKeepsConstant(t *testing.T) {
	for _, c := range [][4]int{{28, 28, 7, 9}, {5, 3, 28, 28}, {100, 1, 3, 3}} {
		src := make([]float32, c[0]*c[1])
		for i := range src {
			src[i] = 0.75
		}
		dst := make([]float32, c[2]*c[3])
		resize(src, c[0], c[1], dst, c[2], c[3])
		for _, v := range dst {
			if d := v - 0.75; d > 1e-5 || d < -1e-5 {
				t.Fatalf("%v: value %v", c, v)
			}
		}
	}
}

func TestSidecarRoundTrip(t *testing.T) {
	sc := Sidecar{Arch: "seed-cnn", Dataset: "mnist", Preprocess: MNISTPreprocess(), Labels: DigitClasses(), Outputs: []string{"probs"}, Accuracy: 0.99}
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := WriteSidecar(SidecarPath(path), sc); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSidecar(filepath.Join(filepath.Dir(path), "m.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, sc) {
		t.Fatalf("got %+v", got)
	}
	if _, err := UnmarshalSidecar([]byte(`{"labels":["a"],"preprocess":{"width":0}}`)); !errors.Is(err, ErrPreprocess) {
		t.Fatalf("bad sidecar: %v", err)
	}
	if SidecarPath("dir.v2/model") != "dir.v2/model.json" {
		t.Fatal(SidecarPath("dir.v2/model"))
	}
}

func FuzzReadIDX(f *testing.F) {
	f.Add([]byte{0, 0, 8, 1, 0, 0, 0, 2, 3, 4})
	f.Add([]byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4})
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte{0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		dims, data, err := ReadIDX(bytes.NewReader(b))
		if err != nil {
			return
		}
		n := 1
		for _, d := range dims {
			n *= d
		}
		if n != len(data) || len(data) > len(b) {
			t.Fatalf("dims %v but %d bytes of payload from %d input bytes", dims, len(data), len(b))
		}
	})
}

func FuzzUnmarshalSidecar(f *testing.F) {
	f.Add([]byte(`{"arch":"seed-cnn","preprocess":{"grayscale":true,"width":28,"height":28},"labels":["0","1"]}`))
	f.Add([]byte(`{"preprocess":{"width":3,"height":2,"mean":[0.5,0.5,0.5],"std":[0.2,0.2,0.2]},"labels":["a"]}`))
	f.Add([]byte(`{"preprocess":{"width":1e9,"height":1e9},"labels":["a"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sc, err := UnmarshalSidecar(b)
		if err != nil {
			return
		}
		// A sidecar that validates must preprocess an image without error.
		if sc.Preprocess.Width*sc.Preprocess.Height > 1<<16 {
			return
		}
		img := image.NewGray(image.Rect(0, 0, 3, 3))
		if _, err := sc.Preprocess.Image(img); err != nil {
			t.Fatalf("valid sidecar %s: %v", b, err)
		}
	})
}

func TestPreprocessHugeSize(t *testing.T) {
	for _, p := range []Preprocess{{Width: 1 << 40, Height: 1 << 40}, {Width: 4e9, Height: 4e9}, {Width: 1 << 30, Height: 1}} {
		if err := p.Validate(); !errors.Is(err, ErrPreprocess) {
			t.Errorf("%d×%d: %v", p.Width, p.Height, err)
		}
	}
}
