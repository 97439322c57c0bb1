// Package demo is the README's main job: an in-process cluster (one edge on
// an emulated slow device and radio link, cloud nodes, real gossip and real
// QUIC on loopback) driven through a schedule of link phases, printing per
// phase the plan chosen, its accuracy, predicted against measured latency
// and the same requests forced edge-only and cloud-only.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgesplit/edgesplit/internal/stats"
	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"gorgonia.org/tensor"
)

// Phase is one period of the demo's link schedule.
type Phase struct {
	Name      string // shown in the table
	Profile   string // linkem profile name
	KillCloud bool   // kill one cloud node at the start of this phase
}

// Config configures Run. Zero fields take defaults: 2 clouds,
// DefaultPhases, 8 requests and 4 baseline requests per phase, a Raspberry Pi 4 edge.
type Config struct {
	Model      *node.Model
	EdgeDevice node.Device
	Clouds     int
	Phases     []Phase
	// Requests is the number of auto-policy requests per phase; each phase
	// also runs Baseline requests forced edge-only and cloud-only.
	Requests, Baseline int
	// Accuracy is the edge's accuracy budget (nil: the node default,
	// scheduler.DefaultMaxLoss).
	Accuracy *scheduler.AccuracyBudget
	// Input returns the i-th request's inputs (nil: uniform random tensors
	// of the model's input shape).
	Input  func(i int) ([]*tensor.Dense, error)
	Logger *slog.Logger
}

// DefaultPhases is Wi-Fi → 5G mid-band → LTE → mmWave (with blockage)
// → 5G mid-band, killing a cloud node halfway.
func DefaultPhases() []Phase {
	return []Phase{
		{Name: "1 wifi", Profile: "wifi"},
		{Name: "2 5g-midband", Profile: "5g-midband"},
		{Name: "3 lte", Profile: "lte", KillCloud: true},
		{Name: "4 5g-mmwave", Profile: "5g-mmwave"},
		{Name: "5 5g-midband", Profile: "5g-midband"},
	}
}

// Row is one line of the demo's report.
type Row struct {
	Phase, Link, Policy, Cut, Codec, Cloud string
	Predicted, Measured                    time.Duration
	Bytes                                  int64
	// Accuracy is what the last auto plan risked (its codec's fidelity and
	// calibrated agreement bound); Agree of Requests answers had the same
	// top-1 class as the unsplit model run locally on the same inputs.
	Accuracy            scheduler.Accuracy
	Agree, Requests     int
	EdgeOnly, CloudOnly time.Duration
	// EdgeOnlyPredicted and CloudOnlyPredicted are the baselines' own
	// predictions, CloudOnlyPlan the cloud-only plan that ran ("cut 0,
	// lossless, cloud-2").
	EdgeOnlyPredicted, CloudOnlyPredicted time.Duration
	CloudOnlyPlan                         string
	Fallbacks                             int
	Clouds                                int // clouds alive at the phase's end
}

// baseline collects one forced policy's requests in a phase.
type baseline struct {
	measured, predicted []time.Duration
	plan                string
}

func (b *baseline) run(ctx context.Context, edge *node.Node, policy string, input func() ([]*tensor.Dense, error)) error {
	xs, err := input()
	if err != nil {
		return fmt.Errorf("input: %w", err)
	}
	res, err := edge.Infer(ctx, node.InferRequest{Inputs: xs, Policy: policy})
	if err != nil {
		return err
	}
	b.measured = append(b.measured, res.Measured.Total)
	b.predicted = append(b.predicted, res.Predicted)
	b.plan = fmt.Sprintf("cut %d, %s, %s", res.Cut, dash(res.Codec), dash(res.Cloud))
	return nil
}

func (b *baseline) summary() (measured, predicted time.Duration, plan string) {
	return stats.Median(b.measured), stats.Median(b.predicted), b.plan
}

// Run starts an in-process cluster (one edge on an emulated slow device
// and link, cfg.Clouds cloud nodes) with real gossip and real QUIC on
// loopback, sends a stream of requests while the edge's link follows the
// phase schedule, kills a cloud node where the schedule says, and writes a
// table per phase to w. It returns the rows.
func Run(ctx context.Context, cfg Config, w io.Writer) ([]Row, error) {
	if cfg.Model == nil {
		return nil, fmt.Errorf("demo: needs a model")
	}
	if cfg.Clouds < 0 {
		return nil, fmt.Errorf("demo: needs at least one cloud node, got %d", cfg.Clouds)
	}
	if cfg.Clouds == 0 {
		cfg.Clouds = 2
	}
	if len(cfg.Phases) == 0 {
		cfg.Phases = DefaultPhases()
	}
	if cfg.Requests <= 0 {
		cfg.Requests = 8
	}
	if cfg.Baseline <= 0 {
		cfg.Baseline = 4
	}
	if cfg.EdgeDevice.Slowdown == 0 {
		cfg.EdgeDevice, _ = node.ParseDevice("raspberry-pi-4")
	}
	first, err := linkem.LookupProfile(cfg.Phases[0].Profile)
	if err != nil {
		return nil, err
	}
	ref, err := model.Compile(cfg.Model.Graph, model.Options{})
	if err != nil {
		return nil, fmt.Errorf("demo:: the unsplit reference: %w", err)
	}
	local := ref.NewExtractor()
	budget := scheduler.AccuracyBudget{}
	if cfg.Accuracy != nil {
		budget = *cfg.Accuracy
	}
	started := time.Now()
	fmt.Fprintf(w, "starting 1 edge (%s, %.0f× slower) + %d clouds on loopback: gossip, QUIC + mutual TLS, emulated edge link; model %s (%d nodes)\n",
		cfg.EdgeDevice.Name, cfg.EdgeDevice.Slowdown, cfg.Clouds, cfg.Model.ID, cfg.Model.Nodes())
	lc, err := cluster.Start(ctx, cluster.Config{
		Edges: 1, Clouds: cfg.Clouds, Models: []*node.Model{cfg.Model},
		EdgeDevice: cfg.EdgeDevice, Uplink: first.Up, Downlink: first.Down,
		GossipKey: demoKey(), Logger: cfg.Logger, Policy: "auto",
		Tune: func(c *node.Config) {
			c.ProfileRuns = 3
			c.BanBase = 5 * time.Second
			if cfg.Accuracy != nil {
				c.Accuracy = *cfg.Accuracy
			}
		},
	})
	if err != nil {
		return nil, err
	}
	defer lc.Kill()
	fmt.Fprintf(w, "cluster up and converged in %v; accuracy budget %s, model %s\n\n", time.Since(started).Round(time.Millisecond),
		budget, calibrationNote(cfg.Model))
	edge := lc.Edges[0]
	next := 0
	input := func() ([]*tensor.Dense, error) {
		next++
		if cfg.Input != nil {
			return cfg.Input(next - 1)
		}
		xs := make([]*tensor.Dense, len(cfg.Model.Graph.Inputs))
		for i, in := range cfg.Model.Graph.Inputs {
			xs[i] = model.UniformTensor(in.Shape, uint64(42+next*len(xs)+i))
		}
		return xs, nil
	}
	var rows []Row
	killed := 0
	for _, ph := range cfg.Phases {
		prof, err := linkem.LookupProfile(ph.Profile)
		if err != nil {
			return rows, err
		}
		if err := edge.SetLink(prof.Up, prof.Down); err != nil {
			return rows, err
		}
		if ph.KillCloud && killed < len(lc.Clouds)-1 {
			lc.Clouds[killed].Kill()
			fmt.Fprintf(w, "[phase %s] killed %s (crash, no leave)\n", ph.Name, lc.Clouds[killed].Name())
			killed++
		}
		row := Row{Phase: ph.Name, Link: ph.Profile, Policy: "auto", Requests: cfg.Requests}
		// The first half of the auto requests lets the plan settle on the
		// new link; in the second half each auto request is followed by
		// the baselines (while they last), so all three see the same link
		// moments — a varying link (mmWave blockage) would otherwise make
		// one window look better than another.
		var preds, meas []time.Duration
		var base [2]baseline
		var last *node.InferResult
		for i := range cfg.Requests {
			xs, err := input()
			if err != nil {
				return rows, fmt.Errorf("phase %s: input: %w", ph.Name, err)
			}
			res, err := edge.Infer(ctx, node.InferRequest{Inputs: xs})
			if err != nil {
				return rows, fmt.Errorf("phase %s: %w", ph.Name, err)
			}
			want, err := top1(ctx, local, xs)
			if err != nil {
				return rows, fmt.Errorf("phase %s: the unsplit reference: %w", ph.Name, err)
			}
			if res.Class == want {
				row.Agree++
			}
			if res.Fallback != "" {
				row.Fallbacks++
			}
			row.Bytes += res.BytesSent
			last = res
			if i < cfg.Requests/2 {
				continue
			}
			preds = append(preds, res.Predicted)
			meas = append(meas, res.Measured.Total)
			for j, pol := range []string{"edge-only", "cloud-only"} {
				if len(base[j].measured) >= cfg.Baseline {
					continue
				}
				if err := base[j].run(ctx, edge, pol, input); err != nil {
					return rows, fmt.Errorf("phase %s %s: %w", ph.Name, pol, err)
				}
			}
		}
		for j, pol := range []string{"edge-only", "cloud-only"} {
			for len(base[j].measured) < cfg.Baseline {
				if err := base[j].run(ctx, edge, pol, input); err != nil {
					return rows, fmt.Errorf("phase %s %s: %w", ph.Name, pol, err)
				}
			}
		}
		row.Bytes /= int64(cfg.Requests)
		row.Cut = fmt.Sprint(last.Cut)
		if last.Cut == cfg.Model.Nodes() {
			row.Cut += " (edge)"
		}
		row.Codec, row.Cloud, row.Accuracy = last.Codec, last.Cloud, last.Accuracy
		row.Predicted = stats.Median(preds)
		row.Measured = stats.Median(meas)
		row.EdgeOnly, row.EdgeOnlyPredicted, _ = base[0].summary()
		row.CloudOnly, row.CloudOnlyPredicted, row.CloudOnlyPlan = base[1].summary()
		for _, p := range edge.Members() {
			if p.Alive && p.Meta.Role == node.RoleCloud {
				row.Clouds++
			}
		}
		rows = append(rows, row)
	}
	writeDemoTable(w, rows)
	fmt.Fprintf(w, "\ndemo finished in %v\n", time.Since(started).Round(time.Millisecond))
	return rows, nil
}

// writeDemoTable prints the rows as an aligned table with its legend.
func writeDemoTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tlink\tpolicy\tcut\tcodec\tcloud\taccuracy\ttop-1 = unsplit\tpredicted ms\tmeasured ms\tbytes up\tedge-only ms\tcloud-only ms\tvs edge\tvs cloud\tfallbacks\tclouds alive")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%.1f\t%.1f\t%d\t%.1f\t%.1f\t%.2f×\t%.2f×\t%d\t%d\n",
			r.Phase, r.Link, r.Policy, r.Cut, dash(r.Codec), dash(r.Cloud), r.Accuracy, r.Agree, r.Requests,
			ms(r.Predicted), ms(r.Measured), r.Bytes, ms(r.EdgeOnly), ms(r.CloudOnly),
			ratio(r.EdgeOnly, r.Measured), ratio(r.CloudOnly, r.Measured), r.Fallbacks, r.Clouds)
	}
	tw.Flush()
	fmt.Fprintln(w, "\naccuracy: what the plan's codec risks (exact; or the calibrated lower bound on top-1 agreement")
	fmt.Fprintln(w, "with the unsplit model). top-1 = unsplit: auto answers whose class equals the unsplit model's, run here on the same input.")
	fmt.Fprintln(w, "predicted/measured: median over the phase's second half, where each auto request is followed by an edge-only and a")
	fmt.Fprintln(w, "cloud-only one (same link moments). vs edge, vs cloud: edge-only (cloud-only) ms ÷ auto's measured ms — above 1× auto")
	fmt.Fprintln(w, "was faster than always computing on the edge (always sending the input to a cloud).")
	if v := Verdicts(rows, 0.05); len(v) > 0 {
		fmt.Fprintln(w, "\nwhere auto was more than 5% slower than the best forced plan:")
		for _, line := range v {
			fmt.Fprintln(w, "  "+line)
		}
	} else {
		fmt.Fprintln(w, "\nauto was within 5% of the best forced plan (edge-only, cloud-only) in every phase.")
	}
}

// Verdicts explains each phase where auto's measured latency exceeds the
// best forced baseline's by more than tol (0.05: 5 %): auto ran the same
// plan (the gap is the link's variation, not the decision), kept a plan it
// itself predicted slower (hysteresis), or predicted its plan faster and
// was wrong (a misprediction).
func Verdicts(rows []Row, tol float64) []string {
	var out []string
	for _, r := range rows {
		best, name, pred, plan := r.EdgeOnly, "edge-only", r.EdgeOnlyPredicted, "edge-only"
		if r.CloudOnly > 0 && (best <= 0 || r.CloudOnly < best) {
			best, name, pred, plan = r.CloudOnly, "cloud-only", r.CloudOnlyPredicted, r.CloudOnlyPlan
		}
		if best <= 0 || float64(r.Measured) <= float64(best)*(1+tol) {
			continue
		}
		gap := 100 * (float64(r.Measured)/float64(best) - 1)
		auto := fmt.Sprintf("cut %s, %s, %s", r.Cut, dash(r.Codec), dash(r.Cloud))
		if strings.HasSuffix(r.Cut, "(edge)") {
			auto = "edge-only"
		}
		why := fmt.Sprintf("auto ran another plan (%s), predicted %.1f ms against %.1f ms for %s: the cost model misjudged this link", auto, ms(r.Predicted), ms(pred), name)
		if r.Predicted > pred {
			why = fmt.Sprintf("auto kept its plan (%s, predicted %.1f ms) though it predicted %s at %.1f ms: hysteresis — auto switches only for a plan ≥ 10%% better three times in a row (or 2× at once)", auto, ms(r.Predicted), name, ms(pred))
		}
		if auto == plan {
			why = fmt.Sprintf("auto ran the same plan (%s): the gap is the link's variation between requests, not the decision", plan)
		}
		out = append(out, fmt.Sprintf("phase %s: auto %.1f ms, %s %.1f ms (+%.0f%%): %s", r.Phase, ms(r.Measured), name, ms(best), gap, why))
	}
	return out
}

// calibrationNote says what calibration the demo's model has.
func calibrationNote(m *node.Model) string {
	if m.Calibration == nil {
		return m.ID + " uncalibrated (exact codecs only)"
	}
	return fmt.Sprintf("%s calibrated on %s (%d inputs)", m.ID, m.Calibration.Data.Source, m.Calibration.Data.Samples)
}

// top1 runs the unsplit model on xs and returns the argmax of its last
// output.
func top1(ctx context.Context, ex *model.Extractor, xs []*tensor.Dense) (int, error) {
	outs, err := ex.Run(ctx, xs...)
	if err != nil {
		return 0, err
	}
	return argmax(outs[len(outs)-1].Data().([]float32)), nil
}

func demoKey() []byte { return []byte("edgesplit-demo-gossip-key-32byte") }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func argmax(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}
