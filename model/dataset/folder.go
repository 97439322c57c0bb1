package dataset

import (
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // register the JPEG decoder
	_ "image/png"  // register the PNG decoder
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MaxFolderImages bounds the number of images LoadFolder reads (1 M).
const MaxFolderImages = 1 << 20

// LoadFolder reads a folder with one sub-folder per class (the class names,
// sorted, are the labels) of PNG/JPEG images, preprocesses every image with
// p (images of any size are resized) and splits each class with the seed
// into train/validation/test by opts.ValFraction and opts.TestFraction
// (every class with at least 3 images gets at least one test image).
//
// Files that are not .png/.jpg/.jpeg, or that fail to decode, are left out
// and listed in Splits.Skipped. A folder with no class sub-folders, or a
// class with no usable image, is an error wrapping ErrEmpty.
func LoadFolder(ctx context.Context, dir string, p Preprocess, opts Options) (*Splits, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: dataset folder %q (want mnist, fashion-mnist or a folder of class sub-folders): %v", ErrNotFound, dir, err)
	}
	var classes []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			classes = append(classes, e.Name())
		}
	}
	sort.Strings(classes)
	if len(classes) == 0 {
		return nil, fmt.Errorf("%w: folder %q has no class sub-folders", ErrEmpty, dir)
	}
	sp := &Splits{Name: filepath.Base(filepath.Clean(dir)), Classes: classes, Preprocess: p}
	all := &Set{Name: sp.Name, Classes: classes, C: p.Channels(), H: p.Height, W: p.Width}
	var byClass [][]int
	for label, class := range classes {
		files, err := os.ReadDir(filepath.Join(dir, class))
		if err != nil {
			return nil, fmt.Errorf("dataset: class folder %q: %w", class, err)
		}
		var idx []int
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			path := filepath.Join(dir, class, f.Name())
			if f.IsDir() || strings.HasPrefix(f.Name(), ".") {
				continue
			}
			switch strings.ToLower(filepath.Ext(f.Name())) {
			case ".png", ".jpg", ".jpeg":
			default:
				sp.Skipped = append(sp.Skipped, Skipped{path, fmt.Errorf("not a .png/.jpg/.jpeg file")})
				continue
			}
			if all.Len() >= MaxFolderImages {
				return nil, fmt.Errorf("dataset: folder %q has more than %d images", dir, MaxFolderImages)
			}
			vals, err := decodeFile(path, p)
			if err != nil {
				sp.Skipped = append(sp.Skipped, Skipped{path, err})
				continue
			}
			idx = append(idx, all.Len())
			all.Images = append(all.Images, vals...)
			all.Labels = append(all.Labels, label)
		}
		if len(idx) == 0 {
			return nil, fmt.Errorf("%w: class %q (%s) has no readable PNG/JPEG image", ErrEmpty, class, filepath.Join(dir, class))
		}
		byClass = append(byClass, idx)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0xf01d))
	var trainIdx, valIdx, testIdx []int
	for _, idx := range byClass {
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		nTest := int(float64(len(idx)) * opts.TestFraction)
		if nTest == 0 && len(idx) >= 3 {
			nTest = 1
		}
		nVal := int(float64(len(idx)) * opts.ValFraction)
		testIdx = append(testIdx, idx[:nTest]...)
		valIdx = append(valIdx, idx[nTest:nTest+nVal]...)
		trainIdx = append(trainIdx, idx[nTest+nVal:]...)
	}
	if opts.Limit > 0 && len(trainIdx) > opts.Limit {
		trainIdx = trainIdx[:opts.Limit]
	}
	sp.Train = all.Subset(sp.Name+"/train", trainIdx)
	sp.Val = all.Subset(sp.Name+"/val", valIdx)
	sp.Test = all.Subset(sp.Name+"/test", testIdx)
	if sp.Train.Len() == 0 {
		return nil, fmt.Errorf("%w: folder %q leaves no training images", ErrEmpty, dir)
	}
	return sp, nil
}

// decodeFile decodes and preprocesses one image file, refusing images over
// MaxPixels before decoding them.
func decodeFile(path string, p Preprocess) ([]float32, error) {
	img, err := decodeImage(path)
	if err != nil {
		return nil, err
	}
	vals := make([]float32, p.Len())
	if err := p.Into(img, vals); err != nil {
		return nil, err
	}
	return vals, nil
}

// decodeImage decodes a PNG/JPEG file, refusing images over MaxPixels
// before decoding them.
func decodeImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > MaxPixels {
		return nil, fmt.Errorf("image is %d×%d, want 1..%d pixels", cfg.Width, cfg.Height, MaxPixels)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return img, nil
}

// DecodeImage decodes a PNG/JPEG file as it is (no preprocessing),
// refusing one over MaxPixels before decoding it.
func DecodeImage(path string) (image.Image, error) {
	img, err := decodeImage(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: image %s: %w", path, err)
	}
	return img, nil
}

// LoadImage decodes a PNG/JPEG file and preprocesses it with p into a
// 1×C×H×W slice (for inference on one image).
func LoadImage(path string, p Preprocess) ([]float32, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	v, err := decodeFile(path, p)
	if err != nil {
		return nil, fmt.Errorf("dataset: image %s: %w", path, err)
	}
	return v, nil
}
