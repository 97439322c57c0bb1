package main

import (
	"fmt"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/spf13/cobra"
)

func newExportCmd() *cobra.Command {
	var modelPath, out, shape string
	cmd := &cobra.Command{
		Use:   "export --model M --out M.onnx",
		Short: "Write a model (a zoo model, or an ONNX file after simplification) as an ONNX file",
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, sc, err := loadModelShaped(modelPath, shape)
			if err != nil {
				return err
			}
			if err := onnx.Save(out, g); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d nodes, %d inputs, %d outputs)\n", out, len(g.Nodes), len(g.Inputs), len(g.Outputs))
			return writeSidecarBeside(cmd, out, sc)
		},
	}
	cmd.Flags().StringVar(&modelPath, "model", "", modelFlagHelp)
	cmd.Flags().StringVar(&shape, "shape", "", "fix the input shape of a model with dynamic dimensions, e.g. 1,3,48,192")
	cmd.Flags().StringVar(&out, "out", "", "output .onnx path")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// writeSidecarBeside writes the model's sidecar (preprocessing, labels) as
// M.json beside the model file M.onnx, when it has one.
func writeSidecarBeside(cmd *cobra.Command, modelFile string, sc *dataset.Sidecar) error {
	if sc == nil {
		return nil
	}
	p := dataset.SidecarPath(modelFile)
	if err := dataset.WriteSidecar(p, *sc); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (preprocessing and labels)\n", p)
	return nil
}
