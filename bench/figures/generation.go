package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/edgesplit/edgesplit/sim"
	"gonum.org/v1/plot/plotter"
)

// genCase is one model and edge of the generation figure.
type genCase struct {
	profile        string
	slowdown       float64
	prompt, tokens int
}

// figGeneration draws time to first token and tokens/s vs uplink bandwidth
// per policy for token-by-token generation in sim (SimulateGeneration:
// analytic transformer costs on the reference device, the edge slowed
// down, the cloud at the reference), for GPT-2-small-class at the edge
// slowdown and at laptopSlow, and gpt-tiny at the edge slowdown, over the
// RTT and downlink/uplink ratio of link profile linkName.
func figGeneration(e *env, linkName string, laptopSlow float64) error {
	lp, ok := sim.LinkProfileNamed(linkName)
	if !ok {
		return fmt.Errorf("unknown link profile %q (known: %v)", linkName, sim.LinkProfileNames())
	}
	rtt := time.Duration(2 * lp.DelayMs * float64(time.Millisecond))
	ratio := lp.DownMbps / lp.UpMbps
	cases := []genCase{{"gpt2-small", e.edge, 256, 128}, {"gpt2-small", laptopSlow, 256, 128}, {"gpt-tiny", e.edge, 64, 128}}
	policies := []string{sim.GenerationEdgeOnly, sim.GenerationCloudOnly, sim.GenerationSingleCut, sim.GenerationSplit, sim.GenerationAuto}
	bws := logSpace(0.1, 1000, 25)
	f, err := os.Create(filepath.Join(e.out, "generation-vs-bandwidth.csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"model", "edge_slowdown", "prompt", "tokens", "up_mbps", "down_mbps", "rtt_ms", "policy", "prefill_cut", "decode_cut",
		"ttft_ms", "tokens_per_s", "total_ms", "predicted_total_ms", "prefills", "bytes_up", "bytes_down", "bytes_per_token"})
	for _, c := range cases {
		p, err := sim.GenerationProfileNamed(c.profile, c.slowdown)
		if err != nil {
			return err
		}
		ttft, tps := map[string]plotter.XYs{}, map[string]plotter.XYs{}
		for _, bw := range bws {
			link := sim.GenerationLink{UpMbps: bw, DownMbps: bw * ratio, RTT: rtt}
			for _, pol := range policies {
				r, err := sim.SimulateGeneration(sim.Generation{Profile: p, Link: link, Prompt: c.prompt, Tokens: c.tokens, Policy: pol})
				if err != nil {
					return fmt.Errorf("%s at %.2f Mbit/s, %s: %w", c.profile, bw, pol, err)
				}
				ttft[pol] = append(ttft[pol], plotter.XY{X: bw, Y: ms(r.FirstToken)})
				tps[pol] = append(tps[pol], plotter.XY{X: bw, Y: r.TokensPerSec})
				w.Write([]string{c.profile, ff(c.slowdown), strconv.Itoa(c.prompt), strconv.Itoa(c.tokens), ff(bw), ff(bw * ratio), ff(ms(rtt)), pol,
					strconv.Itoa(r.PrefillCut), strconv.Itoa(r.DecodeCut), ff(ms(r.FirstToken)), ff(r.TokensPerSec), ff(ms(r.Total)),
					ff(ms(r.Predicted.Total)), strconv.Itoa(r.Prefills), strconv.FormatInt(r.BytesUp, 10), strconv.FormatInt(r.BytesDown, 10), ff(r.BytesPerToken)})
			}
		}
		var st, sp []series
		for _, pol := range policies {
			st = append(st, series{pol, ttft[pol]})
			sp = append(sp, series{pol, tps[pol]})
		}
		tag := fmt.Sprintf("%s-edge%g", c.profile, c.slowdown)
		what := fmt.Sprintf("sim: %s, edge %g× reference, prompt %d, %d tokens, RTT %g ms (%s), down %.2g× up", c.profile, c.slowdown, c.prompt, c.tokens, ms(rtt), linkName, ratio)
		if err := linePlot(filepath.Join(e.out, "generation-ttft-"+tag+".png"), what, "uplink bandwidth (Mbit/s)", "time to first token (ms)", true, true, st); err != nil {
			return err
		}
		if err := linePlot(filepath.Join(e.out, "generation-tps-"+tag+".png"), what, "uplink bandwidth (Mbit/s)", "tokens/s after the first", true, false, sp); err != nil {
			return err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", f.Name())
	return nil
}
