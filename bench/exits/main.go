// Command exits measures early exits under a latency SLO (issue 19.1): a
// multi-exit model (lenet-exits on MNIST, or resnet-exits on
// Fashion-MNIST) served by an in-process
// cluster — one slow edge behind an emulated link and one cloud, real
// gossip and QUIC — where every request carries a deadline and the edge's
// scheduler.EarlyExit picks exit, threshold and cut. Per deadline it runs
// the same held-out test images and records accuracy, the SLO hit rate
// (measured latency ≤ deadline), latency percentiles and where the answers
// came from; the baseline, the final exit alone under the node's auto
// policy, answers each image right after, under the same conditions. The exit table is calibrated on the first half of the
// MNIST test set, the requests are images of the second half.
//
//	go run ./bench/exits [-model M.onnx] [-device slowdown:1000] [-links lte,5g-midband] [-n 300]
//
// It writes docs/figures/exits-deadline-ARCH.csv and .png and, per request,
// bench/exits/results/requests-ARCH.csv. A missing model file is trained
// first (lenet-exits: 2 epochs; resnet-exits: 3; seed 1).
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/train"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec/calib"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"gorgonia.org/tensor"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "exits:", err)
		os.Exit(1)
	}
}

type config struct {
	arch, data                                   string
	model, device, link, deadlines, out, results string
	n, warmup, calib                             int
}

func run() error {
	var c config
	flag.StringVar(&c.arch, "arch", "lenet-exits", "multi-exit zoo architecture: lenet-exits or resnet-exits")
	flag.StringVar(&c.data, "dataset", "mnist", "labelled data set: mnist or fashion-mnist (test split: calibration, then requests)")
	flag.StringVar(&c.model, "model", "", "multi-exit ONNX model (default bench/out/ARCH-DATASET.onnx, trained when missing)")
	flag.StringVar(&c.device, "device", "slowdown:1000", "edge device profile (node.ParseDevice)")
	flag.StringVar(&c.link, "links", "lte,5g-midband", "comma-separated edge access link profiles (linkem): one cluster each")
	flag.StringVar(&c.deadlines, "deadlines", "25ms,30ms,35ms,40ms,50ms,60ms,80ms", "comma-separated deadlines")
	flag.IntVar(&c.n, "n", 500, "measured requests per deadline (images spread over the held-out half)")
	flag.IntVar(&c.warmup, "warmup", 20, "unmeasured requests before each deadline's")
	flag.IntVar(&c.calib, "calib", 5000, "MNIST test images (from the first) that calibrate the exits; requests use the rest")
	flag.StringVar(&c.out, "out", "docs/figures", "folder for exits-deadline-ARCH.csv and .png")
	flag.StringVar(&c.results, "results", "bench/exits/results", "folder for requests.csv")
	flag.Parse()
	if c.model == "" {
		c.model = fmt.Sprintf("bench/out/%s-%s.onnx", c.arch, c.data)
	}
	var deadlines []time.Duration
	for _, s := range strings.Split(c.deadlines, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			return fmt.Errorf("-deadlines: %q is not a positive duration", s)
		}
		deadlines = append(deadlines, d)
	}
	ctx := context.Background()
	g, sc, err := loadOrTrain(ctx, c)
	if err != nil {
		return err
	}
	data, err := dataset.Load(ctx, c.data, dataset.Options{})
	if err != nil {
		return err
	}
	test := data.Test
	if c.calib <= 0 || c.calib+c.n > test.Len() {
		return fmt.Errorf("-calib %d and -n %d do not fit the %d test images", c.calib, c.n, test.Len())
	}
	m, err := node.NewModel(c.arch, "", g, sc)
	if err != nil {
		return err
	}
	calIdx := make([]int, c.calib)
	for i := range calIdx {
		calIdx[i] = i
	}
	cal := test.Subset("calibration", calIdx)
	var src calib.Slice
	for i := 0; i < cal.Len(); i++ {
		src = append(src, []*tensor.Dense{image(cal, i)})
	}
	start := time.Now()
	tab, err := calib.Exits(ctx, calib.ExitsConfig{Graph: m.Graph, Inputs: src, Labels: cal.Labels,
		SourceName: fmt.Sprintf("%s:test[0:%d]", c.data, c.calib)})
	if err != nil {
		return err
	}
	fmt.Printf("exit calibration on %d held-out images (%.1f s):", c.calib, time.Since(start).Seconds())
	for _, e := range tab.Exits {
		fmt.Printf(" %s %.2f%%", e.Name, 100*float64(e.Correct)/float64(tab.Samples))
	}
	fmt.Println()
	table := scheduler.NewCalibration(m.ID, m.Version, m.Nodes(), scheduler.CalibrationData{Source: tab.Source, Samples: tab.Samples}, time.Now())
	table.Exits = tab
	if err := m.SetCalibration(table); err != nil {
		return err
	}
	dev, err := node.ParseDevice(c.device)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.results, 0o755); err != nil {
		return err
	}
	rf, err := os.Create(filepath.Join(c.results, "requests-"+c.arch+".csv"))
	if err != nil {
		return err
	}
	defer rf.Close()
	rw := csv.NewWriter(rf)
	_ = rw.Write([]string{"link", "mode", "deadline_ms", "image", "label", "class", "correct", "exit", "terminal", "early_exits", "threshold",
		"confidence", "on_edge", "cut", "cloud", "bytes_sent", "predicted_ms", "expected_ms", "planned_accuracy", "meets", "total_ms", "within"})
	var rows []summary
	for _, link := range strings.Split(c.link, ",") {
		r, err := runLink(ctx, m, dev, strings.TrimSpace(link), test, c, deadlines, rw)
		if err != nil {
			return err
		}
		rows = append(rows, r...)
	}
	rw.Flush()
	if err := rw.Error(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	if err := writeSummary(filepath.Join(c.out, "exits-deadline-"+c.arch+".csv"), rows, c); err != nil {
		return err
	}
	return plotCurves(filepath.Join(c.out, "exits-deadline-"+c.arch+".png"), rows, c)
}

// runLink starts a cluster whose edge sits behind link and measures every
// deadline there, then the baseline.
func runLink(ctx context.Context, m *node.Model, dev node.Device, link string, test *dataset.Set, c config, deadlines []time.Duration, rw *csv.Writer) ([]summary, error) {
	prof, err := linkem.LookupProfile(link)
	if err != nil {
		return nil, err
	}
	lc, err := cluster.Start(ctx, cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, EdgeDevice: dev,
		Uplink: prof.Up, Downlink: prof.Down, Codecs: []string{"lossless"},
		GossipKey: []byte("0123456789abcdef"), Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		Tune: func(nc *node.Config) { nc.ProfileRuns = 15 },
	})
	if err != nil {
		return nil, err
	}
	defer lc.Kill()
	edge := lc.Edges[0]
	fmt.Printf("cluster: edge %s (%s) behind %s, cloud %s; host load average %s\n", edge.Name(), dev.Name, link, lc.Clouds[0].Name(), loadAvg())
	defer func() { fmt.Printf("%s done; host load average %s\n", link, loadAvg()) }()
	var rows []summary
	for _, d := range deadlines {
		s, b, err := measure(ctx, edge, test, c, link, d, rw)
		if err != nil {
			return nil, err
		}
		rows = append(rows, s, b)
		fmt.Printf("%s deadline %6.1f ms: early exits accuracy %.2f%% (planned %.2f%%) SLO hit %.2f%% (plans meeting it %.0f%%) p50 %.1f ms p99 %.1f ms on edge %.0f%% exits %s | final exit alone: accuracy %.2f%% hit %.2f%% p99 %.1f ms\n",
			link, ms(d), 100*s.accuracy, 100*s.planned, 100*s.hit, 100*s.meets, s.p50, s.p99, 100*s.onEdge, shares(s.exitShares), 100*b.accuracy, 100*b.hit, b.p99)
	}
	return rows, nil
}

// loadAvg is the host's 1, 5 and 15 minute load averages (Linux), for the
// record: the edge's device emulation shares the host's cores.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func shares(m map[string]float64) string {
	var parts []string
	for _, k := range []string{zoo.Exit1Name, zoo.Exit2Name, zoo.ProbsName} {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", k, 100*m[k]))
	}
	return strings.Join(parts, " ")
}

// loadOrTrain reads the model at c.model, or trains c.arch on c.data there
// (as `edgesplit train --arch ARCH --dataset DATA --epochs E --seed 1`).
func loadOrTrain(ctx context.Context, c config) (*model.Graph, *dataset.Sidecar, error) {
	path := c.model
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		epochs := 2
		if c.arch == "resnet-exits" {
			epochs = 3
		}
		fmt.Printf("training %s on %s (%d epochs, seed 1) into %s\n", c.arch, c.data, epochs, path)
		res, err := train.Run(ctx, train.Config{Arch: c.arch, Dataset: c.data, Epochs: epochs, Seed: 1, LRDecay: 0.3})
		if err != nil {
			return nil, nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, nil, err
		}
		if err := train.Export(path, res.Graph, res.Sidecar); err != nil {
			return nil, nil, err
		}
	}
	return zoo.Load(path)
}

// image is test image i as a 1×C×H×W tensor.
func image(s *dataset.Set, i int) *tensor.Dense {
	return tensor.New(tensor.WithShape(1, s.C, s.H, s.W), tensor.WithBacking(slices.Clone(s.Image(i))))
}

// summary is one deadline × mode.
type summary struct {
	link, mode string
	deadline   time.Duration
	n          int
	accuracy   float64 // measured on the requests
	planned    float64 // the plans' calibrated accuracy, mean
	hit        float64 // share with total ≤ deadline
	meets      float64 // share of plans predicted within the deadline
	p50, p99   float64 // ms
	mean       float64 // ms
	onEdge     float64 // share answered on the edge
	bytes      float64 // mean bytes sent
	exitShares map[string]float64
	totals     []float64 // ms, for rescoring
	correct    int
}

// rescore scores a deadline-free run against deadline d.
func (s summary) rescore(d time.Duration) summary {
	r := s
	r.deadline = d
	within := 0
	for _, t := range s.totals {
		if t <= ms(d) {
			within++
		}
	}
	r.hit = float64(within) / float64(len(s.totals))
	return r
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// measure runs c.warmup then c.n images, each twice in a row: with
// deadline d (the early-exit planner) and on the ordinary path (the final
// exit under the node's auto policy, no deadline), so that both see the
// same host and link; the baseline's latencies are scored against d.
func measure(ctx context.Context, edge *node.Node, test *dataset.Set, c config, link string, d time.Duration, w *csv.Writer) (early, base summary, err error) {
	ea := newTally(link, "early exits", d)
	ba := newTally(link, "final exit, auto", d)
	// The measured images are spread evenly over the held-out part; the
	// warm-up ones sit between them.
	held := test.Len() - c.calib
	stride := max(1, held/c.n)
	for i := -c.warmup; i < c.n; i++ {
		idx := c.calib + i*stride
		if i < 0 {
			idx = c.calib + (i+c.warmup)*stride + stride/2
		}
		for _, t := range []*tally{ea, ba} {
			req := node.InferRequest{Inputs: []*tensor.Dense{image(test, idx)}}
			if t == ea {
				req.Deadline = d
			}
			res, err := edge.Infer(ctx, req)
			if err != nil {
				return early, base, fmt.Errorf("%s, deadline %v, image %d: %w", t.s.mode, d, idx, err)
			}
			if i >= 0 {
				t.add(res, idx, test.Labels[idx], w)
			}
		}
	}
	return ea.finish(), ba.finish(), nil
}

// tally accumulates one mode's answers at one deadline.
type tally struct {
	s              summary
	edgeN, meets   int
	bytes, planned float64
}

func newTally(link, mode string, d time.Duration) *tally {
	return &tally{s: summary{link: link, mode: mode, deadline: d, exitShares: map[string]float64{}}}
}

func (t *tally) add(res *node.InferResult, idx, label int, w *csv.Writer) {
	s := &t.s
	d := s.deadline
	total := ms(res.Measured.Total)
	s.totals = append(s.totals, total)
	ok := res.Class == label
	if ok {
		s.correct++
	}
	exitName, terminal, early, th, conf, onEdge, exp, pacc, met := zoo.ProbsName, zoo.ProbsName, 0, 0.0, res.Score, res.Cloud == "", ms(res.Predicted), math.NaN(), true
	if e := res.Exit; e != nil {
		exitName, terminal, early, th, conf, onEdge, exp, pacc, met = e.Name, e.Terminal, e.Early, e.Threshold, e.Confidence, e.OnEdge, e.ExpectedMS, e.ExpectedAccuracy, e.Meets
		t.planned += e.ExpectedAccuracy
	}
	if met {
		t.meets++
	}
	s.exitShares[exitName]++
	if onEdge {
		t.edgeN++
	}
	t.bytes += float64(res.BytesSent)
	within := total <= ms(d)
	_ = w.Write([]string{s.link, s.mode, f(ms(d)), strconv.Itoa(idx), strconv.Itoa(label), strconv.Itoa(res.Class), strconv.FormatBool(ok),
		exitName, terminal, strconv.Itoa(early), f(th), f(float64(conf)), strconv.FormatBool(onEdge), strconv.Itoa(res.Cut), res.Cloud,
		strconv.FormatInt(res.BytesSent, 10), f(ms(res.Predicted)), f(exp), f(pacc), strconv.FormatBool(met), f(total), strconv.FormatBool(within)})
}

func (t *tally) finish() summary {
	s := t.s
	n := float64(len(s.totals))
	s.n = len(s.totals)
	s.accuracy = float64(s.correct) / n
	s.planned = t.planned / n
	s.meets = float64(t.meets) / n
	s.onEdge = float64(t.edgeN) / n
	s.bytes = t.bytes / n
	for k := range s.exitShares {
		s.exitShares[k] /= n
	}
	sorted := slices.Clone(s.totals)
	slices.Sort(sorted)
	s.p50 = quantile(sorted, 0.5)
	s.p99 = quantile(sorted, 0.99)
	var sum float64
	for _, x := range sorted {
		sum += x
	}
	s.mean = sum / n
	return s.rescore(s.deadline)
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func f(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

func writeSummary(path string, rows []summary, c config) error {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	defer file.Close()
	w := csv.NewWriter(file)
	_ = w.Write([]string{"link", "mode", "deadline_ms", "requests", "accuracy", "planned_accuracy", "slo_hit", "planned_within", "p50_ms", "p99_ms", "mean_ms",
		"on_edge", "bytes_per_request", "share_exit1", "share_exit2", "share_probs", "device"})
	for _, r := range rows {
		_ = w.Write([]string{r.link, r.mode, f(ms(r.deadline)), strconv.Itoa(r.n), f(r.accuracy), f(r.planned), f(r.hit), f(r.meets), f(r.p50), f(r.p99), f(r.mean),
			f(r.onEdge), f(r.bytes), f(r.exitShares[zoo.Exit1Name]), f(r.exitShares[zoo.Exit2Name]), f(r.exitShares[zoo.ProbsName]), c.device})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return file.Close()
}
