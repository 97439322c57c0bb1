package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/tensorcodec/calib"
	"github.com/spf13/cobra"
	"gorgonia.org/tensor"
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
					rows = append(rows, presetRow(r))
				}
			}
			if len(variants) > 0 {
				vrows, err := benchVariants(cmd.Context(), cfg, variants, progress(cmd, "variant inputs"))
				if err != nil {
					return err
				}
				rows = append(rows, vrows...)
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

func presetRow(r calib.Row) codecRow {
	return codecRow{K: r.K, Boundary: r.Boundary, Codec: r.Preset.String(), Fidelity: calib.Fidelity(r.Preset).String(),
		RawBytes: r.RawBytes, Bytes: r.Bytes, Ratio: r.Ratio, EncodeMBps: r.EncodeMBps, DecodeMBps: r.DecodeMBps,
		MemmoveMBps: r.MemmoveMBps, MaxAbsErr: r.MaxAbsErr, RelRMSE: r.RelRMSE, Agreement: r.Agreement, Exact: r.Exact, Stopped: r.Stopped}
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

// variantCut is the measurement of one cut for every variant, owned by one
// goroutine.
type variantCut struct {
	k        int
	boundary []string
	tailEx   *model.Extractor
	outIdx   int
	encs     []*tensorcodec.Encoder
	dec      *tensorcodec.Decoder
	rows     []codecRow
	stats    []tensorcodec.Stats
	bnd, got []*tensor.Dense
	buf      []byte
	probs    []float64
}

// benchVariants measures variants at cfg's cuts (cfg.Cuts; else every
// single-tensor cut, or every cut with cfg.AllCuts, short of the last) on
// cfg.Inputs: per input, the unsplit model's boundary tensors are encoded,
// decoded, and run through the cut's tail, whose top-1 answer is compared
// with the unsplit one — what calib.Run does for the presets.
func benchVariants(ctx context.Context, cfg calib.Config, variants []tensorcodec.Variant, prog func(done, total int)) ([]codecRow, error) {
	g := cfg.Graph
	cuts, err := partition.Cuts(g)
	if err != nil {
		return nil, err
	}
	n := len(g.Nodes)
	ks := slices.Clone(cfg.Cuts)
	if ks == nil {
		for k := 0; k < n; k++ {
			if cfg.AllCuts || cuts[k].Single() {
				ks = append(ks, k)
			}
		}
	}
	slices.Sort(ks)
	ks = slices.Compact(ks)
	// One run of the whole model gives every boundary and the answer.
	capture := *g
	capture.Outputs = slices.Clone(g.Outputs)
	slot := map[string]int{}
	for i, o := range g.Outputs {
		slot[o.Name] = i
	}
	inputSlot := map[string]int{}
	for i, in := range g.Inputs {
		inputSlot[in.Name] = i
	}
	last := g.Outputs[len(g.Outputs)-1].Name
	softmaxOut := false
	for _, nd := range g.Nodes {
		if slices.Contains(nd.Outputs, last) {
			softmaxOut = nd.Op == "Softmax"
		}
	}
	states := make([]*variantCut, len(ks))
	for i, k := range ks {
		if k < 0 || k >= n {
			return nil, fmt.Errorf("--cuts: cut %d outside [0,%d) (edge-only sends nothing)", k, n)
		}
		for _, name := range cuts[k].Boundary {
			_, isOut := slot[name]
			_, isIn := inputSlot[name]
			if !isOut && !isIn {
				slot[name] = len(capture.Outputs)
				capture.Outputs = append(capture.Outputs, model.ValueInfo{Name: name, Shape: g.Shapes[name]})
			}
		}
		tail, err := partition.CompilePiece(g, k, n, model.Options{})
		if err != nil {
			return nil, err
		}
		st := &variantCut{k: k, boundary: cuts[k].Boundary, tailEx: tail.Net.NewExtractor(), outIdx: -1}
		for j, o := range tail.Graph.Outputs {
			if o.Name == last {
				st.outIdx = j
			}
		}
		if st.outIdx < 0 {
			return nil, fmt.Errorf("the tail of cut %d does not produce %q", k, last)
		}
		if st.dec, err = tensorcodec.NewDecoder(); err != nil {
			return nil, err
		}
		for _, v := range variants {
			e, err := v.NewEncoder()
			if err != nil {
				return nil, err
			}
			st.encs = append(st.encs, e)
			st.rows = append(st.rows, codecRow{K: k, Boundary: cuts[k].Boundary, Codec: v.Name, Fidelity: "variant"})
		}
		st.stats = make([]tensorcodec.Stats, len(variants))
		states[i] = st
	}
	net, err := model.Compile(&capture, model.Options{})
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	ex := net.NewExtractor()
	total := cfg.Inputs.Len()
	workers := min(runtime.GOMAXPROCS(0), len(states))
	var ref []float64
	for i := 0; i < total; i++ {
		in, err := cfg.Inputs.Input(i)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		outs, err := ex.Run(ctx, in...)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		ref = probabilities(ref[:0], outs[slot[last]], softmaxOut)
		refClass := argmax(ref)
		for _, st := range states {
			st.bnd = st.bnd[:0]
			for _, name := range st.boundary {
				if j, ok := inputSlot[name]; ok {
					st.bnd = append(st.bnd, in[j])
				} else {
					st.bnd = append(st.bnd, outs[slot[name]])
				}
			}
		}
		if i == 0 {
			per := max(cfg.SpeedTime/time.Duration(max(len(states), 1)), 5*time.Millisecond)
			for _, st := range states {
				for j, v := range variants {
					r, err := tensorcodec.BenchVariant(ctx, v, st.bnd, tensorcodec.BenchOptions{MinTime: per})
					if errors.Is(err, tensorcodec.ErrShape) {
						continue // not applicable here: measure marks the row
					}
					if err != nil {
						return nil, fmt.Errorf("cut %d %s: %w", st.k, v.Name, err)
					}
					st.rows[j].EncodeMBps, st.rows[j].DecodeMBps, st.rows[j].MemmoveMBps = r.EncodeMBps, r.DecodeMBps, r.MemmoveMBps
				}
			}
		}
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for si := w; si < len(states) && errs[w] == nil; si += workers {
					errs[w] = states[si].measure(ctx, refClass, ref, softmaxOut)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		if prog != nil {
			prog(i+1, total)
		}
	}
	var rows []codecRow
	for _, st := range states {
		for j := range st.rows {
			r := &st.rows[j]
			s := st.stats[j]
			if s.Tensors > 0 && s.Bytes > 0 {
				r.RawBytes = float64(s.RawBytes) / float64(r.Samples)
				r.Bytes = float64(s.Bytes) / float64(r.Samples)
				r.Ratio = r.RawBytes / r.Bytes
			}
			r.MaxAbsErr, r.RelRMSE = s.MaxAbsErr, s.RelRMSE
			st.encs[j].Close()
		}
		st.dec.Close()
		rows = append(rows, st.rows...)
	}
	return rows, nil
}

// measure runs the cut's boundary through every variant and the tail.
func (st *variantCut) measure(ctx context.Context, refClass int, ref []float64, softmaxOut bool) error {
	for j, e := range st.encs {
		if st.rows[j].NA {
			continue
		}
		var s tensorcodec.Stats
		var err error
		if st.buf, s, err = e.Encode(st.buf[:0], st.bnd...); errors.Is(err, tensorcodec.ErrShape) {
			st.rows[j].NA = true // e.g. a channel axis beyond this boundary's rank
			continue
		} else if err != nil {
			return fmt.Errorf("cut %d %s: %w", st.k, st.rows[j].Codec, err)
		}
		st.stats[j].Add(s)
		if st.got, err = st.dec.Decode(st.got, st.buf); err != nil {
			return fmt.Errorf("cut %d %s: decode: %w", st.k, st.rows[j].Codec, err)
		}
		outs, err := st.tailEx.Run(ctx, st.got...)
		if err != nil {
			return fmt.Errorf("cut %d %s: tail: %w", st.k, st.rows[j].Codec, err)
		}
		st.probs = probabilities(st.probs[:0], outs[st.outIdx], softmaxOut)
		r := &st.rows[j]
		r.Samples++
		if argmax(st.probs) == refClass {
			r.Agree++
		}
		for c := range min(len(st.probs), len(ref)) {
			r.MaxProbDelta = max(r.MaxProbDelta, math.Abs(st.probs[c]-ref[c]))
		}
	}
	return nil
}

// probabilities appends t's values to dst, through a softmax unless they
// are probabilities already.
func probabilities(dst []float64, t *tensor.Dense, already bool) []float64 {
	start := len(dst)
	m := math.Inf(-1)
	for _, v := range t.Data().([]float32) {
		dst = append(dst, float64(v))
		m = math.Max(m, float64(v))
	}
	if already {
		return dst
	}
	var sum float64
	for i := start; i < len(dst); i++ {
		dst[i] = math.Exp(dst[i] - m)
		sum += dst[i]
	}
	if sum > 0 && !math.IsInf(sum, 0) && !math.IsNaN(sum) {
		for i := start; i < len(dst); i++ {
			dst[i] /= sum
		}
	}
	return dst
}

func argmax(p []float64) int {
	best := 0
	for i := range p {
		if p[i] > p[best] {
			best = i
		}
	}
	return best
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
