package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgesplit/edgesplit/model/dataset"
	"golang.org/x/image/draw"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goitalic"
	"golang.org/x/image/font/gofont/gomedium"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/gofont/gosmallcaps"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// sample is one test input as the bench sends it: the PNG body and its
// ground-truth label.
type sample struct {
	png   []byte
	label int
}

// idxSamples returns the first n test images of an IDX data set (mnist or
// fashion-mnist) as 8-bit grayscale PNGs: the data set's pixels exactly
// (dataset.Load scales bytes by 1/255; ×255 and rounding restores them).
func idxSamples(ctx context.Context, name string, n int) ([]sample, error) {
	ds, err := dataset.Load(ctx, name, dataset.Options{})
	if err != nil {
		return nil, err
	}
	set := ds.Test
	if n > set.Len() {
		return nil, fmt.Errorf("%s has %d test images, -n asks for %d", name, set.Len(), n)
	}
	out := make([]sample, n)
	for i := range n {
		img := image.NewGray(image.Rect(0, 0, set.W, set.H))
		for j, v := range set.Image(i) {
			img.Pix[j] = uint8(min(max(v*255+0.5, 0), 255))
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			return nil, err
		}
		out[i] = sample{png: b.Bytes(), label: set.Labels[i]}
	}
	return out, nil
}

//go:embed corpus.txt
var corpus string

// ppocrPreprocess is PP-OCR's classifier preprocessing for a 48×192 RGB
// crop: scale to [0,1], then (v-0.5)/0.5.
func ppocrPreprocess() dataset.Preprocess {
	return dataset.Preprocess{Width: 192, Height: 48, Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.5, 0.5, 0.5}}
}

// textLineFaces are the Go fonts the text lines are set in.
var textLineFaces = [][]byte{goregular.TTF, gobold.TTF, goitalic.TTF, gomedium.TTF, gomono.TTF, gosmallcaps.TTF}

// textLines renders n text-line crops as the PP-OCR direction classifier
// sees them: words of the corpus (the first half of its words when part is
// 0, the second half when 1, so calibration and test text never overlap)
// set in one of the Go fonts at 20–34 px in a 48 px high line, dark on light
// (one in six light on dark), half of them turned by 180° (label 1, the
// classifier's "180" class), then — as PP-OCR's cropper does — resized to
// 48 px high and at most 192 px wide and padded on the right with mid-grey
// (0 after its normalisation) to 192 px.
func textLines(n, part int, seed uint64) ([]sample, error) {
	words := strings.Fields(corpus)
	half := len(words) / 2
	if part == 0 {
		words = words[:half]
	} else {
		words = words[half:]
	}
	var faces []*opentype.Font
	for _, ttf := range textLineFaces {
		f, err := opentype.Parse(ttf)
		if err != nil {
			return nil, err
		}
		faces = append(faces, f)
	}
	r := rand.New(rand.NewPCG(seed, 0x7e47))
	out := make([]sample, n)
	for i := range n {
		f := faces[r.IntN(len(faces))]
		size := 20 + r.Float64()*14
		face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
		if err != nil {
			return nil, err
		}
		// Words until the line reaches its natural width (80–420 px).
		target := fixed.I(80 + r.IntN(340))
		start := r.IntN(len(words))
		var line string
		for j := 0; j < 40; j++ {
			next := words[(start+j)%len(words)]
			cand := strings.TrimSpace(line + " " + next)
			if line != "" && font.MeasureString(face, cand) > target {
				break
			}
			line = cand
		}
		adv := font.MeasureString(face, line)
		pad := 2 + r.IntN(6)
		w := adv.Ceil() + 2*pad
		ink, paper := uint8(r.IntN(80)), uint8(175+r.IntN(81))
		if r.IntN(6) == 0 {
			ink, paper = paper, ink
		}
		tint := func(v uint8) color.RGBA {
			d := func() uint8 { return uint8(min(max(int(v)+r.IntN(21)-10, 0), 255)) }
			return color.RGBA{d(), d(), d(), 255}
		}
		img := image.NewRGBA(image.Rect(0, 0, w, 48))
		draw.Draw(img, img.Bounds(), image.NewUniform(tint(paper)), image.Point{}, draw.Src)
		m := face.Metrics()
		base := (48-(m.Ascent+m.Descent).Ceil())/2 + m.Ascent.Ceil() + r.IntN(5) - 2
		d := &font.Drawer{Dst: img, Src: image.NewUniform(tint(ink)), Face: face, Dot: fixed.P(pad, base)}
		d.DrawString(line)
		_ = face.Close()
		label := 0
		if r.IntN(2) == 1 {
			label = 1
			img = rotate180(img)
		}
		// PP-OCR's resize_norm_img: height 48, width ceil(48·w/h) capped
		// at 192, the rest padded.
		cw := min(w, 192)
		crop := image.NewRGBA(image.Rect(0, 0, 192, 48))
		draw.Draw(crop, crop.Bounds(), image.NewUniform(color.RGBA{128, 128, 128, 255}), image.Point{}, draw.Src)
		draw.BiLinear.Scale(crop, image.Rect(0, 0, cw, 48), img, img.Bounds(), draw.Src, nil)
		var b bytes.Buffer
		if err := png.Encode(&b, crop); err != nil {
			return nil, err
		}
		out[i] = sample{png: b.Bytes(), label: label}
	}
	return out, nil
}

func rotate180(src *image.RGBA) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(b)
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			dst.SetRGBA(b.Dx()-1-x, b.Dy()-1-y, src.RGBAAt(x, y))
		}
	}
	return dst
}

// writeSamples writes samples as DIR/0/NNNNN.png and DIR/180/NNNNN.png (a
// folder a calibration --calibration DIR reads, with class sub-folders).
func writeSamples(dir string, ss []sample, classes []string) error {
	for _, c := range classes {
		if err := os.MkdirAll(filepath.Join(dir, c), 0o755); err != nil {
			return err
		}
	}
	for i, s := range ss {
		if err := os.WriteFile(filepath.Join(dir, classes[s.label], fmt.Sprintf("%05d.png", i)), s.png, 0o644); err != nil {
			return err
		}
	}
	return nil
}
