package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/tensorcodec/calib"
	"github.com/spf13/cobra"
)

func newCodecCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "codec", Short: "Activation codecs (tensorcodec)"}
	var modelPath, inputPath, datasetSpec, cutsFlag, presetsFlag, variantsFlag, csvPath, tablePath, mdPath string
	var samples int
	bench := &cobra.Command{
		Use:   "bench --model M.onnx --input x.npy|--dataset mnist|--calibration DIR|x.npy [--cuts all|K,...] [--presets P,...|none] [--variants V,...] [--csv out.csv] [--markdown out.md|-]",
		Short: "Measure every codec preset (and any stage combinations given as --variants) at the model's cut points: bytes, ratio, speed, error, top-1 agreement",
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
			runPresets := presetsFlag != "none"
			if presetsFlag != "" && runPresets {
				for _, f := range splitList(presetsFlag) {
					p, err := tensorcodec.ParsePreset(f)
					if err != nil {
						return err
					}
					cfg.Presets = append(cfg.Presets, p)
				}
			}
			var variants []tensorcodec.Variant
			for _, f := range splitList(variantsFlag) {
				v, err := tensorcodec.ParseVariant(f)
				if err != nil {
					return err
				}
				variants = append(variants, v)
			}
			if !runPresets && len(variants) == 0 {
				return fmt.Errorf("--presets none needs --variants")
			}
			if !runPresets && tablePath != "" {
				return fmt.Errorf("--write-calibration needs the presets measured (not --presets none)")
			}
			var rows []codecRow
			var res *calib.Result
			if runPresets {
				cfg.Progress = progress(cmd, "calibration inputs")
				if res, err = calib.Run(cmd.Context(), cfg); err != nil {
					return err
				}
				for _, r := range res.Rows {
					rows = append(rows, newCodecRow(r, r.Preset.String(), calib.Fidelity(r.Preset).String(), false))
				}
			}
			if len(variants) > 0 {
				cfg.Progress = progress(cmd, "variant inputs")
				vrows, err := calib.Variants(cmd.Context(), cfg, variants)
				if err != nil {
					return err
				}
				for _, r := range vrows {
					rows = append(rows, newCodecRow(r.Row, r.Variant, "variant", r.NA))
				}
				slices.SortStableFunc(rows, func(a, b codecRow) int { return a.K - b.K })
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "model %s · %s · %d sample(s)\n", cfg.Graph.Name, cfg.SourceName, cfg.Inputs.Len())
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "cut\tboundary\tcodec\tfidelity\traw bytes\tbytes\tratio\tenc MB/s\tdec MB/s\tmemmove MB/s\tmax abs err\trel RMSE\ttop-1 agree\tmax Δp\t")
			for _, r := range rows {
				bnd := strings.Join(r.Boundary, "+")
				if len(bnd) > 32 {
					bnd = bnd[:29] + "..."
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.0f\t%.0f\t%.2f×\t%.0f\t%.0f\t%.0f\t%.3g\t%.3g\t%s\t%.3g\t\n", r.K, bnd, r.Codec, r.Fidelity,
					r.RawBytes, r.Bytes, r.Ratio, r.EncodeMBps, r.DecodeMBps, r.MemmoveMBps, r.MaxAbsErr, r.RelRMSE, r.agreeText(), r.MaxProbDelta)
			}
			tw.Flush()
			if tablePath != "" {
				if err := res.Table.Save(tablePath); err != nil {
					return err
				}
				fmt.Fprintf(out, "calibration table (digest %s) written to %s\n", res.Table.Digest(), tablePath)
			}
			if mdPath != "" {
				if err := writeCodecMarkdown(mdPath, out, rows); err != nil {
					return err
				}
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
	f.StringVar(&presetsFlag, "presets", "", "comma-separated presets (default all; none: only --variants)")
	f.StringVar(&variantsFlag, "variants", "", "comma-separated stage combinations measured beside the presets: TRANSFORM[:LEVELS][/LAYOUT[/ENTROPY[:LEVEL]]][@AXIS], e.g. int8-channel/plain/huff0@2 (axis 2 of [N,T,D]: one scale per feature; @1: per token), int8-channel:63/plain/zstd@1 (63 quantisation steps, ≈ 6 bits)")
	f.StringVar(&csvPath, "csv", "", "also write the table as CSV")
	f.StringVar(&mdPath, "markdown", "", "also write a Markdown table, one row per cut and one column per codec (ratio · top-1 agreement); - for standard output")
	_ = bench.MarkFlagRequired("model")
	cmd.AddCommand(bench)
	return cmd
}

// codecRow is one cut × codec (a preset or a variant) as printed.
type codecRow struct {
	K          int
	Boundary   []string
	Codec      string
	Fidelity   string
	RawBytes   float64
	Bytes      float64
	Ratio      float64
	EncodeMBps float64
	DecodeMBps float64
	// MemmoveMBps is copy() speed measured beside the codec's, for scale.
	MemmoveMBps        float64
	MaxAbsErr, RelRMSE float64
	scheduler.Agreement
	Exact, Stopped bool
	// NA is set for a variant that cannot encode this boundary (a channel
	// axis beyond its rank).
	NA bool
}

// newCodecRow is r printed as codec with its fidelity (na: see codecRow.NA).
func newCodecRow(r calib.Row, codec, fidelity string, na bool) codecRow {
	return codecRow{K: r.K, Boundary: r.Boundary, Codec: codec, Fidelity: fidelity,
		RawBytes: r.RawBytes, Bytes: r.Bytes, Ratio: r.Ratio, EncodeMBps: r.EncodeMBps, DecodeMBps: r.DecodeMBps,
		MemmoveMBps: r.MemmoveMBps, MaxAbsErr: r.MaxAbsErr, RelRMSE: r.RelRMSE, Agreement: r.Agreement, Exact: r.Exact, Stopped: r.Stopped, NA: na}
}

// agreeText is a row's top-1 agreement: "exact" when it holds by
// construction, else the percentage with its counts.
func (r codecRow) agreeText() string {
	if r.NA {
		return "n/a"
	}
	if r.Exact {
		return "exact"
	}
	s := fmt.Sprintf("%.2f%% (%d/%d)", 100*r.Rate(), r.Agree, r.Samples)
	if r.Stopped {
		s += " stopped"
	}
	return s
}

// writeCodecMarkdown writes rows as a Markdown table: one row per cut, one
// column per codec in order of first appearance, cells "ratio× · agreement"
// (agreement to 0.01 %, "100 %" when exact by construction). path "-" is
// stdout.
func writeCodecMarkdown(path string, stdout io.Writer, rows []codecRow) error {
	var codecs []string
	var ks []int
	cell := map[[2]string]string{} // {K, codec}
	label := map[int]string{}
	for _, r := range rows {
		if !slices.Contains(codecs, r.Codec) {
			codecs = append(codecs, r.Codec)
		}
		if _, ok := label[r.K]; !ok {
			ks = append(ks, r.K)
			label[r.K] = fmt.Sprintf("%d %s (%.0f)", r.K, strings.Join(r.Boundary, "+"), r.RawBytes)
		}
		agree := fmt.Sprintf("%.2f %%", 100*r.Rate())
		if r.Exact {
			agree = "100 %"
		}
		c := fmt.Sprintf("%.2f× · %s", r.Ratio, agree)
		if r.NA {
			c = "n/a"
		}
		cell[[2]string{strconv.Itoa(r.K), r.Codec}] = c
	}
	var b strings.Builder
	b.WriteString("| cut (boundary, float32 bytes) | " + strings.Join(codecs, " | ") + " |\n")
	b.WriteString("|---" + strings.Repeat("|---", len(codecs)) + "|\n")
	for _, k := range ks {
		b.WriteString("| " + label[k])
		for _, c := range codecs {
			v := cell[[2]string{strconv.Itoa(k), c}]
			if v == "" {
				v = "–"
			}
			b.WriteString(" | " + v)
		}
		b.WriteString(" |\n")
	}
	if path == "-" {
		_, err := io.WriteString(stdout, b.String())
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func writeCodecCSV(path string, rows []codecRow) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"cut", "boundary", "preset", "raw_bytes", "bytes", "ratio", "encode_mbps", "decode_mbps", "memmove_mbps", "max_abs_err", "rel_rmse", "top1_agreement", "samples"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	for _, r := range rows {
		_ = w.Write([]string{strconv.Itoa(r.K), strings.Join(r.Boundary, "+"), r.Codec, g(r.RawBytes), g(r.Bytes), g(r.Ratio),
			g(r.EncodeMBps), g(r.DecodeMBps), g(r.MemmoveMBps), g(r.MaxAbsErr), g(r.RelRMSE), g(r.Rate()), strconv.Itoa(r.Samples)})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
