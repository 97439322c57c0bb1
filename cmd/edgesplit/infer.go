package main

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/spf13/cobra"
	"gorgonia.org/tensor"
)

// loadInput reads the model's single input from a .npy file or an image.
// An empty path gives a seeded uniform [0,1) tensor of the input's shape.
func loadInput(path string, g *model.Graph, sc *dataset.Sidecar) (*tensor.Dense, error) {
	if len(g.Inputs) != 1 {
		return nil, fmt.Errorf("model has %d inputs; this command feeds exactly one", len(g.Inputs))
	}
	vi := g.Inputs[0]
	if path == "" {
		return randomInput(vi, 1), nil
	}
	var t *tensor.Dense
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		t, err = readNPY(path)
	case ".png", ".jpg", ".jpeg":
		t, err = imageInput(path, vi, sc)
	default:
		return nil, fmt.Errorf("input %s: want a .npy, .png, .jpg or .jpeg file", path)
	}
	if err != nil {
		return nil, err
	}
	if err := checkInputShape(vi, t); err != nil {
		return nil, err
	}
	return t, nil
}

// randomInput returns a deterministic uniform [0,1) tensor for vi.
func randomInput(vi model.ValueInfo, seed uint64) *tensor.Dense {
	shape := make([]int, len(vi.Shape))
	n := 1
	for i, d := range vi.Shape {
		if d < 0 {
			d = 1
		}
		shape[i] = d
		n *= d
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	data := make([]float32, n)
	for i := range data {
		data[i] = rng.Float32()
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
}

func newInferCmd() *cobra.Command {
	var modelPath, inputPath, outputPath string
	var k int
	cmd := &cobra.Command{
		Use:   "infer --model M.onnx --input x.npy|img.png|img.jpg --output y.npy [--cut K]",
		Short: "Run a model (with --cut: head then tail, passing the boundary tensors) and write its first output as .npy",
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, sc, err := loadModel(modelPath)
			if err != nil {
				return err
			}
			x, err := loadInput(inputPath, g, sc)
			if err != nil {
				return err
			}
			if k < 0 {
				k = len(g.Nodes)
			}
			r, err := partition.NewRunner(g, k, model.Options{})
			if err != nil {
				return err
			}
			outs, _, err := r.Run(cmd.Context(), x)
			if err != nil {
				return err
			}
			if err := writeNPY(outputPath, outs[0]); err != nil {
				return err
			}
			y := outs[0]
			data := y.Data().([]float32)
			best := 0
			for i, v := range data {
				if v > data[best] {
					best = i
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s shape %v; argmax %d (%.6g)\n",
				outputPath, g.Outputs[0].Name, []int(y.Shape()), best, data[best])
			return nil
		},
	}
	cmd.Flags().StringVar(&modelPath, "model", "", modelFlagHelp)
	cmd.Flags().StringVar(&inputPath, "input", "", "input .npy (float32) or image (.png/.jpg: resized to the model input, grayscale when it has 1 channel, scaled to [0,1])")
	cmd.Flags().StringVar(&outputPath, "output", "", "where to write the first output (.npy float32)")
	cmd.Flags().IntVar(&k, "cut", -1, "run head [0,K) then tail [K,N) passing the boundary tensors (default: unsplit)")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("input")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}
