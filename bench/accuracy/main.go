// Command accuracy measures, on real 3-process edgesplit clusters and real
// test images, the plans the scheduler picks under an accuracy budget, their
// top-1 agreement with the unsplit model and their latency.
//
// For each model × link profile it starts one edge (`edgesplit node --role
// edge --device D --link PROFILE`) and two clouds as OS processes of a built
// edgesplit binary, the first cloud calibrating the model on its calibration
// set when the table is missing (`--calibration`, training split or a
// separate text-line set: never the measured test images), then sends N test
// images as PNG bodies to the edge's POST /v1/infer under several request
// configurations (policy and max_loss query parameters): auto under the
// node's default budget, auto under a sweep of budgets (exact only … any
// calibrated codec), edge-only and cloud-only. Every answer's class is
// compared with the same model file run unsplit in this process (model
// engine, same preprocessing of the same PNG); answers from a different
// model version are counted as errors.
//
// Writes DIR/summary.csv (one row per model × link × configuration) and
// DIR/plans.csv (per configuration, each distinct plan and how often it ran);
// -plot FILE draws latency vs accuracy budget from a summary.
//
//	go run ./bench/accuracy -n 1000                  # the full run (see run.sh)
//	go run ./bench/accuracy -quick                   # 100 images, 2 links
//	go run ./bench/accuracy -plot docs/figures/accuracy-budget-latency.png -summary bench/accuracy/results/summary.csv
//	go run ./bench/accuracy -table -summary bench/accuracy/results/summary.csv
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"image"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/scheduler"
)

// current is the running cluster, stopped on an interrupt.
var (
	currentMu sync.Mutex
	current   *cluster
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		currentMu.Lock()
		if current != nil {
			current.stop()
		}
		os.Exit(130)
	}()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "accuracy:", err)
		os.Exit(1)
	}
}

type options struct {
	bin, work, out, device, ppocr string
	n, sweepN, warmup, samples    int
	models, links                 []string
	budgets                       []float64
}

// anyLoss is the max_loss of the "unconstrained" budget: POST /v1/infer
// rejects max_loss=1 (the budget must be < 1), and under 1-1e-6 every codec
// with a calibration (one agreeing sample suffices) is allowed; a lossy codec
// without any calibration stays refused, as under every budget.
const anyLoss = 0.999999

func run() error {
	var o options
	var models, links, budgets, plotOut, summary string
	var quick bool
	flag.StringVar(&o.bin, "bin", "", "edgesplit binary (default: go build ./cmd/edgesplit into -work)")
	flag.StringVar(&o.work, "work", "bench/out/accuracy", "work folder: binary, CA, trained/exported models, calibration tables and sets, node logs")
	flag.StringVar(&o.out, "out", "bench/accuracy/results", "folder for summary.csv and plans.csv")
	flag.StringVar(&o.device, "device", "raspberry-pi-4", "the edge's emulated device")
	flag.StringVar(&o.ppocr, "ppocr", "", "ch_ppocr_mobile_v2.0_cls_infer.onnx (default: $EDGESPLIT_CACHE or ~/.cache/edgesplit, from scripts/fetch-models.sh)")
	flag.StringVar(&models, "models", "mnist,fashion,ppocr", "models: mnist (seed-cnn-trained), fashion (seed-cnn trained on Fashion-MNIST), ppocr (PP-OCR direction classifier)")
	flag.StringVar(&links, "links", "ethernet,wifi,5g-midband,lte", "link profiles of the edge")
	flag.StringVar(&budgets, "budgets", "0,0.01,0.05", "further max_loss values of the auto sweep (besides the default budget and 'any')")
	flag.IntVar(&o.n, "n", 1000, "test images per configuration (default budget, any, edge-only, cloud-only)")
	flag.IntVar(&o.sweepN, "sweep-n", 0, "test images per further sweep budget (0: -n)")
	flag.IntVar(&o.warmup, "warmup", 20, "unrecorded requests before each configuration")
	flag.IntVar(&o.samples, "calibration-samples", 3000, "calibration inputs (≈2 700 agreeing ones certify 99.9 %)")
	flag.BoolVar(&quick, "quick", false, "quick mode: -n 100, links wifi,lte, warmup 5")
	flag.StringVar(&plotOut, "plot", "", "only draw the latency-vs-budget figure to this PNG from -summary")
	table := flag.Bool("table", false, "only print the Markdown tables of docs/benchmarks.md from -summary")
	flag.StringVar(&summary, "summary", "bench/accuracy/results/summary.csv", "summary CSV -plot reads")
	flag.Parse()
	if plotOut != "" {
		return plotBudget(summary, plotOut)
	}
	if *table {
		return printTables(summary)
	}
	if quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["n"] {
			o.n = 100
		}
		if !set["warmup"] {
			o.warmup = 5
		}
		if !set["links"] {
			links = "wifi,lte"
		}
	}
	if o.sweepN == 0 {
		o.sweepN = o.n
	}
	o.models, o.links = splitList(models), splitList(links)
	for _, s := range splitList(budgets) {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("-budgets %q: %w", s, err)
		}
		o.budgets = append(o.budgets, v)
	}
	if err := os.MkdirAll(filepath.Join(o.work, "logs"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if o.bin == "" {
		o.bin = filepath.Join(o.work, "edgesplit")
		fmt.Fprintln(os.Stderr, "building", o.bin)
		if out, err := exec.Command("go", "build", "-o", o.bin, "./cmd/edgesplit").CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	if abs, err := filepath.Abs(o.bin); err == nil {
		o.bin = abs
	}
	ca := filepath.Join(o.work, "ca")
	if _, err := os.Stat(filepath.Join(ca, "ca.crt")); err != nil {
		if err := edgesplit(o.bin, "ca", "init", "--dir", ca); err != nil {
			return err
		}
	}
	for n, role := range map[string]string{"edge": "edge", "cloud1": "cloud", "cloud2": "cloud"} {
		if _, err := os.Stat(filepath.Join(ca, n+".crt")); err != nil {
			if err := edgesplit(o.bin, "ca", "issue", "--dir", ca, "--node", n, "--role", role); err != nil {
				return err
			}
		}
	}
	sumF, err := os.Create(filepath.Join(o.out, "summary.csv"))
	if err != nil {
		return err
	}
	defer sumF.Close()
	sum := csv.NewWriter(sumF)
	_ = sum.Write(summaryHeader)
	planF, err := os.Create(filepath.Join(o.out, "plans.csv"))
	if err != nil {
		return err
	}
	defer planF.Close()
	plans := csv.NewWriter(planF)
	_ = plans.Write([]string{"model", "link", "config", "plan", "cloud", "requests", "agree", "mean_ms"})
	start := time.Now()
	for _, name := range o.models {
		bm, err := prepare(context.Background(), &o, name)
		if err != nil {
			return fmt.Errorf("model %s: %w", name, err)
		}
		fmt.Fprintf(os.Stderr, "%s: %s v%s, %d test images (%s), reference top-1 accuracy %.2f %%\n",
			name, bm.spec, bm.version, len(bm.test), bm.testDesc, 100*bm.refAccuracy())
		for _, link := range o.links {
			if err := benchLink(&o, bm, link, ca, sum, plans); err != nil {
				return fmt.Errorf("model %s, link %s: %w", name, link, err)
			}
			sum.Flush()
			plans.Flush()
		}
	}
	fmt.Fprintf(os.Stderr, "done in %v; wrote %s and %s\n", time.Since(start).Round(time.Second), sumF.Name(), planF.Name())
	sum.Flush()
	plans.Flush()
	return sum.Error()
}

func edgesplit(bin string, args ...string) error {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("edgesplit %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// benchModel is one model under test with its data and reference answers.
type benchModel struct {
	name, spec, version   string
	table, calib, calDesc string
	testDesc              string
	classes               []string
	test                  []sample
	ref                   [][]float32 // unsplit outputs, per test image
	refClass              []int
}

func (b *benchModel) refAccuracy() float64 {
	ok := 0
	for i, s := range b.test {
		if b.refClass[i] == s.label {
			ok++
		}
	}
	return float64(ok) / float64(len(b.test))
}

// prepare makes the model's files (training or exporting it when needed),
// its test and calibration sets, and the unsplit reference answers.
func prepare(ctx context.Context, o *options, name string) (*benchModel, error) {
	b := &benchModel{name: name}
	n := max(o.n, o.sweepN)
	var err error
	switch name {
	case "mnist":
		b.spec = "seed-cnn-trained"
		b.table = filepath.Join(o.work, "seed-cnn-trained.calib.json")
		b.calib, b.calDesc = "mnist:train", "MNIST training split, first 3000 images"
		b.testDesc = fmt.Sprintf("MNIST test split, first %d images", n)
		b.classes = dataset.DigitClasses()
		b.test, err = idxSamples(ctx, "mnist", n)
	case "fashion":
		b.spec = filepath.Join(o.work, "fashion-seed-cnn.onnx")
		if _, err := os.Stat(b.spec); err != nil {
			fmt.Fprintln(os.Stderr, "training", b.spec, "(edgesplit train --arch seed-cnn --dataset fashion-mnist --epochs 2)")
			if err := edgesplit(o.bin, "train", "--arch", "seed-cnn", "--dataset", "fashion-mnist", "--epochs", "2", "--out", b.spec); err != nil {
				return nil, err
			}
		}
		b.table = scheduler.CalibrationPath(b.spec)
		b.calib, b.calDesc = "fashion-mnist:train", "Fashion-MNIST training split, first 3000 images"
		b.testDesc = fmt.Sprintf("Fashion-MNIST test split, first %d images", n)
		b.classes = dataset.FashionClasses()
		b.test, err = idxSamples(ctx, "fashion-mnist", n)
	case "ppocr":
		src := o.ppocr
		if src == "" {
			cache := os.Getenv("EDGESPLIT_CACHE")
			if cache == "" {
				home, _ := os.UserHomeDir()
				cache = filepath.Join(home, ".cache", "edgesplit")
			}
			src = filepath.Join(cache, "ch_ppocr_mobile_v2.0_cls_infer.onnx")
		}
		b.spec = filepath.Join(o.work, "ppocr-cls-48x192.onnx")
		if _, err := os.Stat(b.spec); err != nil {
			// The classifier's input is N×3×48×W: fix it to PP-OCR's
			// 1×3×48×192 crop.
			if err := edgesplit(o.bin, "export", "--model", src, "--shape", "1,3,48,192", "--out", b.spec); err != nil {
				return nil, fmt.Errorf("%w (fetch the model with scripts/fetch-models.sh)", err)
			}
		}
		b.classes = []string{"0", "180"}
		sc := dataset.Sidecar{Arch: "ch_ppocr_mobile_v2.0_cls", Dataset: "PP-OCR text-line crops", Preprocess: ppocrPreprocess(),
			Labels: b.classes, Outputs: []string{"softmax_0.tmp_0"}}
		js, err := dataset.MarshalSidecar(sc)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(dataset.SidecarPath(b.spec), js, 0o644); err != nil {
			return nil, err
		}
		b.table = scheduler.CalibrationPath(b.spec)
		b.calib = filepath.Join(o.work, "textlines-calib")
		b.calDesc = fmt.Sprintf("%d rendered text lines (first half of the corpus' words, seed 1)", o.samples)
		if _, err := os.Stat(b.calib); err != nil {
			cs, err := textLines(o.samples, 0, 1)
			if err != nil {
				return nil, err
			}
			if err := writeSamples(b.calib+".tmp", cs, b.classes); err != nil {
				return nil, err
			}
			if err := os.Rename(b.calib+".tmp", b.calib); err != nil {
				return nil, err
			}
		}
		b.testDesc = fmt.Sprintf("%d rendered text lines (second half of the corpus' words, seed 2)", n)
		b.test, err = textLines(n, 1, 2)
		if err == nil {
			_ = os.RemoveAll(filepath.Join(o.work, "textlines-test"))
			err = writeSamples(filepath.Join(o.work, "textlines-test"), b.test, b.classes)
		}
	default:
		return nil, fmt.Errorf("unknown model %q (want mnist, fashion, ppocr)", name)
	}
	if err != nil {
		return nil, err
	}
	// The unsplit reference: the model loaded as the node loads it.
	var g *model.Graph
	var sc *dataset.Sidecar
	if b.spec == "seed-cnn-trained" {
		var s dataset.Sidecar
		g, s, err = zoo.SeedCNNTrained()
		sc = &s
	} else {
		g, err = onnx.Load(b.spec)
		if err == nil {
			var s dataset.Sidecar
			if s, err = dataset.ReadSidecar(dataset.SidecarPath(b.spec)); err == nil {
				sc = &s
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if g, err = model.Simplify(g, nil); err != nil {
		return nil, err
	}
	m, err := node.NewModel(b.spec, "", g, sc)
	if err != nil {
		return nil, err
	}
	b.version = m.Version
	net, err := model.Compile(m.Graph, model.Options{})
	if err != nil {
		return nil, err
	}
	ex := net.NewExtractor()
	for _, s := range b.test {
		img, _, err := image.Decode(bytes.NewReader(s.png))
		if err != nil {
			return nil, err
		}
		x, err := sc.Preprocess.Image(img)
		if err != nil {
			return nil, err
		}
		outs, err := ex.Run(ctx, x)
		if err != nil {
			return nil, err
		}
		y := slices.Clone(outs[len(outs)-1].Data().([]float32))
		b.ref = append(b.ref, y)
		b.refClass = append(b.refClass, argmax(y))
	}
	return b, nil
}

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// config is one request configuration.
type config struct {
	name, query string
	budget      float64 // for the figure: max_loss (NaN: not an auto sweep point)
	n           int
	strict      bool // agreement must be ≥ 99.9 %
}

func (o *options) configs() []config {
	def := scheduler.DefaultMaxLoss
	cs := []config{
		{"auto@default", "policy=auto", def, o.n, true},
		{"auto@any", "policy=auto&max_loss=" + ff(anyLoss), 1, o.n, false},
		{"edge-only", "policy=edge-only", math.NaN(), o.n, true},
		{"cloud-only@default", "policy=cloud-only", math.NaN(), o.n, true},
		{"cloud-only@any", "policy=cloud-only&max_loss=" + ff(anyLoss), math.NaN(), o.n, false},
	}
	for _, b := range o.budgets {
		name := "auto@" + ff(b)
		if b == 0 {
			name = "auto@exact"
		}
		cs = append(cs, config{name, "policy=auto&max_loss=" + ff(b), b, o.sweepN, b <= def})
	}
	return cs
}

func ff(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

var summaryHeader = []string{"model", "link", "device", "config", "query", "max_loss", "n", "plan", "plan_share", "plans",
	"clouds", "agree", "agreement", "agreement_wilson95", "label_accuracy", "ref_label_accuracy", "max_abs_diff",
	"mean_ms", "p50_ms", "p95_ms", "node_mean_ms", "predicted_mean_ms", "bytes_mean", "fidelity", "min_lower_bound",
	"fallbacks", "not_offloaded", "errors", "model_version", "calibration", "test_set"}

// result is what one request returned.
type result struct {
	plan, cloud, fidelity string
	agree, correct        bool
	diff                  float64
	clientMS, nodeMS      float64
	predMS                float64
	bytes                 int64
	lower                 float64
	fallback              bool
}

func benchLink(o *options, b *benchModel, link, ca string, sum, plans *csv.Writer) error {
	fmt.Fprintf(os.Stderr, "== %s on %s: starting cloud1 (calibrates if %s is missing), cloud2, edge (%s)\n", b.name, link, b.table, o.device)
	t0 := time.Now()
	c, err := startCluster(clusterConfig{bin: o.bin, ca: ca, model: b.spec,
		table: b.table, calib: b.calib, calibSamples: o.samples, link: link, device: o.device,
		logDir: filepath.Join(o.work, "logs"), prefix: b.name + "-" + link}, b.test[0].png)
	if err != nil {
		return err
	}
	currentMu.Lock()
	current = c
	currentMu.Unlock()
	defer func() {
		currentMu.Lock()
		c.stop()
		current = nil
		currentMu.Unlock()
	}()
	fmt.Fprintf(os.Stderr, "   cluster up in %v\n", time.Since(t0).Round(100*time.Millisecond))
	// The budget must be < 1: document what max_loss=1 gets.
	if _, code, msg, err := c.infer("max_loss=1", b.test[0].png); err == nil && code != 200 {
		fmt.Fprintf(os.Stderr, "   (max_loss=1 → %d %s; 'any' uses max_loss=%v)\n", code, strings.Join(strings.Fields(msg), " "), anyLoss)
	}
	for _, cf := range o.configs() {
		// A cloud that misses a deadline is banned for 15 s or more, and
		// with both banned every plan (cloud-only included) runs on the
		// edge: wait until the edge offloads again before each
		// configuration, so one configuration's bans do not leak into the
		// next.
		if waited, err := c.waitOffload(b.test[0].png, 2*time.Minute); err != nil {
			return err
		} else if waited > time.Second {
			fmt.Fprintf(os.Stderr, "   (waited %v for the edge to offload again: clouds were banned)\n", waited.Round(100*time.Millisecond))
		}
		for i := 0; i < o.warmup; i++ {
			if _, code, msg, err := c.infer(cf.query, b.test[i%len(b.test)].png); err != nil || code != 200 {
				return fmt.Errorf("%s warm-up: %d %s %v", cf.name, code, msg, err)
			}
		}
		var rs []result
		var errs []string
		version := ""
		for i := 0; i < cf.n; i++ {
			res, code, msg, dt, err := c.inferTimed(cf.query, b.test[i].png)
			if err != nil || code != 200 {
				errs = append(errs, fmt.Sprintf("image %d: %d %s %v", i, code, msg, err))
				continue
			}
			if res.ModelVersion != b.version {
				errs = append(errs, fmt.Sprintf("image %d: model version %s, the bench's is %s", i, res.ModelVersion, b.version))
				continue
			}
			version = res.ModelVersion
			r := result{cloud: res.Cloud, fidelity: res.Accuracy.Fidelity, clientMS: float64(dt) / 1e6, nodeMS: res.RequestMS,
				predMS: res.Predicted, bytes: res.BytesSent, lower: res.Accuracy.Lower, fallback: res.Fallback != ""}
			if res.Cloud == "" {
				r.plan = "edge-only"
			} else {
				r.plan = fmt.Sprintf("cut %d %s", res.Cut, res.Codec)
			}
			r.agree = res.Class == b.refClass[i]
			r.correct = res.Class == b.test[i].label
			for j, v := range res.Output {
				if j < len(b.ref[i]) {
					r.diff = math.Max(r.diff, math.Abs(float64(v-b.ref[i][j])))
				}
			}
			if len(res.Output) != len(b.ref[i]) {
				r.diff = math.Inf(1)
			}
			rs = append(rs, r)
		}
		row, lines := summarize(o, b, link, cf, rs, errs, version)
		_ = sum.Write(row)
		for _, l := range lines {
			_ = plans.Write(l)
		}
		fmt.Fprintf(os.Stderr, "   %-20s %s\n", cf.name, brief(row))
		if cf.strict && len(rs) > 0 && countAgree(rs) < int(math.Ceil(0.999*float64(len(rs)))) {
			fmt.Fprintf(os.Stderr, "   !! %s/%s %s: agreement %s below 99.9 %%\n", b.name, link, cf.name, row[12])
		}
		for _, e := range errs[:min(len(errs), 3)] {
			fmt.Fprintf(os.Stderr, "   !! %s\n", e)
		}
	}
	return nil
}

func countAgree(rs []result) int {
	n := 0
	for _, r := range rs {
		if r.agree {
			n++
		}
	}
	return n
}

// brief is a one-line digest of a summary row for the log.
func brief(row []string) string {
	return fmt.Sprintf("n=%s plan=%q (%s) agree=%s mean=%s p50=%s p95=%s ms errors=%s", row[6], row[7], row[8], row[12], row[17], row[18], row[19], row[27])
}

func summarize(o *options, b *benchModel, link string, cf config, rs []result, errs []string, version string) ([]string, [][]string) {
	type agg struct {
		n, agree int
		ms       float64
		clouds   map[string]int
	}
	byPlan := map[string]*agg{}
	byPlanCloud := map[[2]string]*agg{}
	fid := map[string]int{}
	var lat []float64
	var nodeSum, predSum, bytesSum, maxDiff float64
	agree, correct, fallbacks, local := 0, 0, 0, 0
	minLower := 1.0
	clouds := map[string]bool{}
	for _, r := range rs {
		a := byPlan[r.plan]
		if a == nil {
			a = &agg{}
			byPlan[r.plan] = a
		}
		a.n++
		key := [2]string{r.plan, r.cloud}
		ac := byPlanCloud[key]
		if ac == nil {
			ac = &agg{}
			byPlanCloud[key] = ac
		}
		ac.n++
		ac.ms += r.clientMS
		if r.agree {
			agree++
			ac.agree++
		}
		if r.correct {
			correct++
		}
		if r.fallback {
			fallbacks++
		}
		if r.cloud != "" {
			clouds[r.cloud] = true
		} else {
			local++
		}
		fid[r.fidelity]++
		lat = append(lat, r.clientMS)
		nodeSum += r.nodeMS
		predSum += r.predMS
		bytesSum += float64(r.bytes)
		maxDiff = math.Max(maxDiff, r.diff)
		minLower = math.Min(minLower, r.lower)
	}
	names := make([]string, 0, len(byPlan))
	for p := range byPlan {
		names = append(names, p)
	}
	sort.Slice(names, func(i, j int) bool {
		if byPlan[names[i]].n != byPlan[names[j]].n {
			return byPlan[names[i]].n > byPlan[names[j]].n
		}
		return names[i] < names[j]
	})
	var plansCol []string
	for _, p := range names {
		plansCol = append(plansCol, fmt.Sprintf("%s×%d", p, byPlan[p].n))
	}
	var fids []string
	for f, k := range fid {
		fids = append(fids, fmt.Sprintf("%s×%d", f, k))
	}
	sort.Strings(fids)
	var cl []string
	for c := range clouds {
		cl = append(cl, c)
	}
	sort.Strings(cl)
	n := len(rs)
	fn := float64(max(n, 1))
	top, share := "", 0.0
	if len(names) > 0 {
		top, share = names[0], float64(byPlan[names[0]].n)/fn
	}
	budget := ""
	if !math.IsNaN(cf.budget) {
		budget = ff(cf.budget)
	}
	// not_offloaded: requests of a cloud-only configuration that ran on
	// the edge all the same (both clouds banned, or a fallback).
	notOffloaded := ""
	if strings.HasPrefix(cf.name, "cloud-only") {
		notOffloaded = strconv.Itoa(local)
	}
	wilson := scheduler.Agreement{Agree: agree, Samples: n}.Lower(0.95)
	row := []string{b.name, link, o.device, cf.name, cf.query, budget, strconv.Itoa(n), top, fmt.Sprintf("%.3f", share),
		strings.Join(plansCol, "; "), strings.Join(cl, "+"), strconv.Itoa(agree), fmt.Sprintf("%.4f", float64(agree)/fn),
		fmt.Sprintf("%.4f", wilson), fmt.Sprintf("%.4f", float64(correct)/fn), fmt.Sprintf("%.4f", b.refAccuracy()),
		fmt.Sprintf("%.3g", maxDiff), fmt.Sprintf("%.2f", mean(lat)), fmt.Sprintf("%.2f", quantile(lat, 0.5)),
		fmt.Sprintf("%.2f", quantile(lat, 0.95)), fmt.Sprintf("%.2f", nodeSum/fn), fmt.Sprintf("%.2f", predSum/fn),
		fmt.Sprintf("%.0f", bytesSum/fn), strings.Join(fids, "; "), fmt.Sprintf("%.4f", minLower), strconv.Itoa(fallbacks),
		notOffloaded, strconv.Itoa(len(errs)), version, b.calDesc, b.testDesc}
	var lines [][]string
	for key, a := range byPlanCloud {
		lines = append(lines, []string{b.name, link, cf.name, key[0], key[1], strconv.Itoa(a.n), strconv.Itoa(a.agree), fmt.Sprintf("%.2f", a.ms/float64(a.n))})
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i][3]+lines[i][4] < lines[j][3]+lines[j][4] })
	return row, lines
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// quantile is the q-quantile of v (nearest rank).
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
