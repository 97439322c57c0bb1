package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
	"gonum.org/v1/plot/plotter"
)

// figLatency draws the Neurosurgeon figure: predicted end-to-end latency of
// each policy vs uplink bandwidth for each model, from the cost model fed
// with engine-measured profiles (edge = reference × e.edge, cloud =
// reference × e.cloud), plus the cut auto chooses vs bandwidth.
func figLatency(ctx context.Context, e *env) error {
	codecs, err := e.loadCodecs(ctx)
	if err != nil {
		return err
	}
	bws := logSpace(0.1, 1000, 25)
	policies := []string{"edge-only", "cloud-only", "neurosurgeon", "dads", "auto"}
	f, err := os.Create(filepath.Join(e.out, "latency-vs-bandwidth.csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"model", "up_mbps", "down_mbps", "rtt_ms", "policy", "latency_ms", "cut", "nodes", "codec", "wire_bytes"})
	var cutSeries []series
	for _, name := range e.models {
		m, err := e.loadModel(ctx, name)
		if err != nil {
			return err
		}
		edge := scaled(m.Profile, e.edge, "edge")
		cloud := scaled(m.Profile, e.cloud, "cloud")
		n := len(m.Profile.Nodes)
		lat := map[string]plotter.XYs{}
		var cuts plotter.XYs
		for _, bw := range bws {
			in := &scheduler.Inputs{Edge: edge, DAG: m.DAG, Codecs: codecs, Clouds: []scheduler.CloudInput{{
				ID: "cloud", Profile: cloud,
				Link: scheduler.LinkEstimate{RTT: time.Duration(e.rttMs * float64(time.Millisecond)), Up: bw * 1e6 / 8, Down: bw * e.downMult * 1e6 / 8},
			}}}
			for _, pn := range policies {
				pol, err := scheduler.ParsePolicy(pn)
				if err != nil {
					return err
				}
				pl, err := pol.Plan(in)
				if err != nil {
					return fmt.Errorf("%s %s at %.2f Mbit/s: %w", name, pn, bw, err)
				}
				y := ms(pl.Predicted.Total)
				lat[pn] = append(lat[pn], plotter.XY{X: bw, Y: y})
				k := pl.K
				if k < 0 {
					k = len(pl.Head) // dads edge set size
				}
				if pn == "auto" {
					cuts = append(cuts, plotter.XY{X: bw, Y: float64(k) / float64(n)})
				}
				w.Write([]string{name, ff(bw), ff(bw * e.downMult), ff(e.rttMs), pn, ff(y), strconv.Itoa(pl.K), strconv.Itoa(n), pl.Codec, strconv.FormatInt(pl.WireBytes, 10)})
			}
		}
		var ss []series
		for _, pn := range policies {
			ss = append(ss, series{pn, lat[pn]})
		}
		title := fmt.Sprintf("predicted (cost model): %s, edge %g× reference, cloud %g×, RTT %g ms", name, e.edge, e.cloud, e.rttMs)
		if err := linePlot(filepath.Join(e.out, "latency-"+name+".png"), title, "uplink bandwidth (Mbit/s)", "predicted latency (ms)", true, true, ss); err != nil {
			return err
		}
		cutSeries = append(cutSeries, series{name, cuts})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", f.Name())
	return linePlot(filepath.Join(e.out, "cut-vs-bandwidth.png"), "predicted (cost model): the cut auto plans vs uplink bandwidth",
		"uplink bandwidth (Mbit/s)", "fraction of nodes on the edge (0 = all on cloud, 1 = all on edge)", true, false, cutSeries)
}

func ff(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
