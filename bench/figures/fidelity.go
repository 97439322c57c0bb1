package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/node/demo"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/sim"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gorgonia.org/tensor"
)

// fidRow is one request of the fidelity run.
type fidRow struct {
	phase               int
	link                string
	measured, predicted time.Duration
	cut                 int
	codec               string
	// parts: edge compute, encode, network (uplink+propagation+downlink),
	// queue, cloud compute, decode — in ms.
	parts [6]float64
}

var partNames = [6]string{"edge", "encode", "network", "queue", "cloud", "decode"}

// figFidelity runs the demo's setup (1 edge emulating a Raspberry Pi 4,
// 2 cloud servers, the demo's link schedule, auto policy, one request at a
// time) on the emulated in-process cluster and in sim, fed with the very
// profiles and codec costs the cluster measured, and compares mean and p95
// latency.
func figFidelity(ctx context.Context, e *env, modelName, device, policy string, perPhase int, period, lag time.Duration) error {
	g, err := graphFor(modelName)
	if err != nil {
		return err
	}
	m, err := node.NewModel(modelName, "", g, nil)
	if err != nil {
		return err
	}
	dev, err := node.ParseDevice(device)
	if err != nil {
		return err
	}
	server, _ := node.ParseDevice("server")
	phases := demo.DefaultPhases()
	first, err := linkem.LookupProfile(phases[0].Profile)
	if err != nil {
		return err
	}
	suffix := ""
	if policy != "auto" {
		suffix = "-" + strings.ReplaceAll(policy, ":", "")
	}
	t0 := time.Now()
	fmt.Fprintf(os.Stderr, "starting the emulated cluster (1 edge %s ×%g, 2 clouds) with %s...\n", dev.Name, dev.Slowdown, modelName)
	lc, err := cluster.Start(ctx, cluster.Config{
		Edges: 1, Clouds: 2, Models: []*node.Model{m}, EdgeDevice: dev, CloudDevice: server,
		Uplink: first.Up, Downlink: first.Down, Policy: policy,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tune:   func(c *node.Config) { c.ProfileRuns = 3 },
	})
	if err != nil {
		return err
	}
	defer lc.Kill()
	edge := lc.Edges[0]
	fmt.Fprintf(os.Stderr, "cluster up in %v\n", time.Since(t0).Round(time.Millisecond))
	rng := rand.New(rand.NewPCG(42, 7))
	shape := m.Graph.Inputs[0].Shape
	input := func() *tensor.Dense {
		n := 1
		for _, d := range shape {
			n *= max(d, 1)
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = rng.Float32()
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	}
	// Warm-up: QUIC connections, link estimates and profile fetches.
	for range 2 {
		if _, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{input()}}); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	var emu []fidRow
	var estimates []string
	// Requests go one at a time: back to back as `edgesplit demo` sends them
	// (period 0), or one every period. The link changes when a phase's first
	// request is due; sim gets the same switch times.
	start := time.Now()
	var phaseAt []time.Duration
	pb := bar(len(phases)*perPhase, "emulated cluster")
	for pi, ph := range phases {
		prof, err := linkem.LookupProfile(ph.Profile)
		if err != nil {
			return err
		}
		if period > 0 {
			if err := sleepUntil(ctx, start.Add(time.Duration(pi*perPhase)*period)); err != nil {
				return err
			}
		}
		phaseAt = append(phaseAt, time.Since(start))
		if err := edge.SetLink(prof.Up, prof.Down); err != nil {
			return err
		}
		for j := range perPhase {
			if period > 0 {
				if err := sleepUntil(ctx, start.Add(time.Duration(pi*perPhase+j)*period)); err != nil {
					return err
				}
			}
			res, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{input()}})
			if err != nil {
				return fmt.Errorf("phase %s: %w", ph.Name, err)
			}
			mm := res.Measured
			emu = append(emu, fidRow{pi, ph.Profile, mm.Total, res.Predicted, res.Cut, res.Codec,
				[6]float64{ms(mm.EdgeCompute), ms(mm.Encode), ms(mm.Transfer), ms(mm.Queue), ms(mm.CloudCompute), ms(mm.Decode)}})
			pb.Add(1)
		}
		if in, err := edge.Inputs(ctx, modelName); err == nil && len(in.Clouds) > 0 {
			l := in.Clouds[0].Link
			estimates = append(estimates, fmt.Sprintf("| %s | %.1f / %.1f | %.1f / %.1f | %v / %v |", ph.Name, prof.Up.MeanRate()/1e6, l.Up*8/1e6,
				prof.Down.MeanRate()/1e6, l.Down*8/1e6, (prof.Up.Delay+prof.Down.Delay).Round(time.Millisecond), l.RTT.Round(100*time.Microsecond)))
		}
	}
	pb.Finish()
	emulatedSpan := time.Since(start)
	var checks []string
	var ratios map[string]float64
	if e.linkCheck {
		checks, ratios, err = linkCheck(ctx, edge, input, phases)
		if err != nil {
			return err
		}
	}

	// The same world in sim: the codecs are the edge's table (per cut,
	// measured and learned); the profiles follow.
	cp, ok := lc.Clouds[0].Profile(modelName)
	if !ok {
		return fmt.Errorf("cloud has no profile of %s", modelName)
	}
	ep, ok := edge.Profile(modelName)
	if !ok {
		return fmt.Errorf("edge has no profile of %s", modelName)
	}
	n := len(cp.Nodes)
	slow := float64(ep.HeadLatency(n)) / float64(cp.HeadLatency(n))
	// The edge's own profile is the reference (so the edge's plans see the
	// same per-node latencies in both worlds) and the clouds run it
	// 1/slow times as long: the edge's profile is the one planning depends
	// on, and cloud compute is a small term.
	dag, err := scheduler.NewDAG(m.Graph, ep)
	if err != nil {
		return err
	}
	simModel := sim.Model{Profile: ep, DAG: dag}
	var sched []sim.LinkPhase
	for pi, ph := range phases[1:] {
		sched = append(sched, sim.LinkPhase{At: sim.Duration(phaseAt[pi+1]), Profile: ph.Profile})
	}
	// The edge learns its link from its own transfers and probes, and its
	// estimate follows a change in about a second (α 0.5 per transfer
	// and auto's hysteresis while it offloads, a probe every 1–3 s while
	// it computes locally). By default sim's device sees the true link
	// lag late; with lag 0 it learns its link by the edge's rules
	// (estimation source "learned"), which reads a new link faster than
	// the edge does through QUIC (a probe right after a loss-ridden phase
	// moves under a small congestion window). Cloud backlogs are sampled
	// every 10 ms either way.
	arrivals := sim.Arrivals{Process: "closed"}
	duration := emulatedSpan
	est := sim.EstimationSpec{Source: sim.SourceLearned, Interval: sim.Duration(10 * time.Millisecond)}
	if lag > 0 {
		est = sim.EstimationSpec{Interval: sim.Duration(10 * time.Millisecond), Lag: sim.Duration(lag)}
	}
	if period > 0 {
		arrivals = sim.Arrivals{Process: "periodic", FPS: 1 / period.Seconds()}
		duration = time.Duration(len(phases)*perPhase) * period
	}
	runSim := func(label string, codecs []sim.CodecSpec) ([]fidRow, error) {
		s, err := buildScenario(&sim.Scenario{
			Name: "fidelity-" + label, Seed: 1, Duration: sim.Duration(duration), Policy: policy,
			Estimation: est,
			Codecs:     codecs,
			Models:     []sim.ModelSpec{{Name: modelName}},
			Edges: []sim.EdgeSpec{{Name: "edge", Count: 1, Model: modelName, Slowdown: 1,
				Link: sim.LinkSpec{Profile: phases[0].Profile, Schedule: sched}, Arrivals: arrivals}},
			Clouds: []sim.CloudSpec{{Name: "cloud", Count: 2, Workers: 1, Slowdown: 1 / slow}},
		})
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(e.cache, "fidelity-"+label+suffix)
		if _, err := sim.RunDir(ctx, s, dir, sim.Config{Resolve: func(string) (sim.Model, error) { return simModel, nil }}); err != nil {
			return nil, err
		}
		return readSimRows(filepath.Join(dir, "requests.csv"), phaseAt, phases)
	}
	type source struct {
		name, desc string
		rows       []fidRow
	}
	srcs := []source{{name: "emulation", desc: "emulated cluster", rows: emu}}
	simRows, err := runSim("sim", codecSpecs(edge.CodecTable(modelName)))
	if err != nil {
		return err
	}
	srcs = append(srcs, source{"sim", "sim, codec ratios per cut as the edge measured and learned them", simRows})
	if len(ratios) > 0 {
		cal := codecSpecs(edge.CodecTable(modelName))
		for i := range cal {
			if r, ok := ratios[cal[i].Name]; ok {
				cal[i].Ratio = r
				if len(cal[i].CutRatios) > 0 {
					cal[i].CutRatios[0] = r // the link check sent the model's input
				}
			}
		}
		calRows, err := runSim("sim-calibrated", cal)
		if err != nil {
			return err
		}
		srcs = append(srcs, source{"sim-calibrated", "sim, codec ratios the cluster achieved on this model's input (link check)", calRows})
	}

	f, err := os.Create(filepath.Join(e.out, "sim-vs-emulation"+suffix+".csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"source", "phase", "link", "request", "latency_ms", "predicted_ms", "cut", "codec", "edge_ms", "encode_ms", "network_ms", "queue_ms", "cloud_ms", "decode_ms"})
	for _, src := range srcs {
		for i, r := range src.rows {
			rec := []string{src.name, strconv.Itoa(r.phase), r.link, strconv.Itoa(i), ff(ms(r.measured)), ff(ms(r.predicted)), strconv.Itoa(r.cut), r.codec}
			for _, v := range r.parts {
				rec = append(rec, ff(v))
			}
			w.Write(rec)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	view := "learned from its transfers and probes"
	if lag > 0 {
		view = fmt.Sprintf("the true link %v late", lag)
	}
	pace := fmt.Sprintf("back to back (sim: closed-loop arrivals, link estimates %s)", view)
	if period > 0 {
		pace = fmt.Sprintf("one every %v (sim: periodic arrivals, link estimates %s)", period, view)
	}
	fmt.Printf("sim vs emulation: %s, edge %s (profile ratio %.2f×), 2 clouds, policy %s, %d requests per phase, %s; emulated run took %v\n",
		modelName, dev.Name, slow, policy, perPhase, pace, time.Since(t0).Round(time.Second))
	var summary []string
	for _, sr := range srcs[1:] {
		fmt.Printf("\n### %s\n\n", sr.desc)
		fmt.Println("| phase | link | emulated mean ms | sim mean ms | sim ÷ emu | emulated plans (cut/codec×n) | sim plans | emu predicted mean ms |")
		fmt.Println("|---|---|---|---|---|---|---|---|")
		for pi, ph := range phases {
			em, sm := phaseRows(emu, pi), phaseRows(sr.rows, pi)
			a, b := meanOf(em, false), meanOf(sm, false)
			fmt.Printf("| %s | %s | %.1f | %.1f | %.2f | %s | %s | %.1f |\n", ph.Name, ph.Profile, a, b, b/a, cutsOf(em), cutsOf(sm), meanOf(em, true))
		}
		fmt.Println("\nmean breakdown per phase and plan (ms): emulated / sim")
		fmt.Printf("| phase | plan | n emu/sim |")
		for _, pn := range partNames {
			fmt.Printf(" %s |", pn)
		}
		fmt.Println("\n|---|---|---|---|---|---|---|---|---|")
		var same []float64 // sim ÷ emu over phase × plan pairs both ran
		for pi, ph := range phases {
			em, sm := phaseRows(emu, pi), phaseRows(sr.rows, pi)
			for _, plan := range plansOf(em, sm) {
				ep, sp := planRows(em, plan), planRows(sm, plan)
				fmt.Printf("| %s | %s | %d/%d |", ph.Name, plan, len(ep), len(sp))
				for j := range partNames {
					fmt.Printf(" %s / %s |", meanPart(ep, j), meanPart(sp, j))
				}
				fmt.Println()
				if len(ep) > 0 && len(sp) > 0 {
					same = append(same, meanOf(sp, false)/meanOf(ep, false))
				}
			}
		}
		ea, sa := meanOf(emu, false), meanOf(sr.rows, false)
		ep95, sp95 := p95Of(emu), p95Of(sr.rows)
		line := fmt.Sprintf("%s: mean emu %.1f ms, sim %.1f ms, sim ÷ emu %.3f; p95 emu %.1f ms, sim %.1f ms, sim ÷ emu %.3f; same phase and plan: sim ÷ emu %.3f on average over %d pairs",
			sr.name, ea, sa, sa/ea, ep95, sp95, sp95/ep95, meanF(same), len(same))
		summary = append(summary, line)
		fmt.Println("\n" + line)
	}
	fmt.Println("\nthe edge's link estimate at the end of each phase (scheduler input) vs the emulated link: configured / estimated")
	fmt.Println("| phase | up Mbit/s | down Mbit/s | RTT |")
	fmt.Println("|---|---|---|---|")
	for _, l := range estimates {
		fmt.Println(l)
	}
	if len(checks) > 0 {
		fmt.Println("\nlink check: cloud-only with each codec, network time (upload + propagation + download, as the edge measures it) vs sim's model (bytes ÷ rate + delays)")
		fmt.Println("| link | codec | wire bytes | emulated network ms | sim model ms | emu − sim ms | goodput of the excess-free part |")
		fmt.Println("|---|---|---|---|---|---|---|")
		for _, l := range checks {
			fmt.Println(l)
		}
	}
	fmt.Println("\nsummary:")
	for _, l := range summary {
		fmt.Println("  " + l)
	}

	// Measured (the emulated cluster) beside predicted (sim), with each
	// phase's sim ÷ measured ratio over its bar: the per-phase fidelity, not
	// only the mean.
	p := plot.New()
	p.Title.Text = fmt.Sprintf("measured (emulated cluster) vs predicted (sim): %s, %s edge, %s", modelName, dev.Name, policy)
	p.Y.Label.Text = "mean latency per phase (ms)"
	p.X.Label.Text = "demo link phase (number over a predicted bar: sim ÷ measured)"
	wd := vg.Points(14)
	for i, sr := range srcs {
		var vals plotter.Values
		var lbl plotter.XYLabels
		for pi := range phases {
			v := meanOf(phaseRows(sr.rows, pi), false)
			vals = append(vals, v)
			if i > 0 {
				lbl.XYs = append(lbl.XYs, plotter.XY{X: float64(pi), Y: v})
				lbl.Labels = append(lbl.Labels, fmt.Sprintf("%.2f", v/meanOf(phaseRows(emu, pi), false)))
			}
		}
		b, err := plotter.NewBarChart(vals, wd)
		if err != nil {
			return err
		}
		b.Color = plotutil.Color(i)
		b.Offset = wd * vg.Length(float64(i)-float64(len(srcs)-1)/2)
		p.Add(b)
		name := "measured: " + sr.name
		if i > 0 {
			name = "predicted: " + sr.name
			if i > 1 && sameLatencies(sr.rows, srcs[1].rows) {
				name += " (= " + srcs[1].name + ")"
			}
			l, err := plotter.NewLabels(lbl)
			if err != nil {
				return err
			}
			for j := range l.TextStyle {
				l.TextStyle[j].XAlign = draw.XCenter
				l.TextStyle[j].Font.Size = vg.Points(7)
			}
			l.Offset = vg.Point{X: b.Offset, Y: vg.Points(2)}
			p.Add(l)
		}
		p.Legend.Add(name, b)
	}
	var names []string
	for _, ph := range phases {
		names = append(names, ph.Name)
	}
	p.NominalX(names...)
	return save(p, filepath.Join(e.out, "sim-vs-emulation"+suffix+".png"))
}

// sameLatencies reports whether two runs gave every request the same
// latency (sim with two codec tables that lead to the same plans and bytes).
func sameLatencies(a, b []fidRow) bool {
	return slices.EqualFunc(a, b, func(x, y fidRow) bool { return x.measured == y.measured })
}

// sleepUntil waits until t or ctx's end.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readSimRows reads sim's per-request CSV back, phase by arrival time
// (phase i starts at phaseAt[i]).
func readSimRows(path string, phaseAt []time.Duration, phases []demo.Phase) ([]fidRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("%s: no requests", path)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var out []fidRow
	for _, r := range recs[1:] {
		arr, _ := strconv.ParseFloat(r[col["arrival_ms"]], 64)
		tot, _ := strconv.ParseFloat(r[col["total_ms"]], 64)
		pred, _ := strconv.ParseFloat(r[col["pred_ms"]], 64)
		cut, err := strconv.Atoi(r[col["cut"]])
		if err != nil {
			cut = -1
		}
		pi := 0
		for i, at := range phaseAt {
			if time.Duration(arr*1e6) >= at {
				pi = i
			}
		}
		num := func(c string) float64 { v, _ := strconv.ParseFloat(r[col[c]], 64); return v }
		out = append(out, fidRow{pi, phases[pi].Profile, time.Duration(tot * 1e6), time.Duration(pred * 1e6), cut, r[col["codec"]],
			[6]float64{num("edge_ms"), num("encode_ms"), num("uplink_ms") + num("prop_ms") + num("downlink_ms"), num("queue_ms"), num("cloud_ms"), num("decode_ms")}})
	}
	return out, nil
}

func phaseRows(rs []fidRow, p int) []fidRow {
	var out []fidRow
	for _, r := range rs {
		if r.phase == p {
			out = append(out, r)
		}
	}
	return out
}

func meanOf(rs []fidRow, pred bool) float64 {
	if len(rs) == 0 {
		return 0
	}
	var s float64
	for _, r := range rs {
		if pred {
			s += ms(r.predicted)
		} else {
			s += ms(r.measured)
		}
	}
	return s / float64(len(rs))
}

func p95Of(rs []fidRow) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = ms(r.measured)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	return v[min(len(v)-1, int(0.95*float64(len(v))))]
}

func cutsOf(rs []fidRow) string {
	seen := map[string]int{}
	var order []string
	for _, r := range rs {
		k := strconv.Itoa(r.cut) + "/" + r.codec
		if seen[k] == 0 {
			order = append(order, k)
		}
		seen[k]++
	}
	s := ""
	for i, k := range order {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s×%d", k, seen[k])
	}
	return s
}

func planKey(r fidRow) string { return strconv.Itoa(r.cut) + "/" + r.codec }

func plansOf(a, b []fidRow) []string {
	var out []string
	for _, r := range append(slices.Clone(a), b...) {
		if k := planKey(r); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func planRows(rs []fidRow, plan string) []fidRow {
	var out []fidRow
	for _, r := range rs {
		if planKey(r) == plan {
			out = append(out, r)
		}
	}
	return out
}

func meanPart(rs []fidRow, j int) string {
	if len(rs) == 0 {
		return "–"
	}
	var s float64
	for _, r := range rs {
		s += r.parts[j]
	}
	return strconv.FormatFloat(s/float64(len(rs)), 'f', 1, 64)
}

// linkCheck forces cloud-only with each codec on each distinct phase link
// and compares the measured network time with sim's transfer model.
func linkCheck(ctx context.Context, edge *node.Node, input func() *tensor.Dense, phases []demo.Phase) ([]string, map[string]float64, error) {
	var out []string
	ratios := map[string]float64{}
	seen := map[string]bool{}
	for _, ph := range phases {
		if seen[ph.Profile] {
			continue
		}
		seen[ph.Profile] = true
		prof, err := linkem.LookupProfile(ph.Profile)
		if err != nil {
			return nil, nil, err
		}
		if err := edge.SetLink(prof.Up, prof.Down); err != nil {
			return nil, nil, err
		}
		for _, c := range edge.Codecs() {
			var net, bytes []float64
			refused := false
			for range 3 {
				res, err := edge.Infer(ctx, node.InferRequest{Inputs: []*tensor.Dense{input()}, Policy: "cloud-only", Codec: c.Name})
				if errors.Is(err, node.ErrBadRequest) {
					// A lossy codec the accuracy budget forbids (no
					// calibration table certifies it): not measured.
					out = append(out, fmt.Sprintf("| %s | %s | – | not measured: refused by the accuracy budget (no calibration table) | | | |", ph.Profile, c.Name))
					refused = true
					break
				}
				if err != nil {
					return nil, nil, err
				}
				if res.BytesSent > 0 {
					ratios[c.Name] = float64(res.Plan.Bytes) / float64(res.BytesSent)
				}
				net = append(net, ms(res.Measured.Transfer))
				bytes = append(bytes, float64(res.BytesSent))
			}
			if refused {
				continue
			}
			slices.Sort(net)
			nm, b := net[1], bytes[0]
			model := b*8/prof.Up.MeanRate()*1e3 + ms(prof.Up.Delay+prof.Down.Delay) + 4000*8/prof.Down.MeanRate()*1e3
			prop := ms(prof.Up.Delay + prof.Down.Delay)
			gp := b * 8 / ((nm - prop) / 1e3) / 1e6
			out = append(out, fmt.Sprintf("| %s | %s | %.0f | %.1f | %.1f | %.1f | %.1f Mbit/s of %.1f |", ph.Profile, c.Name, b, nm, model, nm-model, gp, prof.Up.MeanRate()/1e6))
		}
	}
	return out, ratios, nil
}

func meanF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
