// Command peers sets the public Neurosurgeon and DADS reimplementations
// (github.com/Tjyy-1223/Neurosurgeon, github.com/Tjyy-1223/DADS) beside the
// scheduler's auto policy (issue 19, part 6).
//
// For each model, edge device and link it profiles the model with the
// engine (node.MeasureProfile: this machine's per-node medians scaled to the
// device profiles), hands the per-node edge and cloud latencies, each node's
// output size and the link's uplink to the peers' own decision code through
// bench/peers/driver.py, and prices every prefix cut with the scheduler's
// cost model (scheduler.Fixed{K}: best codec at the cut, RTT, uplink,
// downlink). The regret of a decision is its latency ÷ the best forced
// cut's. Each peer's cut and auto's plan are priced the same way, once with
// raw float32 boundaries only (the peers' own transfer model: only the
// decision differs) and once with every exact codec the scheduler may use
// (what the system would run). With -measured it also reads bench/schedq's
// per-policy medians of the same models and links on the emulated cluster
// (every cut forced) and prices the peers' cuts and auto by what was
// measured (peers-measured.csv): bench/peers/peers.sh --measure runs both.
//
// The peers are not part of this repository: bench/peers/peers.sh exports
// them at run time and passes -neurosurgeon and -dads.
//
//	bench/peers/peers.sh            # or:
//	go run ./bench/peers -neurosurgeon DIR -dads DIR
package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/transport/linkem"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

type caseNode struct {
	Op        string  `json:"op"`
	OutFloats int64   `json:"out_floats"`
	EdgeMs    float64 `json:"edge_ms"`
	CloudMs   float64 `json:"cloud_ms"`
}

type peerCase struct {
	ID    string     `json:"id"`
	Nodes []caseNode `json:"nodes"`
	UpMBs float64    `json:"up_mbps"` // MB/s (2^20 bytes), their unit
}

type decision struct {
	ID string `json:"id"`
	K  int    `json:"k"`
}

// setting is one model × edge device × link, with the scheduler inputs for
// each codec set.
type setting struct {
	model, device, link string
	inputs              map[string]*scheduler.Inputs // codec set → inputs
	n                   int
}

var codecSets = []string{"raw", "exact"}

func run() error {
	models := flag.String("models", "alexnet,vgg16", "zoo models")
	links := flag.String("links", "wifi,5g-midband,lte,3g", "link profiles (linkem names): the bandwidth grid of bench/schedq")
	devices := flag.String("devices", "raspberry-pi-4", "edge device profiles")
	cloudDev := flag.String("cloud", "server", "cloud device profile")
	runs := flag.Int("runs", 5, "profiling runs per node")
	ns := flag.String("neurosurgeon", os.Getenv("NEUROSURGEON_DIR"), "checkout of Tjyy-1223/Neurosurgeon")
	dads := flag.String("dads", os.Getenv("DADS_DIR"), "checkout of Tjyy-1223/DADS")
	python := flag.String("python", "/usr/bin/python3", "Python with torch, sklearn, pandas, networkx")
	out := flag.String("out", "docs/figures", "folder for peers.csv (and peers-measured.csv)")
	measured := flag.String("measured", "", "comma-separated bench/schedq request CSVs (schedq-requests-TAG.csv) of the same models and links on the emulated cluster: their forced cuts are the measured side (device: schedq's -device, raspberry-pi-4)")
	flag.Parse()
	peers := map[string]string{"neurosurgeon": *ns, "dads": *dads}
	for name, dir := range peers {
		if dir == "" {
			return fmt.Errorf("no %s checkout: pass -%s DIR or run bench/peers/peers.sh", name, name)
		}
	}
	ctx := context.Background()
	cloud, err := node.ParseDevice(*cloudDev)
	if err != nil {
		return err
	}
	var settings []*setting
	var cases []peerCase
	for _, name := range split(*models) {
		g, sc, err := zoo.Load(name)
		if err != nil {
			return err
		}
		m, err := node.NewModel(name, "", g, sc)
		if err != nil {
			return err
		}
		t0 := time.Now()
		cp, err := node.MeasureProfile(ctx, m, cloud, *runs)
		if err != nil {
			return err
		}
		base, err := node.MeasureCodecs(ctx, nil)
		if err != nil {
			return err
		}
		cms, err := node.CutCodecs(ctx, m, base)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "peers: %s profiled (%d nodes) in %v\n", name, len(cp.Nodes), time.Since(t0).Round(time.Millisecond))
		for _, dn := range split(*devices) {
			dev, err := node.ParseDevice(dn)
			if err != nil {
				return err
			}
			// The edge profile is the same measurement stretched by the
			// device's slowdown, as node.MeasureProfile would give it.
			ep := scaled(cp, dev, cloud)
			dag, err := scheduler.NewDAG(m.Graph, ep)
			if err != nil {
				return err
			}
			for _, ln := range split(*links) {
				prof, err := linkem.LookupProfile(ln)
				if err != nil {
					return err
				}
				link := scheduler.LinkEstimate{RTT: prof.Up.Delay + prof.Down.Delay, Up: prof.Up.MeanRate() / 8, Down: prof.Down.MeanRate() / 8}
				s := &setting{model: name, device: dn, link: ln, n: len(ep.Nodes), inputs: map[string]*scheduler.Inputs{}}
				for _, set := range codecSets {
					cs := cms
					if set == "raw" {
						cs = []scheduler.CodecModel{scheduler.RawCodec}
					}
					s.inputs[set] = &scheduler.Inputs{Edge: ep, DAG: dag, Codecs: cs,
						Clouds: []scheduler.CloudInput{{ID: "cloud", Profile: cp, Link: link}}}
				}
				settings = append(settings, s)
				pc := peerCase{ID: s.id(), UpMBs: link.Up / (1 << 20)}
				for i, nd := range ep.Nodes {
					pc.Nodes = append(pc.Nodes, caseNode{Op: nd.Op, OutFloats: nd.OutBytes / 4,
						EdgeMs: ms(nd.Latency), CloudMs: ms(cp.Nodes[i].Latency)})
				}
				cases = append(cases, pc)
			}
		}
	}
	chosen := map[string]map[string]int{} // peer → case id → K
	for _, peer := range []string{"neurosurgeon", "dads"} {
		ds, err := callPeer(ctx, *python, peer, peers[peer], cases)
		if err != nil {
			return err
		}
		chosen[peer] = map[string]int{}
		for _, d := range ds {
			chosen[peer][d.ID] = d.K
		}
	}
	if err := report(settings, chosen, *out); err != nil {
		return err
	}
	if *measured == "" {
		return nil
	}
	return reportMeasured(settings, chosen, split(*measured), *out)
}

func (s *setting) id() string { return s.model + "/" + s.device + "/" + s.link }

func scaled(p *partition.Profile, dev, ref node.Device) *partition.Profile {
	q := *p
	q.Device = dev.Name
	q.Nodes = append([]partition.NodeProfile(nil), p.Nodes...)
	f := dev.Slowdown / max(ref.Slowdown, 1)
	for i := range q.Nodes {
		q.Nodes[i].Latency = time.Duration(float64(q.Nodes[i].Latency) * f)
	}
	return &q
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func callPeer(ctx context.Context, python, peer, dir string, cases []peerCase) ([]decision, error) {
	in, err := json.Marshal(cases)
	if err != nil {
		return nil, err
	}
	driver := filepath.Join("bench", "peers", "driver.py")
	cmd := exec.CommandContext(ctx, python, driver, peer, dir)
	cmd.Stdin = bytes.NewReader(in)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if os.Getenv("PEERS_VERBOSE") == "" {
		cmd.Stderr = nil
	}
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s driver: %w (rerun with PEERS_VERBOSE=1 for its output)", peer, err)
	}
	var ds []decision
	if err := json.Unmarshal(stdout.Bytes(), &ds); err != nil {
		return nil, fmt.Errorf("%s driver output: %w", peer, err)
	}
	if len(ds) != len(cases) {
		return nil, fmt.Errorf("%s driver: %d decisions for %d cases", peer, len(ds), len(cases))
	}
	return ds, nil
}

func report(settings []*setting, chosen map[string]map[string]int, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(out, "peers.csv")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	_ = w.Write([]string{"model", "device", "link", "codecs", "best_k", "best_codec", "best_ms",
		"neurosurgeon_k", "neurosurgeon_ms", "neurosurgeon_regret",
		"dads_k", "dads_ms", "dads_regret",
		"auto_k", "auto_codec", "auto_ms", "auto_regret", "cuts"})
	fmt.Println("Scheduler cost model (predicted ms):")
	fmt.Println()
	fmt.Println("| model | edge | link | codecs | best forced cut | best ms | Neurosurgeon cut | regret | DADS cut | regret | auto plan | regret |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, set := range codecSets {
		for _, s := range settings {
			in := s.inputs[set]
			best, bestK, cuts := scheduler.Plan{}, -1, 0
			for k := 0; k <= s.n; k++ {
				p, err := scheduler.Fixed{K: k}.Plan(in)
				if errors.Is(err, scheduler.ErrAccuracy) {
					continue
				}
				if err != nil {
					return err
				}
				cuts++
				if bestK < 0 || p.Predicted.Total < best.Predicted.Total {
					best, bestK = p, k
				}
			}
			price := func(k int) (scheduler.Plan, error) { return scheduler.Fixed{K: k}.Plan(in) }
			pn, err := price(chosen["neurosurgeon"][s.id()])
			if err != nil {
				return err
			}
			pd, err := price(chosen["dads"][s.id()])
			if err != nil {
				return err
			}
			pa, err := scheduler.NewAuto(scheduler.DefaultAutoConfig()).Plan(in)
			if err != nil {
				return err
			}
			b := ms(best.Predicted.Total)
			reg := func(p scheduler.Plan) float64 { return ms(p.Predicted.Total) / b }
			_ = w.Write([]string{s.model, s.device, s.link, set, strconv.Itoa(bestK), best.Codec, f1(b),
				strconv.Itoa(pn.K), f1(ms(pn.Predicted.Total)), f3(reg(pn)),
				strconv.Itoa(pd.K), f1(ms(pd.Predicted.Total)), f3(reg(pd)),
				strconv.Itoa(pa.K), pa.Codec, f1(ms(pa.Predicted.Total)), f3(reg(pa)), strconv.Itoa(cuts)})
			fmt.Printf("| %s | %s | %s | %s | %s | %.1f | %s | %.3f | %s | %.3f | %s | %.3f |\n", s.model, s.device, s.link, set,
				cutName(bestK, best.Codec, s.n), b, cutName(pn.K, pn.Codec, s.n), reg(pn), cutName(pd.K, pd.Codec, s.n), reg(pd),
				cutName(pa.K, pa.Codec, s.n), reg(pa))
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "peers: wrote", path)
	return nil
}

func cutName(k int, codec string, n int) string {
	switch k {
	case n:
		return fmt.Sprintf("edge-only (%d)", k)
	case -1:
		return "DAG set " + codec
	}
	if codec == "raw" || codec == "" {
		return strconv.Itoa(k)
	}
	return strconv.Itoa(k) + "/" + codec
}

func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }
func f3(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }

func split(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

// emulated is one model × link of a schedq run: the median measured latency
// of each forced prefix cut, and of auto.
type emulated struct {
	cut      map[int]float64
	codec    map[int]string
	auto     float64
	autoPlan string
	autoK    int
}

func readMeasured(files []string, n map[string]int) (map[string]*emulated, error) {
	res := map[string]*emulated{}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(rows) == 0 {
			continue
		}
		col := map[string]int{}
		for i, h := range rows[0] {
			col[h] = i
		}
		for _, need := range []string{"model", "link", "policy", "cut", "codec", "measured_ms"} {
			if _, ok := col[need]; !ok {
				return nil, fmt.Errorf("%s: no column %q (not a schedq-requests CSV)", path, need)
			}
		}
		for _, r := range rows[1:] {
			key := r[col["model"]] + "/" + r[col["link"]]
			e := res[key]
			if e == nil {
				e = &emulated{cut: map[int]float64{}, codec: map[int]string{}}
				res[key] = e
			}
			v, err := strconv.ParseFloat(r[col["measured_ms"]], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			k, err := strconv.Atoi(r[col["cut"]])
			if err != nil {
				continue // a non-prefix (DAG) plan
			}
			switch pol := r[col["policy"]]; {
			case pol == "auto":
				e.auto, e.autoPlan, e.autoK = v, cutName(k, r[col["codec"]], n[r[col["model"]]]), k
			case pol == "edge-only", pol == "cloud-only", strings.HasPrefix(pol, "fixed:"):
				e.cut[k], e.codec[k] = v, r[col["codec"]]
			}
		}
	}
	return res, nil
}

// reportMeasured prices the peers' cuts and auto by what the emulated
// cluster measured for them (bench/schedq, forced cuts, best codec).
func reportMeasured(settings []*setting, chosen map[string]map[string]int, files []string, out string) error {
	n := map[string]int{}
	for _, s := range settings {
		n[s.model] = s.n
	}
	meas, err := readMeasured(files, n)
	if err != nil {
		return err
	}
	path := filepath.Join(out, "peers-measured.csv")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	_ = w.Write([]string{"model", "device", "link", "best_k", "best_codec", "best_ms",
		"neurosurgeon_k", "neurosurgeon_ms", "neurosurgeon_regret",
		"dads_k", "dads_ms", "dads_regret", "auto_plan", "auto_ms", "auto_regret", "auto_cut_forced_regret", "cuts_measured"})
	fmt.Println()
	fmt.Println("Emulated cluster (bench/schedq medians):")
	fmt.Println()
	fmt.Println("| model | link | best forced cut | best ms | Neurosurgeon cut | ms | regret | DADS cut | ms | regret | auto plan | ms | regret | auto's cut forced |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range settings {
		e := meas[s.model+"/"+s.link]
		if e == nil || len(e.cut) == 0 {
			continue
		}
		bestK, best := -1, 0.0
		for k, v := range e.cut {
			if bestK < 0 || v < best || (v == best && k < bestK) {
				bestK, best = k, v
			}
		}
		cell := func(k int) (string, string, string) {
			v, ok := e.cut[k]
			if !ok {
				return cutName(k, "", s.n), "–", "–"
			}
			return cutName(k, e.codec[k], s.n), f1(v), f3(v / best)
		}
		nk, nv, nr := cell(chosen["neurosurgeon"][s.id()])
		dk, dv, dr := cell(chosen["dads"][s.id()])
		av, ar, af := "–", "–", "–"
		if e.auto > 0 {
			av, ar = f1(e.auto), f3(e.auto/best)
			_, _, af = cell(e.autoK)
		}
		_ = w.Write([]string{s.model, s.device, s.link, strconv.Itoa(bestK), e.codec[bestK], f1(best),
			strconv.Itoa(chosen["neurosurgeon"][s.id()]), nv, nr, strconv.Itoa(chosen["dads"][s.id()]), dv, dr,
			e.autoPlan, av, ar, af, strconv.Itoa(len(e.cut))})
		fmt.Printf("| %s | %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.model, s.link,
			cutName(bestK, e.codec[bestK], s.n), best, nk, nv, nr, dk, dv, dr, e.autoPlan, av, ar, af)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "peers: wrote", path)
	return nil
}
