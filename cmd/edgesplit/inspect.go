package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/spf13/cobra"
)

const modelFlagHelp = zoo.SpecHelp

type inspectNode struct {
	Index    int    `json:"index"`
	Name     string `json:"name"`
	Op       string `json:"op"`
	Shape    []int  `json:"output_shape"`
	MACs     int64  `json:"macs"`
	Params   int64  `json:"params"`
	OutBytes int64  `json:"output_bytes"`
}

type inspectCut struct {
	K        int      `json:"k"`
	Boundary []string `json:"boundary"`
	Bytes    int64    `json:"bytes"`
}

type inspectReport struct {
	Model     string        `json:"model"`
	Nodes     []inspectNode `json:"nodes"`
	CutPoints []int         `json:"single_tensor_cuts"`
	Cuts      []inspectCut  `json:"cuts"`
}

func newInspectCmd() *cobra.Command {
	var modelPath, shape string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect --model M.onnx [--json]",
		Short: "List a model's nodes (op, output shape, MACs, params, bytes) and its cut points",
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, _, err := loadModelShaped(modelPath, shape)
			if err != nil {
				return err
			}
			prof, err := partition.Static(g)
			if err != nil {
				return err
			}
			rep := inspectReport{Model: g.Name, CutPoints: partition.SingleTensorCuts(prof.Cuts)}
			for i, n := range prof.Nodes {
				var shape []int
				if outs := g.Nodes[i].Outputs; len(outs) > 0 {
					shape = g.Shapes[outs[0]]
				}
				rep.Nodes = append(rep.Nodes, inspectNode{i, n.Name, n.Op, shape, n.MACs, n.Params, n.OutBytes})
			}
			for _, c := range prof.Cuts {
				rep.Cuts = append(rep.Cuts, inspectCut{c.K, c.Boundary, c.Bytes})
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "index\tname\top\toutput shape\tMACs\tparams\toutput bytes\t\n")
			for _, n := range rep.Nodes {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%v\t%d\t%d\t%d\t\n", n.Index, n.Name, n.Op, n.Shape, n.MACs, n.Params, n.OutBytes)
			}
			tw.Flush()
			fmt.Fprintf(out, "\nsingle-tensor cut points (K: boundary tensor, bytes):\n")
			for _, k := range rep.CutPoints {
				c := prof.Cuts[k]
				fmt.Fprintf(out, "  K=%d\t%s\t%d\n", k, c.Boundary[0], c.Bytes)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&modelPath, "model", "", modelFlagHelp)
	cmd.Flags().StringVar(&shape, "shape", "", "fix the input shape of a model with dynamic dimensions, e.g. 1,3,48,192")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}
