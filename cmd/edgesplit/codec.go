package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/tensorcodec/calib"
	"github.com/spf13/cobra"
)

func newCodecCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "codec", Short: "Activation codecs (tensorcodec)"}
	var modelPath, inputPath, datasetSpec, cutsFlag, presetsFlag, csvPath, tablePath string
	var samples int
	bench := &cobra.Command{
		Use:   "bench --model M.onnx --input x.npy|--dataset mnist|--calibration DIR|x.npy [--cuts all|K,...] [--csv out.csv]",
		Short: "Measure every codec preset at the model's cut points: bytes, ratio, speed, error, top-1 agreement",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (inputPath == "") == (datasetSpec == "") {
				return fmt.Errorf("give exactly one of --input and --dataset")
			}
			cfg := calib.Config{SpeedTime: 100 * time.Millisecond, SpeedPerCut: true, StopBelow: -1}
			if inputPath != "" {
				g, _, x, err := loadModelInput(modelPath, inputPath)
				if err != nil {
					return err
				}
				cfg.Graph = g
				cfg.Inputs = calib.Slice{{x}}
				cfg.SourceName = inputPath
			} else {
				g, sc, err := loadModel(modelPath)
				if err != nil {
					return err
				}
				cfg.Graph = g
				var pre *dataset.Preprocess
				if sc != nil {
					pre = &sc.Preprocess
				}
				if cfg.Inputs, cfg.SourceName, err = calib.Open(cmd.Context(), datasetSpec, g, pre, samples); err != nil {
					return err
				}
			}
			nm, err := node.NewModel(modelPath, "", cfg.Graph, nil)
			if err != nil {
				return err
			}
			cfg.Graph, cfg.ModelID, cfg.ModelVersion = nm.Graph, nm.ID, nm.Version
			if cutsFlag == "every" {
				cfg.AllCuts = true
			} else if cutsFlag != "" && cutsFlag != "all" {
				for _, f := range splitList(cutsFlag) {
					k, err := strconv.Atoi(f)
					if err != nil {
						return fmt.Errorf("--cuts %q: %w", cutsFlag, err)
					}
					cfg.Cuts = append(cfg.Cuts, k)
				}
			}
			if presetsFlag != "" {
				for _, f := range splitList(presetsFlag) {
					p, err := tensorcodec.ParsePreset(f)
					if err != nil {
						return err
					}
					cfg.Presets = append(cfg.Presets, p)
				}
			}
			cfg.Progress = progress(cmd, "calibration inputs")
			res, err := calib.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			rows := res.Rows
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "model %s · %s · %d sample(s)\n", cfg.Graph.Name, cfg.SourceName, cfg.Inputs.Len())
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "cut\tboundary\tpreset\tfidelity\traw bytes\tbytes\tratio\tenc MB/s\tdec MB/s\tmemmove MB/s\tmax abs err\trel RMSE\ttop-1 agree\tmax Δp\t")
			for _, r := range rows {
				bnd := strings.Join(r.Boundary, "+")
				if len(bnd) > 32 {
					bnd = bnd[:29] + "..."
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.0f\t%.0f\t%.2f×\t%.0f\t%.0f\t%.0f\t%.3g\t%.3g\t%s\t%.3g\t\n", r.K, bnd, r.Preset, calib.Fidelity(r.Preset),
					r.RawBytes, r.Bytes, r.Ratio, r.EncodeMBps, r.DecodeMBps, r.MemmoveMBps, r.MaxAbsErr, r.RelRMSE, agreeText(r), r.MaxProbDelta)
			}
			tw.Flush()
			if tablePath != "" {
				if err := res.Table.Save(tablePath); err != nil {
					return err
				}
				fmt.Fprintf(out, "calibration table (digest %s) written to %s\n", res.Table.Digest(), tablePath)
			}
			if csvPath != "" {
				return writeCodecCSV(csvPath, rows)
			}
			return nil
		},
	}
	f := bench.Flags()
	f.StringVar(&modelPath, "model", "", modelFlagHelp)
	f.StringVar(&inputPath, "input", "", "one input .npy")
	f.StringVar(&datasetSpec, "dataset", "", "inputs: mnist or fashion-mnist (test split; NAME:train for the training split), a folder of images or a .npy batch")
	f.StringVar(&datasetSpec, "calibration", "", "same as --dataset")
	f.IntVar(&samples, "samples", 1000, "with --dataset: test images used")
	f.StringVar(&cutsFlag, "cuts", "all", "cut positions: all (every single-tensor cut), every (every prefix cut) or K,K,...")
	f.StringVar(&tablePath, "write-calibration", "", "also write the measurements as a calibration table (JSON) that node and plan load")
	f.StringVar(&presetsFlag, "presets", "", "comma-separated presets (default all)")
	f.StringVar(&csvPath, "csv", "", "also write the table as CSV")
	_ = bench.MarkFlagRequired("model")
	cmd.AddCommand(bench)
	return cmd
}

// agreeText is a row's top-1 agreement: "exact" when it holds by
// construction, else the percentage with its counts.
func agreeText(r calib.Row) string {
	if r.Exact {
		return "exact"
	}
	s := fmt.Sprintf("%.2f%% (%d/%d)", 100*r.Rate(), r.Agree, r.Samples)
	if r.Stopped {
		s += " stopped"
	}
	return s
}

func writeCodecCSV(path string, rows []calib.Row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"cut", "boundary", "preset", "raw_bytes", "bytes", "ratio", "encode_mbps", "decode_mbps", "memmove_mbps", "max_abs_err", "rel_rmse", "top1_agreement", "samples"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, r := range rows {
		_ = w.Write([]string{strconv.Itoa(r.K), strings.Join(r.Boundary, "+"), r.Preset.String(), g(r.RawBytes), g(r.Bytes), g(r.Ratio),
			g(r.EncodeMBps), g(r.DecodeMBps), g(r.MemmoveMBps), g(r.MaxAbsErr), g(r.RelRMSE), g(r.Rate()), strconv.Itoa(r.Samples)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
