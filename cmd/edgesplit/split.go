package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/spf13/cobra"
)

func newSplitCmd() *cobra.Command {
	var modelPath, outDir, shape string
	var k int
	cmd := &cobra.Command{
		Use:   "split --model M.onnx --cut K --out DIR",
		Short: "Write the head (nodes [0,K)) and tail (nodes [K,N)) of a model as two standalone ONNX files",
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, sc, err := loadModelShaped(modelPath, shape)
			if err != nil {
				return err
			}
			s, err := partition.SplitAt(g, k)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(outDir, 0o755); err != nil {
				return err
			}
			if err := onnx.Save(filepath.Join(outDir, "head.onnx"), s.Head); err != nil {
				return fmt.Errorf("head: %w", err)
			}
			if err := onnx.Save(filepath.Join(outDir, "tail.onnx"), s.Tail); err != nil {
				return fmt.Errorf("tail: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cut K=%d of %d nodes; boundary %v\nwrote %s (%d nodes) and %s (%d nodes)\n",
				k, len(g.Nodes), s.Boundary,
				filepath.Join(outDir, "head.onnx"), len(s.Head.Nodes), filepath.Join(outDir, "tail.onnx"), len(s.Tail.Nodes))
			// The head takes the model's input (its preprocessing), the
			// tail gives its output (its labels): both keep the sidecar.
			for _, f := range []string{"head.onnx", "tail.onnx"} {
				if err := writeSidecarBeside(cmd, filepath.Join(outDir, f), sc); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&modelPath, "model", "", modelFlagHelp)
	cmd.Flags().StringVar(&shape, "shape", "", "fix the input shape of a model with dynamic dimensions, e.g. 1,3,48,192")
	cmd.Flags().IntVar(&k, "cut", 0, "cut position K: the head is the first K nodes of the canonical order")
	cmd.Flags().StringVar(&outDir, "out", "", "output folder")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("cut")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
