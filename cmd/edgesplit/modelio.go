package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// loadGraph reads a model given as an ONNX file path or a zoo name (see
// `edgesplit inspect --help`) and returns it simplified.
func loadGraph(spec string) (*model.Graph, error) {
	var g *model.Graph
	var err error
	if _, statErr := os.Stat(spec); statErr == nil || strings.HasSuffix(spec, ".onnx") {
		g, err = onnx.Load(spec)
	} else {
		name, seed := spec, int64(1)
		if i := strings.LastIndexByte(spec, '@'); i > 0 {
			if _, err := fmt.Sscan(spec[i+1:], &seed); err != nil {
				return nil, fmt.Errorf("model %q: bad seed after @: %w", spec, err)
			}
			name = spec[:i]
		}
		g, err = zoo.Build(name, seed)
		if err != nil {
			return nil, fmt.Errorf("model %q is neither a readable .onnx file nor a zoo model (%s): %w",
				spec, strings.Join(zoo.Names(), ", "), err)
		}
	}
	if err != nil {
		return nil, err
	}
	return model.Simplify(g, nil)
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
