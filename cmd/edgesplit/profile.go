package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/edgesplit/edgesplit/partition"
	"github.com/spf13/cobra"
	"gorgonia.org/tensor"
)

func newProfileCmd() *cobra.Command {
	var modelPath, inputPath, device string
	var runs, threads int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "profile --model M.onnx --input x.npy [--json]",
		Short: "Measure per-node latency (median of N runs), output bytes, MACs and params",
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, _, x, err := loadModelInput(modelPath, inputPath)
			if err != nil {
				return err
			}
			p, err := partition.Measure(cmd.Context(), g, []*tensor.Dense{x},
				partition.ProfileConfig{Runs: runs, Threads: threads, Device: device})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(p)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "index\tname\top\tlatency_ms\tMACs\tparams\toutput bytes\t\n")
			var total time.Duration
			for _, n := range p.Nodes {
				total += n.Latency
				fmt.Fprintf(tw, "%d\t%s\t%s\t%.4f\t%d\t%d\t%d\t\n", n.Index, n.Name, n.Op, float64(n.Latency)/1e6, n.MACs, n.Params, n.OutBytes)
			}
			tw.Flush()
			fmt.Fprintf(out, "total_ms=%.4f over %d nodes (median of %d runs each)\n", float64(total)/1e6, len(p.Nodes), runs)
			return nil
		},
	}
	cmd.Flags().StringVar(&modelPath, "model", "", modelFlagHelp)
	cmd.Flags().StringVar(&inputPath, "input", "", "input .npy (default: seeded uniform [0,1) of the input shape)")
	cmd.Flags().StringVar(&device, "device", "local", "device class name recorded in the profile")
	cmd.Flags().IntVar(&runs, "runs", 10, "timed runs per node (median kept)")
	cmd.Flags().IntVar(&threads, "threads", 1, "intra-op threads")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the profile as JSON")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}
