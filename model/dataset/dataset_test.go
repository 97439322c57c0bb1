package dataset

import (
	"context"
	"errors"
	"image"
	"reflect"
	"testing"
)

func TestLoadMNIST(t *testing.T) {
	limit := 0
	if testing.Short() {
		limit = 1200
	}
	sp, err := Load(context.Background(), "mnist", Options{Limit: limit, ValFraction: 0.1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	wantTrain, wantTest := 54000, 10000
	if limit > 0 {
		wantTrain, wantTest = 1080, 200
	}
	if sp.Train.Len() != wantTrain || sp.Test.Len() != wantTest || sp.Val.Len()+sp.Train.Len() != wantTrain*10/9 {
		t.Fatalf("sizes train %d val %d test %d", sp.Train.Len(), sp.Val.Len(), sp.Test.Len())
	}
	// The first MNIST test image is a 7; pixel values in [0,1] with some ink.
	if sp.Test.Labels[0] != 7 {
		t.Errorf("first test label %d, want 7", sp.Test.Labels[0])
	}
	var mx float32
	for _, v := range sp.Test.Image(0) {
		if v < 0 || v > 1 {
			t.Fatalf("pixel %v outside [0,1]", v)
		}
		mx = max(mx, v)
	}
	if mx != 1 {
		t.Errorf("max pixel %v, want 1", mx)
	}
}

// TestMNISTNeverAutoInverted: MNIST's own images all have a dark border,
// so AutoInvert (on in MNISTPreprocess) leaves the training data unchanged.
func TestMNISTNeverAutoInverted(t *testing.T) {
	limit := 0
	if testing.Short() {
		limit = 3000
	}
	p := MNISTPreprocess()
	p.AutoInvert = false
	sp, err := Load(context.Background(), "mnist", Options{Limit: limit, Preprocess: &p})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Set{sp.Train, sp.Test} {
		for i := 0; i < s.Len(); i++ {
			if m := borderMean(s.Image(i), 28, 28); m > 0.5 {
				t.Fatalf("%s image %d has border mean %v", s.Name, i, m)
			}
		}
	}
}

func TestAutoInvert(t *testing.T) {
	p := MNISTPreprocess()
	dark := image.NewGray(image.Rect(0, 0, 28, 28))  // black background
	light := image.NewGray(image.Rect(0, 0, 28, 28)) // white paper, dark stroke
	for i := range light.Pix {
		light.Pix[i] = 255
	}
	for y := 5; y < 20; y++ {
		dark.Pix[y*28+14] = 255
		light.Pix[y*28+14] = 0
	}
	a, _ := p.Image(dark)
	b, _ := p.Image(light)
	if !reflect.DeepEqual(a.Data(), b.Data()) {
		t.Fatal("a dark-on-light drawing does not preprocess like its light-on-dark twin")
	}
}

func TestLoadFashionMNIST(t *testing.T) {
	sp, err := Load(context.Background(), "fashion-mnist", Options{Limit: 600})
	if errors.Is(err, ErrNotFound) {
		t.Skipf("Debian package dataset-fashion-mnist not installed: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if sp.Train.Len() != 600 || sp.Test.Len() != 100 || sp.Classes[9] != "Ankle boot" {
		t.Fatalf("train %d test %d classes %v", sp.Train.Len(), sp.Test.Len(), sp.Classes)
	}
	// The first Fashion-MNIST test item is an ankle boot.
	if sp.Test.Labels[0] != 9 {
		t.Fatalf("first test label %d, want 9", sp.Test.Labels[0])
	}
	if _, err := Load(context.Background(), "fashion-mnist", Options{Dir: t.TempDir()}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty dir: %v", err)
	}
}
