package calib

import (
	"context"

	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/npy"
	"gorgonia.org/tensor"
)

// imageSource serves images of one shape from a flat float32 buffer.
type imageSource struct {
	shape  []int
	images [][]float32
	labels []int // one per image when the source is labelled (mnist, fashion-mnist)
}

// Labels returns the images' classes, or nil for an unlabelled source.
func (s *imageSource) Labels() []int { return s.labels }

// Labelled is a Source that knows its inputs' classes (what Open returns
// for mnist and fashion-mnist): Exits needs them.
type Labelled interface {
	Source
	// Labels returns one class per input (nil: unlabelled).
	Labels() []int
}

func (s *imageSource) Len() int { return len(s.images) }

func (s *imageSource) Input(i int) ([]*tensor.Dense, error) {
	return []*tensor.Dense{tensor.New(tensor.WithShape(s.shape...), tensor.WithBacking(s.images[i]))}, nil
}

// MaxSourceBytes bounds the float32 bytes a Source opened by Open holds.
const MaxSourceBytes = 4 << 30

// Open opens the calibration inputs named by spec for a single-input model
// g, returning at most limit inputs (0: all) and a description for the
// table:
//
//   - "mnist", "fashion-mnist" (optionally ":test", the default, or
//     ":train"): the data set's split, preprocessed with pre (nil: the data
//     set's default);
//   - a folder: its images (PNG, JPEG, GIF; with class sub-folders, all of
//     them), preprocessed with pre (nil: derived from the model's input
//     shape: grayscale when it has one channel, scaled to [0,1]);
//   - a .npy file: a batch N×C×H×W (or one C×H×W / 1×C×H×W input) of
//     float32 inputs as they are.
//
// The images must have the model's input shape.
func Open(ctx context.Context, spec string, g *model.Graph, pre *dataset.Preprocess, limit int) (Source, string, error) {
	if g == nil || len(g.Inputs) != 1 {
		return nil, "", fmt.Errorf("%w: calibration data sources serve single-input models", ErrConfig)
	}
	in := g.Inputs[0]
	if len(in.Shape) != 4 {
		return nil, "", fmt.Errorf("%w: model input %s has shape %v, want N×C×H×W", ErrConfig, in.Name, in.Shape)
	}
	c, h, w := in.Shape[1], in.Shape[2], in.Shape[3]
	shape := []int{1, c, h, w}
	if limit < 0 {
		return nil, "", fmt.Errorf("%w: negative sample limit %d", ErrConfig, limit)
	}
	if limit > 0 && int64(limit)*int64(c*h*w)*4 > MaxSourceBytes {
		return nil, "", fmt.Errorf("%w: %d samples of %v exceed %d bytes", ErrConfig, limit, shape, int64(MaxSourceBytes))
	}
	take := func(n int) int {
		if limit > 0 {
			return min(n, limit)
		}
		return n
	}
	name, split, _ := strings.Cut(spec, ":")
	switch name {
	case "mnist", "fashion-mnist":
		if split == "" {
			split = "test"
		}
		if split != "test" && split != "train" {
			return nil, "", fmt.Errorf("%w: %q: split %q (want test or train)", ErrConfig, spec, split)
		}
		ds, err := dataset.Load(ctx, name, dataset.Options{Preprocess: pre})
		if err != nil {
			return nil, "", err
		}
		set := ds.Test
		if split == "train" {
			set = ds.Train
		}
		if err := sameShape(spec, []int{1, set.C, set.H, set.W}, shape); err != nil {
			return nil, "", err
		}
		n := take(set.Len())
		src := &imageSource{shape: shape}
		for i := range n {
			src.images = append(src.images, set.Image(i))
			src.labels = append(src.labels, set.Labels[i])
		}
		return src, fmt.Sprintf("%s:%s[0:%d]", name, split, n), nil
	}
	if strings.HasSuffix(strings.ToLower(spec), ".npy") {
		return openNPY(spec, shape, take)
	}
	st, err := os.Stat(spec)
	if err != nil {
		return nil, "", fmt.Errorf("calib: calibration data %q (want mnist, fashion-mnist, a folder of images or a .npy file): %w", spec, err)
	}
	if !st.IsDir() {
		return nil, "", fmt.Errorf("%w: calibration data %q is neither a folder nor a .npy file", ErrConfig, spec)
	}
	p := dataset.Preprocess{Grayscale: c == 1, Width: w, Height: h}
	if pre != nil {
		p = *pre
	}
	if p.Channels() != c || p.Width != w || p.Height != h {
		return nil, "", fmt.Errorf("%w: preprocessing gives %v, model %s takes %v", ErrConfig, p.Shape(), g.Name, shape)
	}
	files, err := imageFiles(spec)
	if err != nil {
		return nil, "", err
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("%w: no images in %s", dataset.ErrEmpty, spec)
	}
	files = files[:take(len(files))]
	src := &imageSource{shape: shape}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		img, err := dataset.LoadImage(f, p)
		if err != nil {
			return nil, "", fmt.Errorf("calib: %w", err)
		}
		src.images = append(src.images, img)
	}
	return src, fmt.Sprintf("%s[0:%d]", filepath.Clean(spec), len(files)), nil
}

// imageFiles lists the image files of dir and of its sub-folders (one
// level, as class folders), sorted.
func imageFiles(dir string) ([]string, error) {
	var out []string
	isImage := func(name string) bool {
		switch strings.ToLower(filepath.Ext(name)) {
		case ".png", ".jpg", ".jpeg", ".gif":
			return !strings.HasPrefix(name, ".")
		}
		return false
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			sub, err := os.ReadDir(p)
			if err != nil {
				return nil, err
			}
			for _, s := range sub {
				if !s.IsDir() && isImage(s.Name()) {
					out = append(out, filepath.Join(p, s.Name()))
				}
			}
		} else if !e.IsDir() && isImage(e.Name()) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

func openNPY(path string, shape []int, take func(int) int) (Source, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	t, err := npy.Read(f, npy.WithMaxBytes(MaxSourceBytes))
	if err != nil {
		return nil, "", fmt.Errorf("calib: %s: %w", path, err)
	}
	sh := t.Shape()
	per := shape[1] * shape[2] * shape[3]
	var n int
	switch {
	case len(sh) == 4 && sh[1] == shape[1] && sh[2] == shape[2] && sh[3] == shape[3]:
		n = sh[0]
	case len(sh) == 3 && sh[0] == shape[1] && sh[1] == shape[2] && sh[2] == shape[3]:
		n = 1
	default:
		return nil, "", fmt.Errorf("%w: %s holds %v, want N×%d×%d×%d", ErrConfig, path, []int(sh), shape[1], shape[2], shape[3])
	}
	if n == 0 {
		return nil, "", fmt.Errorf("%w: %s holds no samples", dataset.ErrEmpty, path)
	}
	data := t.Data().([]float32)
	n = take(n)
	src := &imageSource{shape: shape}
	for i := range n {
		src.images = append(src.images, data[i*per:(i+1)*per])
	}
	return src, fmt.Sprintf("%s[0:%d]", filepath.Base(path), n), nil
}

func sameShape(spec string, got, want []int) error {
	if !slices.Equal(got, want) {
		return fmt.Errorf("%w: %s gives inputs of shape %v, the model takes %v (is its preprocessing right?)", ErrConfig, spec, got, want)
	}
	return nil
}
