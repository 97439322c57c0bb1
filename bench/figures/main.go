// Command figures regenerates the research figures of docs/benchmarks.md:
// each subcommand writes its CSV and PNG files into docs/figures/.
//
//	go run ./bench/figures latency    # latency vs uplink bandwidth per policy + chosen cut (cost model)
//	go run ./bench/figures energy     # edge energy vs uplink bandwidth (sim's power model)
//	go run ./bench/figures load       # throughput and p99 vs devices per cloud (sim)
//	go run ./bench/figures codec      # codec presets: ratio vs top-1 agreement (cutbench, MNIST)
//	go run ./bench/figures fidelity   # the demo scenario in sim and on the emulated cluster
//	go run ./bench/figures generation # LM generation: first token and tokens/s vs uplink bandwidth (sim)
//	go run ./bench/figures all
//
// Model profiles are measured once with the engine (partition.Measure) on
// this machine, the reference device, and cached as JSON in bench/out/.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "figures:", err)
		os.Exit(1)
	}
}

func run() error {
	e := &env{}
	fs := flag.NewFlagSet("figures", flag.ContinueOnError)
	fs.StringVar(&e.out, "out", "docs/figures", "folder for CSV and PNG files")
	fs.StringVar(&e.cache, "cache", "bench/out", "folder for cached profiles")
	fs.IntVar(&e.runs, "runs", 3, "profiling runs per node (median kept)")
	fs.Float64Var(&e.edge, "edge-slowdown", 8, "edge device vs this machine (raspberry-pi-4 = 8)")
	fs.Float64Var(&e.cloud, "cloud-slowdown", 1, "cloud server vs this machine (1 = this machine, as the emulated cluster)")
	fs.Float64Var(&e.rttMs, "rtt", 20, "round-trip time in ms for the bandwidth sweeps")
	fs.Float64Var(&e.downMult, "down", 4, "downlink = this × uplink in the bandwidth sweeps")
	models := fs.String("models", "alexnet,vgg16,resnet18,mobilenetv2,seed-cnn-trained", "models for latency and energy")
	loadModel := fs.String("load-model", "resnet18", "model of the load sweep")
	loadLink := fs.String("load-link", "5g-midband", "link profile of the load sweep")
	loadRate := fs.Float64("load-rate", 1, "requests per second per device in the load sweep")
	loadWorkers := fs.Int("load-workers", 8, "cloud workers in the load sweep")
	loadDur := fs.Duration("load-duration", time.Minute, "simulated time per load point")
	samples := fs.Int("samples", 500, "MNIST test images for the codec figure")
	fidModel := fs.String("fidelity-model", "mobilenetv2", "model of the sim-vs-emulation run (the demo's)")
	fidPolicy := fs.String("fidelity-policy", "auto", "split policy of the sim-vs-emulation run (auto, or e.g. cloud-only to take the link estimator out)")
	fidDevice := fs.String("fidelity-device", "raspberry-pi-4", "edge device of the sim-vs-emulation run")
	fs.BoolVar(&e.linkCheck, "link-check", true, "fidelity: also force cloud-only with every codec on every link and compare network time with sim's model")
	perPhase := fs.Int("per-phase", 10, "requests per link phase in the sim-vs-emulation run")
	fidLag := fs.Duration("fidelity-lag", time.Second, "sim-vs-emulation: sim's device sees the true link this old (estimation source sampled; the edge's estimate follows a change in about a second); 0 = it learns its link from its transfers and probes by the edge's rules (source learned)")
	genLink := fs.String("gen-link", "lte", "generation: link profile whose RTT and downlink/uplink ratio the sweep keeps")
	genLaptop := fs.Float64("gen-laptop", 1.5, "generation: a second, laptop-class edge slowdown for gpt2-small")
	fidPeriod := fs.Duration("fidelity-period", 0, "sim-vs-emulation: one request every period (0: back to back, as `edgesplit demo` sends them; sim then uses closed-loop arrivals)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: figures [flags] latency|energy|load|codec|fidelity|generation|all ...")
		fs.PrintDefaults()
	}
	// Flags may come before or after the subcommands.
	var cmds []string
	args := os.Args[1:]
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) > 0 {
			cmds = append(cmds, args[0])
			args = args[1:]
		}
	}
	if len(cmds) == 0 {
		fs.Usage()
		return fmt.Errorf("no figure named")
	}
	if len(cmds) == 1 && cmds[0] == "all" {
		cmds = []string{"latency", "energy", "load", "codec", "fidelity", "generation"}
	}
	for _, m := range strings.Split(*models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			e.models = append(e.models, m)
		}
	}
	if e.edge <= 0 || e.cloud <= 0 || e.rttMs < 0 || e.downMult <= 0 || e.runs <= 0 {
		return fmt.Errorf("slowdowns, -runs and -down must be positive and -rtt non-negative")
	}
	if err := os.MkdirAll(e.out, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for _, c := range cmds {
		start := time.Now()
		var err error
		switch c {
		case "latency":
			err = figLatency(ctx, e)
		case "energy":
			err = figEnergy(ctx, e)
		case "load":
			err = figLoad(ctx, e, *loadModel, *loadLink, *loadRate, *loadWorkers, *loadDur)
		case "codec":
			err = figCodec(ctx, e, *samples)
		case "fidelity":
			err = figFidelity(ctx, e, *fidModel, *fidDevice, *fidPolicy, *perPhase, *fidPeriod, *fidLag)
		case "generation":
			err = figGeneration(e, *genLink, *genLaptop)
		default:
			return fmt.Errorf("unknown figure %q (want latency, energy, load, codec, fidelity, generation or all)", c)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		fmt.Fprintf(os.Stderr, "%s done in %v\n", c, time.Since(start).Round(time.Millisecond))
	}
	return nil
}
