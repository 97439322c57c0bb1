package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
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
		return model.UniformTensor(vi.Shape, 1), nil
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

func newInferCmd() *cobra.Command {
	var modelPath, inputPath, outputPath, nodeURL, policy, codec, deadline string
	var k int
	cmd := &cobra.Command{
		Use:   "infer --model M.onnx --input x.npy|img.png|img.jpg --output y.npy [--cut K]  |  infer --node http://EDGE [--model ID] img.png",
		Short: "Run a model locally (with --cut: head then tail), or ask an edge node (--node) to run it split",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if inputPath != "" {
					return fmt.Errorf("give the input either as an argument or with --input, not both")
				}
				inputPath = args[0]
			}
			if inputPath == "" {
				return fmt.Errorf("no input: pass a file or --input")
			}
			if nodeURL != "" {
				return inferRemote(cmd, nodeURL, inputPath, modelPath, policy, codec, deadline)
			}
			if modelPath == "" || outputPath == "" {
				return fmt.Errorf("local inference needs --model and --output (or use --node URL)")
			}
			g, _, x, err := loadModelInput(modelPath, inputPath)
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
	cmd.Flags().StringVar(&nodeURL, "node", "", "edge node's client API, e.g. http://127.0.0.1:8080: send the input there instead of running locally")
	cmd.Flags().StringVar(&policy, "policy", "", "with --node: split policy for this request")
	cmd.Flags().StringVar(&codec, "codec", "", "with --node: force a codec preset")
	cmd.Flags().StringVar(&deadline, "deadline", "", "with --node: request deadline, e.g. 500ms")
	return cmd
}

// inferRemote posts the input file to an edge node's /v1/infer and prints
// the JSON answer.
func inferRemote(cmd *cobra.Command, base, path, modelID, policy, codec, deadline string) error {
	body, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"model": modelID, "policy": policy, "codec": codec, "deadline": deadline} {
		if v != "" {
			q.Set(k, v)
		}
	}
	u := strings.TrimRight(base, "/") + "/v1/infer"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", u, resp.Status, strings.TrimSpace(string(out)))
	}
	_, err = cmd.OutOrStdout().Write(out)
	return err
}
