// Command schedq measures the scheduler's quality on the emulated in-process
// cluster (issue 6, Must-show 2 and 3).
//
// For each model and link profile it forces every single-tensor cut (policy
// fixed:K, best codec) to find the measured oracle, runs the auto policy,
// and reports measured(auto) ÷ min measured over cuts, the cost model's
// prediction error, and the speed-up over edge-only and cloud-only. Auto and
// every cut run once per round, in interleaved rounds (-reps), so that the
// shared machine's changing load hits them alike.
//
// With -adapt it streams requests from concurrent clients, drops the
// emulated uplink (-drop) and reports when the plan changed, samples the
// scheduler's inputs every 100 ms (uplink estimate, cloud ban) to say why,
// counts plan changes on the steady links, and restores the link (-recover).
//
//	go run ./bench/schedq -models resnet18,mobilenetv2,seed-cnn-trained -links wifi,5g-midband,lte,3g -tag small
//	go run ./bench/schedq -models vgg16 -max-cuts 12 -reps 1 -auto-reps 2 -tag vgg16
//	go run ./bench/schedq -quality=false -adapt -drop 3g -tag resnet18-3g
//
// Results go to CSV files in -out (docs/figures) and markdown tables on
// stdout.
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/internal/stats"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"github.com/schollz/progressbar/v3"
	"gorgonia.org/tensor"
)

type config struct {
	models, links     []string
	device            string
	clouds            int
	reps, autoReps    int
	autoWarmup        int
	maxCuts           int
	out, tag          string
	quality, adapt    bool
	adaptModel        string
	adaptFrom         string
	steady, afterDrop time.Duration
	settle            time.Duration
	recover           time.Duration
	clients           int
	verbose           bool
	drop              string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "schedq:", err)
		os.Exit(1)
	}
}

func run() error {
	var c config
	models := flag.String("models", "vgg16,resnet18,mobilenetv2,seed-cnn-trained", "models (zoo names; seed-cnn-trained is the embedded trained MNIST CNN)")
	links := flag.String("links", "wifi,5g-midband,lte,3g", "link profiles (linkem names)")
	flag.StringVar(&c.device, "device", "raspberry-pi-4", "edge device profile (or slowdown:F)")
	flag.IntVar(&c.clouds, "clouds", 1, "cloud nodes")
	flag.IntVar(&c.reps, "reps", 2, "requests per forced cut (median kept)")
	flag.IntVar(&c.autoReps, "auto-reps", 3, "auto-policy requests per link (median kept)")
	flag.IntVar(&c.autoWarmup, "auto-warmup", 3, "auto-policy requests after each link change before measuring (its hysteresis switches plans after 3 consistent predictions, so the sweep measures auto settled on the link, as it measures the forced cuts)")
	flag.IntVar(&c.maxCuts, "max-cuts", 0, "measure only the cuts the cost model ranks best (plus edge-only and cloud-only); 0 = every single-tensor cut")
	flag.StringVar(&c.out, "out", "docs/figures", "folder for the CSV files")
	flag.StringVar(&c.tag, "tag", "", "suffix for the CSV file names (schedq-TAG.csv), to keep runs apart")
	flag.BoolVar(&c.quality, "quality", true, "run the scheduler-quality sweep")
	flag.BoolVar(&c.adapt, "adapt", false, "run the adaptation test (uplink drop under a stream, flapping count)")
	flag.StringVar(&c.adaptModel, "adapt-model", "resnet18", "model of the adaptation test")
	flag.StringVar(&c.adaptFrom, "adapt-from", "wifi", "link before the drop (the drop is to 0.5 Mbit/s up, 2 down, 40 ms, the demo's mmWave blockage)")
	flag.DurationVar(&c.steady, "steady", 20*time.Second, "adaptation: steady period before the drop")
	flag.DurationVar(&c.afterDrop, "after-drop", 20*time.Second, "adaptation: period after the drop")
	flag.DurationVar(&c.recover, "recover", 15*time.Second, "adaptation: period after restoring the first link (0: no restore)")
	flag.StringVar(&c.drop, "drop", "blockage", "adaptation: the link dropped to: blockage (0.5 Mbit/s up, 2 down, 20 ms each way, the demo's mmWave blockage) or a linkem profile")
	flag.DurationVar(&c.settle, "settle", 3500*time.Millisecond, "quality: wait after each link change before measuring, so the edge's RTT estimate (the least of its last 6 pings, one per 500 ms) is of the new link; the sweep measures steady links (-adapt measures the change)")
	flag.BoolVar(&c.verbose, "v", false, "log the nodes' warnings to stderr")
	flag.IntVar(&c.clients, "clients", 2, "adaptation: concurrent request streams")
	flag.Parse()
	c.models, c.links = split(*models), split(*links)
	if c.reps < 1 || c.autoReps < 1 || c.autoWarmup < 1 || c.clouds < 1 || c.maxCuts < 0 {
		return errors.New("-reps, -auto-reps and -clouds must be ≥ 1, -max-cuts ≥ 0")
	}
	for _, l := range c.links {
		if _, err := linkem.LookupProfile(l); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if c.quality {
		if err := quality(ctx, &c); err != nil {
			return err
		}
	}
	if c.adapt {
		if err := adaptation(ctx, &c); err != nil {
			return err
		}
	}
	return nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func loadModel(name string) (*node.Model, error) {
	g, sc, err := zoo.Load(name)
	if err != nil {
		return nil, err
	}
	return node.NewModel(name, "", g, sc)
}

func startCluster(ctx context.Context, m *node.Model, c *config, link string) (*cluster.Local, error) {
	dev, err := node.ParseDevice(c.device)
	if err != nil {
		return nil, err
	}
	server, _ := node.ParseDevice("server")
	prof, err := linkem.LookupProfile(link)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	lc, err := cluster.Start(ctx, cluster.Config{
		Edges: 1, Clouds: c.clouds, Models: []*node.Model{m}, EdgeDevice: dev, CloudDevice: server,
		Uplink: prof.Up, Downlink: prof.Down, Policy: "auto",
		Logger: logger(c.verbose),
		Tune:   func(nc *node.Config) { nc.ProfileRuns = 3 },
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "%s: cluster (1 edge %s ×%g, %d cloud) up in %v\n", m.ID, dev.Name, dev.Slowdown, c.clouds, time.Since(t0).Round(time.Millisecond))
	return lc, nil
}

// inputFn makes random inputs of the model's input shape.
func inputFn(m *node.Model) func() []*tensor.Dense {
	rng := rand.New(rand.NewPCG(42, 7))
	shape := slices.Clone(m.Graph.Inputs[0].Shape)
	n := 1
	for i, d := range shape {
		if d <= 0 {
			shape[i] = 1
		}
		n *= shape[i]
	}
	return func() []*tensor.Dense {
		data := make([]float32, n)
		for i := range data {
			data[i] = rng.Float32()
		}
		return []*tensor.Dense{tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))}
	}
}

// meas is the outcome of a few requests with one policy.
type meas struct {
	policy         string
	cut            int
	codec          string
	measured, pred time.Duration // medians
	samples, preds []time.Duration
	errs           []float64 // |pred − measured| ÷ measured, per request
	absErrs        []float64 // |pred − measured| in ms, per request
	plans          []string
	fallbacks      int
}

func measure(ctx context.Context, edge *node.Node, input func() []*tensor.Dense, policy string, reps int) (meas, error) {
	r := meas{policy: policy}
	for range reps {
		if err := r.once(ctx, edge, input); err != nil {
			return r, err
		}
	}
	return r, nil
}

// once runs one request with r's policy and folds it in.
func (r *meas) once(ctx context.Context, edge *node.Node, input func() []*tensor.Dense) error {
	res, err := edge.Infer(ctx, node.InferRequest{Inputs: input(), Policy: r.policy})
	if err != nil {
		return fmt.Errorf("%s: %w", r.policy, err)
	}
	if res.Fallback != "" {
		r.fallbacks++
	}
	r.samples = append(r.samples, res.Measured.Total)
	r.preds = append(r.preds, res.Predicted)
	r.errs = append(r.errs, math.Abs(float64(res.Predicted-res.Measured.Total))/float64(res.Measured.Total))
	r.absErrs = append(r.absErrs, math.Abs(msf(res.Predicted-res.Measured.Total)))
	r.cut, r.codec = res.Cut, res.Codec
	r.plans = append(r.plans, fmt.Sprintf("%d/%s", res.Cut, res.Codec))
	r.measured, r.pred = stats.Median(r.samples), stats.Median(r.preds)
	return nil
}

func msf(d time.Duration) float64 { return float64(d) / 1e6 }

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// candidateCuts lists the single-tensor prefix cuts (0 and n included),
// ranked by the cost model's best prediction over codecs; maxCuts > 0 keeps
// only the best ones (plus 0 and n).
func candidateCuts(ctx context.Context, edge *node.Node, id string, maxCuts int) (cuts []int, total int, err error) {
	in, err := edge.Inputs(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	ex, err := scheduler.Explain(scheduler.Neurosurgeon{}, in)
	if err != nil {
		return nil, 0, err
	}
	n := len(in.Edge.Nodes)
	best := map[int]time.Duration{}
	for _, r := range ex.Rows {
		if r.K < 0 {
			continue
		}
		if r.K != 0 && r.K != n && len(r.Boundary) != 1 {
			continue
		}
		if b, ok := best[r.K]; !ok || r.Predicted.Total < b {
			best[r.K] = r.Predicted.Total
		}
	}
	for k := range best {
		cuts = append(cuts, k)
	}
	total = len(cuts)
	slices.SortFunc(cuts, func(a, b int) int { return int(best[a] - best[b]) })
	if maxCuts > 0 && len(cuts) > maxCuts {
		keep := slices.Clone(cuts[:maxCuts])
		for _, k := range []int{0, n} {
			if !slices.Contains(keep, k) {
				keep = append(keep, k)
			}
		}
		cuts = keep
	}
	slices.Sort(cuts)
	return cuts, total, nil
}

type qrow struct {
	model, link             string
	auto                    meas
	oracle                  meas
	edgeOnly, cloudOnly     meas
	cutsMeasured, cutsTotal int
	allErrs, allAbs         []float64
	autoForced              meas // auto's final plan as forced in the same rounds (empty for a non-prefix plan)
}

func quality(ctx context.Context, c *config) error {
	f, err := os.Create(filepath.Join(c.out, c.file("schedq-requests")))
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"model", "link", "policy", "cut", "codec", "reps", "measured_ms", "predicted_ms", "mean_pred_err", "fallbacks"})
	var rows []qrow
	for _, name := range c.models {
		m, err := loadModel(name)
		if err != nil {
			return err
		}
		lc, err := startCluster(ctx, m, c, c.links[0])
		if err != nil {
			return err
		}
		edge := lc.Edges[0]
		input := inputFn(m)
		for _, link := range c.links {
			prof, _ := linkem.LookupProfile(link)
			if err := edge.SetLink(prof.Up, prof.Down); err != nil {
				lc.Kill()
				return err
			}
			t0 := time.Now()
			// Warm-up: the edge's link estimator learns the new link from
			// real transfers (cloud-only sends the input) and pings, then
			// auto settles.
			if _, err := measure(ctx, edge, input, "cloud-only", 2); err != nil {
				lc.Kill()
				return err
			}
			select {
			case <-time.After(c.settle):
			case <-ctx.Done():
				lc.Kill()
				return ctx.Err()
			}
			if _, err := measure(ctx, edge, input, "auto", c.autoWarmup); err != nil {
				lc.Kill()
				return err
			}
			cuts, total, err := candidateCuts(ctx, edge, name, c.maxCuts)
			if err != nil {
				lc.Kill()
				return err
			}
			n := m.Nodes()
			q := qrow{model: name, link: link, cutsMeasured: len(cuts), cutsTotal: total}
			pb := progressbar.NewOptions(len(cuts)+2, progressbar.OptionSetDescription(name+" "+link), progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
			record := func(r meas) {
				w.Write([]string{name, link, r.policy, strconv.Itoa(r.cut), r.codec, strconv.Itoa(len(r.errs)), ff(msf(r.measured)), ff(msf(r.pred)), ff(mean(r.errs)), strconv.Itoa(r.fallbacks)})
				w.Flush()
			}
			// Interleaved rounds: auto and every cut once per round, so a
			// change in machine load hits all of them alike.
			q.auto = meas{policy: "auto"}
			forced := make([]meas, len(cuts))
			for i, k := range cuts {
				forced[i].policy = "fixed:" + strconv.Itoa(k)
				switch k {
				case 0:
					forced[i].policy = "cloud-only"
				case n:
					forced[i].policy = "edge-only"
				}
			}
			rounds := c.reps
			pb.ChangeMax(rounds * (len(cuts) + 1))
			for round := 0; round < rounds; round++ {
				rs := time.Now()
				if err := q.auto.once(ctx, edge, input); err != nil {
					lc.Kill()
					return err
				}
				pb.Add(1)
				for i := range forced {
					j := (i + round) % len(forced) // rotate the order
					if err := forced[j].once(ctx, edge, input); err != nil {
						lc.Kill()
						return err
					}
					pb.Add(1)
				}
				if round == 0 && time.Since(rs) < 2*time.Second && rounds < 7 {
					rounds = 7 // a cheap model: more rounds against timer noise
					pb.ChangeMax(rounds * (len(cuts) + 1))
				}
			}
			for extra := 0; extra < c.autoReps-1; extra++ { // auto's plan settles across rounds; a few more samples
				if err := q.auto.once(ctx, edge, input); err != nil {
					lc.Kill()
					return err
				}
			}
			record(q.auto)
			q.oracle.measured = math.MaxInt64
			for i, k := range cuts {
				r := forced[i]
				record(r)
				q.allErrs = append(q.allErrs, r.errs...)
				q.allAbs = append(q.allAbs, r.absErrs...)
				if r.measured < q.oracle.measured {
					q.oracle = r
				}
				if k == 0 {
					q.cloudOnly = r
				}
				if k == n {
					q.edgeOnly = r
				}
				// auto's plan forced as a cut, measured in the same rounds.
				if q.auto.cut == r.cut && q.auto.codec == r.codec {
					q.autoForced = r
				}
			}
			pb.Finish()
			rows = append(rows, q)
			fmt.Fprintf(os.Stderr, "%s %s: auto %s %.1f ms, oracle %s %.1f ms, ratio %.3f (%d/%d cuts, %v)\n", name, link,
				strings.Join(q.auto.plans, ","), msf(q.auto.measured), q.oracle.policy, msf(q.oracle.measured),
				float64(q.auto.measured)/float64(q.oracle.measured), len(cuts), total, time.Since(t0).Round(time.Second))
		}
		lc.Kill()
	}
	w.Flush()
	return writeQuality(c, rows)
}

func writeQuality(c *config, rows []qrow) error {
	f, err := os.Create(filepath.Join(c.out, c.file("schedq")))
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"model", "link", "auto_plans", "auto_ms", "oracle_policy", "oracle_ms", "auto_over_oracle", "auto_plan_forced_ms", "auto_plan_forced_over_oracle", "pred_err_auto", "pred_err_all", "abs_err_auto_ms", "abs_err_all_ms",
		"edge_only_ms", "cloud_only_ms", "speedup_vs_edge", "speedup_vs_cloud", "cuts_measured", "cuts_total"})
	fmt.Printf("\nScheduler quality on the emulated cluster (edge %s, %d cloud, server = this machine)\n\n", c.device, c.clouds)
	fmt.Println("| model | link | auto plan (cut/codec) | auto ms | oracle (cut) | oracle ms | auto ÷ oracle | auto's cut forced ÷ oracle | pred. err (auto) | pred. err (all cuts) | abs err auto / all (ms) | vs edge-only | vs cloud-only | cuts measured |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	var ratios, ratiosF, errAuto, errAll, spE, spC []float64
	for _, q := range rows {
		ratio := float64(q.auto.measured) / float64(q.oracle.measured)
		se := float64(q.edgeOnly.measured) / float64(q.auto.measured)
		sc := float64(q.cloudOnly.measured) / float64(q.auto.measured)
		ea, eall := mean(q.auto.errs), mean(q.allErrs)
		rf := math.NaN()
		if len(q.autoForced.samples) > 0 {
			rf = float64(q.autoForced.measured) / float64(q.oracle.measured)
			ratiosF = append(ratiosF, rf)
		}
		ratios, errAuto, errAll, spE = append(ratios, ratio), append(errAuto, ea), append(errAll, eall), append(spE, se)
		scCell := "–" // cloud-only not measured (no cloud available: banned, say)
		if q.cloudOnly.measured > 0 {
			spC = append(spC, sc)
			scCell = fmt.Sprintf("%.2f×", sc)
		} else {
			sc = math.NaN()
		}
		plans := uniq(q.auto.plans)
		oracle := fmt.Sprintf("%s (%d/%s)", q.oracle.policy, q.oracle.cut, q.oracle.codec)
		fmt.Printf("| %s | %s | %s | %.1f | %s | %.1f | %.3f | %.3f | %.1f %% | %.1f %% | %.1f / %.1f | %.2f× | %s | %d/%d |\n", q.model, q.link, plans, msf(q.auto.measured), oracle,
			msf(q.oracle.measured), ratio, rf, 100*ea, 100*eall, mean(q.auto.absErrs), mean(q.allAbs), se, scCell, q.cutsMeasured, q.cutsTotal)
		w.Write([]string{q.model, q.link, plans, ff(msf(q.auto.measured)), q.oracle.policy, ff(msf(q.oracle.measured)), ff(ratio), ff(msf(q.autoForced.measured)), ff(rf), ff(ea), ff(eall), ff(mean(q.auto.absErrs)), ff(mean(q.allAbs)),
			ff(msf(q.edgeOnly.measured)), ff(msf(q.cloudOnly.measured)), ff(se), ff(sc), strconv.Itoa(q.cutsMeasured), strconv.Itoa(q.cutsTotal)})
	}
	fmt.Printf("| **mean** | | | | | | **%.3f** | **%.3f** | **%.1f %%** | **%.1f %%** | | **%.2f×** | **%.2f×** | |\n",
		mean(ratios), mean(ratiosF), 100*mean(errAuto), 100*mean(errAll), geomean(spE), geomean(spC))
	fmt.Println("\n(auto and every cut ran once per round, rounds interleaved; medians over rounds. «auto's cut forced»: the plan auto ended on, forced with fixed:K in the same rounds. Speed-ups: geometric mean of edge-only ÷ auto and cloud-only ÷ auto)")
	w.Flush()
	return w.Error()
}

func uniq(ss []string) string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

func geomean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += math.Log(x)
	}
	return math.Exp(s / float64(len(v)))
}

func ff(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// event is one request of the adaptation stream.
type event struct {
	start, end time.Time
	plan       string // what ran (after any fallback)
	planned    string // what the scheduler chose: plan, or the plan before a fallback
	fallback   string
	measured   time.Duration
	client     int
}

// adaptation streams requests from c.clients concurrent clients, drops the
// uplink after c.steady and reports when the first request planned
// differently, and how often the plan changed on the steady links.
func adaptation(ctx context.Context, c *config) error {
	m, err := loadModel(c.adaptModel)
	if err != nil {
		return err
	}
	lc, err := startCluster(ctx, m, c, c.adaptFrom)
	if err != nil {
		return err
	}
	defer lc.Kill()
	edge := lc.Edges[0]
	input := inputFn(m)
	var inputMu sync.Mutex
	next := func() []*tensor.Dense { inputMu.Lock(); defer inputMu.Unlock(); return input() }
	// Warm-up on the first link.
	for range 3 {
		if _, err := edge.Infer(ctx, node.InferRequest{Inputs: next()}); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	var evs []event
	begin := time.Now()
	end := begin.Add(c.steady + c.afterDrop + c.recover)
	var wg sync.WaitGroup
	errc := make(chan error, c.clients)
	for cl := range c.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				s := time.Now()
				res, err := edge.Infer(ctx, node.InferRequest{Inputs: next()})
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				ran := fmt.Sprintf("%d/%s", res.Cut, res.Codec)
				planned := ran
				if res.Fallback != "" {
					planned = "fallback" // the scheduler's choice failed; not a plan change
				}
				evs = append(evs, event{s, time.Now(), ran, planned, res.Fallback, res.Measured.Total, cl})
				mu.Unlock()
			}
		}()
	}
	// Sample the scheduler's inputs: the uplink estimate and whether the
	// cloud is banned, to tell a plan change driven by the estimate from one
	// forced by a failed request.
	type sampleT struct {
		t        time.Duration
		upMbps   float64
		rtt      time.Duration
		banned   bool
		bestPlan string
	}
	var samples []sampleT
	sampDone := make(chan struct{})
	go func() {
		defer close(sampDone)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for time.Now().Before(end) {
			<-tk.C
			in, err := edge.Inputs(ctx, m.ID)
			if err != nil || len(in.Clouds) == 0 {
				continue
			}
			sm := sampleT{t: time.Since(begin), upMbps: in.Clouds[0].Link.Up * 8 / 1e6, rtt: in.Clouds[0].Link.RTT, banned: in.Clouds[0].Unavailable}
			if p, err := scheduler.NewAuto(scheduler.AutoConfig{Consecutive: 1}).Best(in); err == nil {
				sm.bestPlan = fmt.Sprintf("%d/%s", p.K, p.Codec)
			}
			mu.Lock()
			samples = append(samples, sm)
			mu.Unlock()
		}
	}()
	time.Sleep(c.steady)
	drop := linkem.LinkSettings{Rate: 0.5e6, Delay: 20 * time.Millisecond}
	dropDown := linkem.LinkSettings{Rate: 2e6, Delay: 20 * time.Millisecond}
	if c.drop != "blockage" {
		p, err := linkem.LookupProfile(c.drop)
		if err != nil {
			return err
		}
		drop, dropDown = p.Up, p.Down
	}
	tDrop := time.Now()
	if err := edge.SetLink(drop, dropDown); err != nil {
		return err
	}
	var tRecover time.Time
	if c.recover > 0 {
		time.Sleep(c.afterDrop)
		from, _ := linkem.LookupProfile(c.adaptFrom)
		tRecover = time.Now()
		if err := edge.SetLink(from.Up, from.Down); err != nil {
			return err
		}
	}
	wg.Wait()
	<-sampDone
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	slices.SortFunc(evs, func(a, b event) int { return a.start.Compare(b.start) })
	f, err := os.Create(filepath.Join(c.out, c.file("schedq-adapt")))
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"start_s", "end_s", "client", "plan", "fallback", "measured_ms", "phase"})
	var before, after, recovered []event
	for _, e := range evs {
		w.Write([]string{ff(e.start.Sub(begin).Seconds()), ff(e.end.Sub(begin).Seconds()), strconv.Itoa(e.client), e.plan, e.fallback, ff(msf(e.measured)), phaseOf(e.start, tDrop, tRecover)})
		switch {
		case e.start.Before(tDrop):
			before = append(before, e)
		case tRecover.IsZero() || e.start.Before(tRecover):
			after = append(after, e)
		default:
			recovered = append(recovered, e)
		}
	}
	w.Flush()
	changes := func(es []event) int { // plan changes, fallbacks skipped
		n, last := 0, ""
		for _, e := range es {
			if e.fallback != "" {
				continue
			}
			if last != "" && e.plan != last {
				n++
			}
			last = e.plan
		}
		return n
	}
	fallbacks := func(es []event) int {
		n := 0
		for _, e := range es {
			if e.fallback != "" {
				n++
			}
		}
		return n
	}
	steadyPlan := "-"
	for _, e := range before {
		if e.fallback == "" {
			steadyPlan = e.plan
		}
	}
	fmt.Printf("\nAdaptation: %s, edge %s, %d concurrent clients; %s for %v, then %s (up %.1f Mbit/s, down %.1f, one-way %v) for %v\n\n",
		c.adaptModel, c.device, c.clients, c.adaptFrom, c.steady, c.drop, drop.MeanRate()/1e6, dropDown.MeanRate()/1e6, drop.Delay, c.afterDrop)
	fmt.Printf("| requests before drop | plan changes before drop | plan before drop | first new plan (no fallback) | its request started after drop | first answer after drop finished after | requests after drop | fallbacks after drop | plan changes after the switch |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
	newPlan, tChange, idx := "none", time.Duration(-1), -1
	for i, e := range after {
		if e.fallback == "" && e.plan != steadyPlan {
			newPlan, tChange, idx = e.plan, e.start.Sub(tDrop), i
			break
		}
	}
	var firstDone time.Duration = -1
	for _, e := range evs {
		if e.end.After(tDrop) && (firstDone < 0 || e.end.Sub(tDrop) < firstDone) {
			firstDone = e.end.Sub(tDrop)
		}
	}
	flaps := 0
	if idx >= 0 {
		flaps = changes(after[idx:])
	}
	tc := "never"
	if tChange >= 0 {
		tc = tChange.Round(time.Millisecond).String()
	}
	fmt.Printf("| %d | %d | %s | %s | %s | %v | %d | %d | %d |\n", len(before), changes(before), steadyPlan, newPlan, tc, firstDone.Round(time.Millisecond), len(after), fallbacks(after), flaps)
	dropAt, recAt := tDrop.Sub(begin), time.Duration(0)
	if !tRecover.IsZero() {
		recAt = tRecover.Sub(begin)
	}
	firstAfter := func(from time.Duration, cond func(sampleT) bool) string {
		for _, sm := range samples {
			if sm.t >= from && (recAt == 0 || from >= recAt || sm.t < recAt) && cond(sm) {
				return (sm.t - from).Round(100 * time.Millisecond).String()
			}
		}
		return "never"
	}
	fmt.Printf("\nScheduler inputs sampled every 100 ms: after the drop the uplink estimate fell below 2 Mbit/s after %s, the cloud was banned after %s, the best plan on the current inputs (no hysteresis) changed after %s\n",
		firstAfter(dropAt, func(sm sampleT) bool { return sm.upMbps < 2 }), firstAfter(dropAt, func(sm sampleT) bool { return sm.banned }),
		firstAfter(dropAt, func(sm sampleT) bool {
			return sm.bestPlan != "" && !strings.HasPrefix(steadyPlan, strings.SplitN(sm.bestPlan, "/", 2)[0]+"/")
		}))
	if recAt > 0 {
		fmt.Printf("after the restore the uplink estimate rose above 5 Mbit/s after %s; the ban ended after %s\n",
			firstAfter(recAt, func(sm sampleT) bool { return sm.upMbps > 5 }), firstAfter(recAt, func(sm sampleT) bool { return !sm.banned }))
	}
	if sf, err := os.Create(filepath.Join(c.out, c.file("schedq-adapt-inputs"))); err == nil {
		sw := csv.NewWriter(sf)
		sw.Write([]string{"t_s", "up_mbps_estimate", "rtt_ms_estimate", "cloud_banned", "best_plan_now"})
		for _, sm := range samples {
			sw.Write([]string{ff(sm.t.Seconds()), ff(sm.upMbps), ff(msf(sm.rtt)), strconv.FormatBool(sm.banned), sm.bestPlan})
		}
		sw.Flush()
		sf.Close()
	}
	if !tRecover.IsZero() {
		back := "never"
		for _, e := range recovered {
			if e.fallback == "" && e.plan == steadyPlan {
				back = e.start.Sub(tRecover).Round(time.Millisecond).String()
				break
			}
		}
		var plans []string
		for _, e := range recovered {
			plans = append(plans, e.plan)
		}
		fmt.Printf("\nAfter restoring %s for %v: %d requests (%d fallbacks), plans %s; back to %s after %s; plan changes %d\n",
			c.adaptFrom, c.recover, len(recovered), fallbacks(recovered), uniq(plans), steadyPlan, back, changes(recovered))
	}
	return w.Error()
}

// file names a CSV file, with the run's tag.
func (c *config) file(base string) string {
	if c.tag != "" {
		return base + "-" + c.tag + ".csv"
	}
	return base + ".csv"
}

func phaseOf(t, drop, recover time.Time) string {
	switch {
	case t.Before(drop):
		return "steady"
	case recover.IsZero() || t.Before(recover):
		return "dropped"
	}
	return "restored"
}

func logger(verbose bool) *slog.Logger {
	if verbose {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
