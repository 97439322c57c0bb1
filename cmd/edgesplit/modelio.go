package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// trainedName names the embedded trained seed-cnn in --model flags.
const trainedName = zoo.TrainedName

// loadGraph reads a model given as an ONNX file path, the embedded trained
// model, or a zoo name (see modelFlagHelp) and returns it simplified, with
// its sidecar when it has one (ONNX files: M.json beside M.onnx).
func loadGraph(spec string) (*model.Graph, error) {
	g, _, err := loadModel(spec)
	return g, err
}

func loadModel(spec string) (*model.Graph, *dataset.Sidecar, error) {
	return loadModelShaped(spec, "")
}

// loadModelShaped is loadModel with the single input's shape fixed by a
// "1,3,48,192"-style flag value (empty: the model's declared shape), for
// models whose input dimensions are dynamic.
func loadModelShaped(spec, shape string) (*model.Graph, *dataset.Sidecar, error) {
	g, sc, err := rawModel(spec)
	if err != nil {
		return nil, nil, err
	}
	var shapes map[string][]int
	if shape != "" {
		if len(g.Inputs) != 1 {
			return nil, nil, fmt.Errorf("--shape: model has %d inputs; it sets exactly one", len(g.Inputs))
		}
		var dims []int
		for _, f := range splitList(shape) {
			d, err := strconv.Atoi(f)
			if err != nil || d <= 0 {
				return nil, nil, fmt.Errorf("--shape %q: want positive integers like 1,3,224,224", shape)
			}
			dims = append(dims, d)
		}
		shapes = map[string][]int{g.Inputs[0].Name: dims}
	}
	g, err = model.Simplify(g, shapes)
	return g, sc, err
}

// loadModelInput loads a model and its single input: a .npy input fixes the
// shapes a model leaves dynamic (e.g. 1×3×-1×-1); an image or no input
// takes the model's declared shape (unknown dimensions become 1).
func loadModelInput(spec, inputPath string) (*model.Graph, *dataset.Sidecar, *tensor.Dense, error) {
	g, sc, err := rawModel(spec)
	if err != nil {
		return nil, nil, nil, err
	}
	var shapes map[string][]int
	var x *tensor.Dense
	if strings.EqualFold(filepath.Ext(inputPath), ".npy") {
		if len(g.Inputs) != 1 {
			return nil, nil, nil, fmt.Errorf("model has %d inputs; this command feeds exactly one", len(g.Inputs))
		}
		if x, err = readNPY(inputPath); err != nil {
			return nil, nil, nil, err
		}
		if err := checkInputShape(g.Inputs[0], x); err != nil {
			return nil, nil, nil, err
		}
		shapes = map[string][]int{g.Inputs[0].Name: x.Shape().Clone()}
	}
	if g, err = model.Simplify(g, shapes); err != nil {
		return nil, nil, nil, err
	}
	if x == nil {
		if x, err = loadInput(inputPath, g, sc); err != nil {
			return nil, nil, nil, err
		}
	}
	return g, sc, x, nil
}

// rawModel reads a model without simplifying it (see zoo.Load).
func rawModel(spec string) (*model.Graph, *dataset.Sidecar, error) { return zoo.Load(spec) }

// imageInput preprocesses an image file for the model input vi: with the
// model's sidecar pipeline when it has one, else resize to the input's H×W,
// grayscale when it has one channel, scale to [0,1].
func imageInput(path string, vi model.ValueInfo, sc *dataset.Sidecar) (*tensor.Dense, error) {
	var p dataset.Preprocess
	if sc != nil {
		p = sc.Preprocess
	} else {
		if len(vi.Shape) != 4 || (vi.Shape[1] != 1 && vi.Shape[1] != 3) {
			return nil, fmt.Errorf("input %q has shape %v: images need a 1×C×H×W input with C = 1 or 3", vi.Name, vi.Shape)
		}
		p = dataset.Preprocess{Grayscale: vi.Shape[1] == 1, Width: vi.Shape[3], Height: vi.Shape[2]}
	}
	data, err := dataset.LoadImage(path, p)
	if err != nil {
		return nil, err
	}
	return tensor.New(tensor.WithShape(p.Shape()...), tensor.WithBacking(data)), nil
}

func readNPY(path string) (*tensor.Dense, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := npy.Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func writeNPY(path string, t *tensor.Dense) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := npy.Write(f, t); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// checkInputShape compares a tensor's shape with a graph input's.
func checkInputShape(vi model.ValueInfo, t *tensor.Dense) error {
	s := t.Shape()
	if len(s) != len(vi.Shape) {
		return fmt.Errorf("input %q: got shape %v, the model wants %v", vi.Name, []int(s), vi.Shape)
	}
	for i := range s {
		if vi.Shape[i] >= 0 && s[i] != vi.Shape[i] {
			return fmt.Errorf("input %q: got shape %v, the model wants %v", vi.Name, []int(s), vi.Shape)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func joinNames(ns []string) string { return strings.Join(ns, ", ") }
