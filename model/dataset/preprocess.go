package dataset

import (
	"errors"
	"fmt"
	"image"
	"math"

	"gorgonia.org/tensor"
)

// ErrPreprocess is wrapped by every error about an invalid Preprocess.
var ErrPreprocess = errors.New("dataset: invalid preprocessing")

// MaxPixels bounds the size of an image accepted by Preprocess.Image
// (64 Mpixel), so a hostile file cannot exhaust memory.
const MaxPixels = 1 << 26

// Preprocess is the preprocessing pipeline shared by training and inference.
// The zero value of an optional field means "off" (or the documented
// default); it round-trips through JSON for the model sidecar.
type Preprocess struct {
	// Grayscale converts to one channel (ITU-R 601 luma); otherwise RGB.
	Grayscale bool `json:"grayscale"`
	// Width and Height are the model's input size; images of another size
	// are resized with an antialiased bilinear filter. Both must be > 0.
	Width  int `json:"width"`
	Height int `json:"height"`
	// Scale multiplies 8-bit channel values (0..255). 0 means 1/255, so
	// values land in [0,1].
	Scale float32 `json:"scale,omitempty"`
	// Invert replaces each scaled value v by 1−v (for dark-on-light
	// pictures fed to a model trained on light-on-dark MNIST).
	Invert bool `json:"invert,omitempty"`
	// AutoInvert inverts (1−v) an image whose border is light: when the
	// mean of its outermost rows and columns, after resizing and scaling,
	// is above 0.5 (first channel). MNIST-style data (light strokes on a
	// dark background) is left alone, so a model trained on it also reads
	// a dark-on-light photo or drawing correctly. Applied after Invert.
	AutoInvert bool `json:"auto_invert,omitempty"`
	// Mean and Std, when set, normalise each channel: (v−Mean[c])/Std[c].
	// Either both are empty or both have one value per channel.
	Mean []float32 `json:"mean,omitempty"`
	Std  []float32 `json:"std,omitempty"`
}

// MNISTPreprocess is the pipeline the MNIST-family models are trained with:
// grayscale 28×28 scaled to [0,1], auto-inverted when the border is light
// (never the case for MNIST's own images), no normalisation.
func MNISTPreprocess() Preprocess {
	return Preprocess{Grayscale: true, Width: 28, Height: 28, AutoInvert: true}
}

// Channels is 1 for grayscale and 3 for RGB.
func (p Preprocess) Channels() int {
	if p.Grayscale {
		return 1
	}
	return 3
}

// Shape is the tensor shape Image returns: 1×C×Height×Width.
func (p Preprocess) Shape() []int { return []int{1, p.Channels(), p.Height, p.Width} }

// Len is the number of float32 values of one preprocessed image.
func (p Preprocess) Len() int { return p.Channels() * p.Height * p.Width }

// Validate reports what is wrong with p, wrapping ErrPreprocess.
func (p Preprocess) Validate() error {
	if p.Width <= 0 || p.Height <= 0 {
		return fmt.Errorf("%w: size %d×%d, want both > 0", ErrPreprocess, p.Width, p.Height)
	}
	if p.Width > MaxPixels || p.Height > MaxPixels || p.Width*p.Height > MaxPixels {
		return fmt.Errorf("%w: size %d×%d is over %d pixels", ErrPreprocess, p.Width, p.Height, MaxPixels)
	}
	if math.IsNaN(float64(p.Scale)) || math.IsInf(float64(p.Scale), 0) {
		return fmt.Errorf("%w: scale %v", ErrPreprocess, p.Scale)
	}
	if len(p.Mean) != len(p.Std) || (len(p.Mean) != 0 && len(p.Mean) != p.Channels()) {
		return fmt.Errorf("%w: %d mean and %d std values for %d channels", ErrPreprocess, len(p.Mean), len(p.Std), p.Channels())
	}
	for i, s := range p.Std {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("%w: std[%d] = %v, want > 0", ErrPreprocess, i, s)
		}
	}
	return nil
}

// Image preprocesses img into a new 1×C×Height×Width float32 tensor.
func (p Preprocess) Image(img image.Image) (*tensor.Dense, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	dst := make([]float32, p.Len())
	if err := p.Into(img, dst); err != nil {
		return nil, err
	}
	return tensor.New(tensor.WithShape(p.Shape()...), tensor.WithBacking(dst)), nil
}

// Into preprocesses img into dst (length Len(), C×Height×Width order).
func (p Preprocess) Into(img image.Image, dst []float32) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if img == nil {
		return fmt.Errorf("dataset: nil image")
	}
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return fmt.Errorf("dataset: empty image (%d×%d)", w, h)
	}
	if w*h > MaxPixels {
		return fmt.Errorf("dataset: image %d×%d is over %d pixels", w, h, MaxPixels)
	}
	if len(dst) != p.Len() {
		return fmt.Errorf("dataset: destination has %d values, want %d", len(dst), p.Len())
	}
	c := p.Channels()
	planes := make([]float32, c*w*h) // 8-bit range values
	if g, ok := img.(*image.Gray); ok && c == 1 {
		for y := 0; y < h; y++ {
			row := g.Pix[y*g.Stride : y*g.Stride+w]
			for x, v := range row {
				planes[y*w+x] = float32(v)
			}
		}
	} else {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				r, gg, bb, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				rf, gf, bf := float32(r)/257, float32(gg)/257, float32(bb)/257
				if c == 1 {
					planes[y*w+x] = 0.299*rf + 0.587*gf + 0.114*bf
				} else {
					planes[y*w+x] = rf
					planes[w*h+y*w+x] = gf
					planes[2*w*h+y*w+x] = bf
				}
			}
		}
	}
	p.finish(planes, w, h, dst)
	return nil
}

// fromGray8 preprocesses an 8-bit grayscale w×h image (MNIST rows) into dst;
// for RGB pipelines the gray value is replicated on all channels.
func (p Preprocess) fromGray8(pix []byte, w, h int, dst []float32) {
	c := p.Channels()
	planes := make([]float32, c*w*h)
	for ch := 0; ch < c; ch++ {
		for i, v := range pix[:w*h] {
			planes[ch*w*h+i] = float32(v)
		}
	}
	p.finish(planes, w, h, dst)
}

// finish resizes the C planes of w×h 8-bit-range values to Width×Height and
// applies scale, invert and normalisation into dst.
func (p Preprocess) finish(planes []float32, w, h int, dst []float32) {
	c := p.Channels()
	ow, oh := p.Width, p.Height
	scale := p.Scale
	if scale == 0 {
		scale = 1.0 / 255
	}
	for ch := 0; ch < c; ch++ {
		src := planes[ch*w*h : (ch+1)*w*h]
		out := dst[ch*ow*oh : (ch+1)*ow*oh]
		if w == ow && h == oh {
			copy(out, src)
		} else {
			resize(src, w, h, out, ow, oh)
		}
		for i, v := range out {
			// The conversion keeps v·scale rounded on its own: fused into
			// 1 − v·scale (arm64 FMAs), 255·(1/255) inverts to −6e-8, not 0.
			v = float32(v * scale)
			if p.Invert {
				v = 1 - v
			}
			out[i] = v
		}
	}
	flip := p.AutoInvert && borderMean(dst[:ow*oh], ow, oh) > 0.5
	for ch := 0; ch < c; ch++ {
		out := dst[ch*ow*oh : (ch+1)*ow*oh]
		mean, inv := float32(0), float32(1)
		if len(p.Mean) > 0 {
			mean, inv = p.Mean[ch], 1/p.Std[ch]
		}
		if !flip && mean == 0 && inv == 1 {
			continue
		}
		for i, v := range out {
			if flip {
				v = 1 - v
			}
			out[i] = (v - mean) * inv
		}
	}
}

// borderMean is the mean of the outermost rows and columns of a w×h plane.
func borderMean(plane []float32, w, h int) float32 {
	var sum float32
	n := 0
	for y := 0; y < h; y++ {
		if y == 0 || y == h-1 {
			for _, v := range plane[y*w : (y+1)*w] {
				sum += v
			}
			n += w
			continue
		}
		sum += plane[y*w]
		n++
		if w > 1 {
			sum += plane[y*w+w-1]
			n++
		}
	}
	return sum / float32(n)
}

// resize resamples a w×h plane to ow×oh with a separable triangle filter
// whose support grows with the downscale factor (antialiased bilinear).
func resize(src []float32, w, h int, dst []float32, ow, oh int) {
	tmp := make([]float32, ow*h)
	xw := filterWeights(w, ow)
	for y := 0; y < h; y++ {
		row := src[y*w : (y+1)*w]
		for x := 0; x < ow; x++ {
			var s float32
			for _, t := range xw[x] {
				s += row[t.idx] * t.w
			}
			tmp[y*ow+x] = s
		}
	}
	yw := filterWeights(h, oh)
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			var s float32
			for _, t := range yw[y] {
				s += tmp[t.idx*ow+x] * t.w
			}
			dst[y*ow+x] = s
		}
	}
}

type tap struct {
	idx int
	w   float32
}

// filterWeights returns, for each of the n output samples, the normalised
// taps into the m input samples (pixel centres at i+0.5).
func filterWeights(m, n int) [][]tap {
	scale := float64(m) / float64(n)
	support := math.Max(scale, 1)
	out := make([][]tap, n)
	for i := range out {
		centre := (float64(i) + 0.5) * scale
		lo := int(math.Floor(centre - support))
		hi := int(math.Ceil(centre + support))
		var taps []tap
		var sum float64
		for j := lo; j <= hi; j++ {
			d := math.Abs(float64(j)+0.5-centre) / support
			if d >= 1 {
				continue
			}
			wt := 1 - d
			k := min(max(j, 0), m-1)
			taps = append(taps, tap{k, float32(wt)})
			sum += wt
		}
		if sum == 0 {
			taps = []tap{{min(max(int(centre), 0), m-1), 1}}
			sum = 1
		}
		for t := range taps {
			taps[t].w = float32(float64(taps[t].w) / sum)
		}
		out[i] = taps
	}
	return out
}
