package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/tensorcodec/cutbench"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"gorgonia.org/tensor"
)

func newCodecCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "codec", Short: "Activation codecs (tensorcodec)"}
	var modelPath, inputPath, datasetSpec, cutsFlag, presetsFlag, csvPath string
	var samples int
	bench := &cobra.Command{
		Use:   "bench --model M.onnx --input x.npy|--dataset mnist [--cuts all|K,...] [--csv out.csv]",
		Short: "Measure every codec preset at the model's cut points: bytes, ratio, speed, error, top-1 agreement",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (inputPath == "") == (datasetSpec == "") {
				return fmt.Errorf("give exactly one of --input and --dataset")
			}
			var cfg cutbench.Config
			if inputPath != "" {
				g, _, x, err := loadModelInput(modelPath, inputPath)
				if err != nil {
					return err
				}
				cfg.Graph = g
				cfg.Inputs = [][]*tensor.Dense{{x}}
			} else {
				g, sc, err := loadModel(modelPath)
				if err != nil {
					return err
				}
				cfg.Graph = g
				opts := dataset.Options{}
				if sc != nil {
					opts.Preprocess = &sc.Preprocess
				}
				ds, err := dataset.Load(cmd.Context(), datasetSpec, opts)
				if err != nil {
					return err
				}
				test := ds.Test
				n := min(samples, test.Len())
				shape := []int{1, test.C, test.H, test.W}
				if err := checkInputShape(g.Inputs[0], tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, test.ImageLen())))); err != nil {
					return fmt.Errorf("dataset %s: %w", datasetSpec, err)
				}
				for i := range n {
					img := append([]float32(nil), test.Image(i)...)
					cfg.Inputs = append(cfg.Inputs, []*tensor.Dense{tensor.New(tensor.WithShape(shape...), tensor.WithBacking(img))})
				}
			}
			if cutsFlag != "" && cutsFlag != "all" {
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
			bar := progressbar.NewOptions(-1, progressbar.OptionSetWriter(cmd.ErrOrStderr()),
				progressbar.OptionSetDescription("cuts"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
			cfg.Progress = func(done, total int) {
				bar.ChangeMax(total)
				_ = bar.Set(done)
			}
			rows, err := cutbench.Run(cmd.Context(), cfg)
			_ = bar.Finish()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "model %s · %d sample(s)\n", cfg.Graph.Name, len(cfg.Inputs))
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "cut\tboundary\tpreset\traw bytes\tbytes\tratio\tenc MB/s\tdec MB/s\tmemmove MB/s\tmax abs err\trel RMSE\ttop-1 agree\t")
			for _, r := range rows {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%.0f\t%.0f\t%.2f×\t%.0f\t%.0f\t%.0f\t%.3g\t%.3g\t%.2f%%\t\n", r.K, strings.Join(r.Boundary, "+"), r.Preset,
					r.RawBytes, r.Bytes, r.Ratio, r.EncodeMBps, r.DecodeMBps, r.MemmoveMBps, r.MaxAbsErr, r.RelRMSE, 100*r.Agreement)
			}
			tw.Flush()
			if csvPath != "" {
				return writeCodecCSV(csvPath, rows)
			}
			return nil
		},
	}
	f := bench.Flags()
	f.StringVar(&modelPath, "model", "", modelFlagHelp)
	f.StringVar(&inputPath, "input", "", "one input .npy")
	f.StringVar(&datasetSpec, "dataset", "", "labelled dataset: mnist, fashion-mnist or an image folder (uses its test split)")
	f.IntVar(&samples, "samples", 1000, "with --dataset: test images used")
	f.StringVar(&cutsFlag, "cuts", "all", "cut positions: all (every single-tensor cut) or K,K,...")
	f.StringVar(&presetsFlag, "presets", "", "comma-separated presets (default all)")
	f.StringVar(&csvPath, "csv", "", "also write the table as CSV")
	_ = bench.MarkFlagRequired("model")
	cmd.AddCommand(bench)
	return cmd
}

func writeCodecCSV(path string, rows []cutbench.Row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"cut", "boundary", "preset", "raw_bytes", "bytes", "ratio", "encode_mbps", "decode_mbps", "memmove_mbps", "max_abs_err", "rel_rmse", "top1_agreement", "samples"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, r := range rows {
		_ = w.Write([]string{strconv.Itoa(r.K), strings.Join(r.Boundary, "+"), r.Preset.String(), g(r.RawBytes), g(r.Bytes), g(r.Ratio),
			g(r.EncodeMBps), g(r.DecodeMBps), g(r.MemmoveMBps), g(r.MaxAbsErr), g(r.RelRMSE), g(r.Agreement), strconv.Itoa(r.Samples)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
