package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/edgesplit/edgesplit/sim"
	"gonum.org/v1/plot/plotter"
	"gopkg.in/yaml.v3"
)

// buildScenario validates s by round-tripping it through YAML, the way
// scenario files are read.
func buildScenario(s *sim.Scenario) (*sim.Scenario, error) {
	b, err := yaml.Marshal(s)
	if err != nil {
		return nil, err
	}
	return sim.ParseScenario(bytes.NewReader(b), s.Name)
}

// resolver serves the engine-measured zoo profiles to sim.
func (e *env) resolver(ctx context.Context) func(string) (sim.Model, error) {
	cache := map[string]sim.Model{}
	return func(name string) (sim.Model, error) {
		if m, ok := cache[name]; ok {
			return m, nil
		}
		m, err := e.loadModel(ctx, name)
		if err == nil {
			cache[name] = m
		}
		return m, err
	}
}

// figEnergy draws edge energy per request vs uplink bandwidth per policy,
// from sim's power model (one device, no contention).
func figEnergy(ctx context.Context, e *env) error {
	codecs, err := e.loadCodecs(ctx)
	if err != nil {
		return err
	}
	for _, name := range e.models { // profile first, outside the progress bar
		if _, err := e.loadModel(ctx, name); err != nil {
			return err
		}
	}
	bws := logSpace(0.1, 1000, 17)
	policies := []string{"edge-only", "cloud-only", "neurosurgeon", "auto"}
	f, err := os.Create(filepath.Join(e.out, "energy-vs-bandwidth.csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"model", "up_mbps", "policy", "energy_mj_per_request", "mean_latency_ms", "offloaded_fraction"})
	resolve := e.resolver(ctx)
	pb := bar(len(e.models)*len(bws)*len(policies), "energy sweep")
	for _, name := range e.models {
		en := map[string]plotter.XYs{}
		for _, bw := range bws {
			for _, pn := range policies {
				s, err := buildScenario(&sim.Scenario{
					Name: "energy", Seed: 1, Duration: sim.Duration(50 * time.Second), Policy: pn,
					Estimation: sim.EstimationSpec{Interval: sim.Duration(time.Second)},
					Codecs:     codecSpecs(codecs),
					Models:     []sim.ModelSpec{{Name: name}},
					Edges: []sim.EdgeSpec{{Name: "dev", Count: 1, Model: name, Slowdown: e.edge,
						Link:     sim.LinkSpec{UpMbps: bw, DownMbps: bw * e.downMult, Delay: sim.Duration(time.Duration(e.rttMs / 2 * float64(time.Millisecond)))},
						Arrivals: sim.Arrivals{Process: "periodic", FPS: 0.1}}},
					Clouds: []sim.CloudSpec{{Name: "cloud", Count: 1, Workers: 4, Slowdown: e.cloud}},
				})
				if err != nil {
					return err
				}
				sum, err := sim.Run(ctx, s, sim.Config{Resolve: resolve})
				if err != nil {
					return fmt.Errorf("energy %s %s %.2f: %w", name, pn, bw, err)
				}
				en[pn] = append(en[pn], plotter.XY{X: bw, Y: sum.EnergyPerRequestMJ})
				w.Write([]string{name, ff(bw), pn, ff(sum.EnergyPerRequestMJ), ff(ms(sum.Mean)), ff(float64(sum.Offloaded) / float64(max(sum.Requests, 1)))})
				pb.Add(1)
			}
		}
		var ss []series
		for _, pn := range policies {
			ss = append(ss, series{pn, en[pn]})
		}
		title := fmt.Sprintf("predicted (sim power model): %s edge energy per request, edge %g×", name, e.edge)
		if err := linePlot(filepath.Join(e.out, "energy-"+name+".png"), title, "uplink bandwidth (Mbit/s)", "predicted edge energy per request (mJ)", true, true, ss); err != nil {
			return err
		}
	}
	pb.Finish()
	w.Flush()
	return w.Error()
}

// figLoad draws the DADS heavy-load figure: throughput and p99 latency as
// the number of devices sharing one cloud server grows, per policy (sim).
func figLoad(ctx context.Context, e *env, modelName, link string, rate float64, workers int, dur time.Duration) error {
	codecs, err := e.loadCodecs(ctx)
	if err != nil {
		return err
	}
	if _, err := e.loadModel(ctx, modelName); err != nil {
		return err
	}
	devices := []int{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}
	policies := []string{"edge-only", "cloud-only", "neurosurgeon", "dads", "auto"}
	f, err := os.Create(filepath.Join(e.out, "load-sweep.csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"model", "link", "devices", "policy", "requests", "throughput_rps", "mean_ms", "p99_ms", "cloud_util", "offloaded_fraction", "wall_ms"})
	resolve := e.resolver(ctx)
	thr, p99 := map[string]plotter.XYs{}, map[string]plotter.XYs{}
	pb := bar(len(devices)*len(policies), "load sweep")
	for _, n := range devices {
		for _, pn := range policies {
			s, err := buildScenario(&sim.Scenario{
				Name: "load", Seed: 1, Duration: sim.Duration(dur), Policy: pn,
				Estimation: sim.EstimationSpec{Interval: sim.Duration(250 * time.Millisecond), Lag: sim.Duration(250 * time.Millisecond)},
				Codecs:     codecSpecs(codecs),
				Models:     []sim.ModelSpec{{Name: modelName}},
				Edges: []sim.EdgeSpec{{Name: "dev", Count: n, Model: modelName, Slowdown: e.edge,
					Link: sim.LinkSpec{Profile: link}, Arrivals: sim.Arrivals{Process: "poisson", Rate: rate}}},
				Backhaul: sim.BackhaulSpec{Delay: sim.Duration(2 * time.Millisecond)},
				Clouds:   []sim.CloudSpec{{Name: "cloud", Count: 1, Workers: workers, Slowdown: e.cloud}},
			})
			if err != nil {
				return err
			}
			t0 := time.Now()
			sum, err := sim.Run(ctx, s, sim.Config{Resolve: resolve})
			if err != nil {
				return fmt.Errorf("load %d %s: %w", n, pn, err)
			}
			wall := time.Since(t0)
			thr[pn] = append(thr[pn], plotter.XY{X: float64(n), Y: sum.Throughput})
			p99[pn] = append(p99[pn], plotter.XY{X: float64(n), Y: ms(sum.P99)})
			w.Write([]string{modelName, link, strconv.Itoa(n), pn, strconv.FormatInt(sum.Requests, 10), ff(sum.Throughput), ff(ms(sum.Mean)), ff(ms(sum.P99)),
				ff(sum.CloudUtilisation), ff(float64(sum.Offloaded) / float64(max(sum.Requests, 1))), ff(ms(wall))})
			pb.Add(1)
		}
	}
	pb.Finish()
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	var ts, ps []series
	for _, pn := range policies {
		ts = append(ts, series{pn, thr[pn]})
		ps = append(ps, series{pn, p99[pn]})
	}
	sub := fmt.Sprintf("(%s, %s, %g req/s each, 1 cloud × %d workers)", modelName, link, rate, workers)
	if err := linePlot(filepath.Join(e.out, "load-throughput.png"), "predicted (sim): throughput vs devices "+sub, "devices", "predicted completed requests per second", true, true, ts); err != nil {
		return err
	}
	return linePlot(filepath.Join(e.out, "load-p99.png"), "predicted (sim): p99 latency vs devices "+sub, "devices", "predicted p99 latency (ms)", true, true, ps)
}
