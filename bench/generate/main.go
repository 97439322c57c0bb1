// Command generate measures token-by-token generation split between an
// edge and a cloud on the emulated in-process cluster (issue 16, Must
// show: tokens/s vs edge-only and cloud-only on two link profiles).
//
// For each model and link profile it starts one edge (an emulated slow
// device) and one cloud (real gossip, QUIC with mutual TLS, the edge's
// access link emulated), then generates the same prompt at every single
// cut, with the prefill in the cloud and the decode on the edge, and as
// the edge plans it, in interleaved rounds (-reps; medians kept). Every
// run must give the unsplit model's tokens (greedy), or the command
// fails. Results: a CSV in -out and a markdown table on stdout.
//
//	go run ./bench/generate
//	go run ./bench/generate -models gpt-tiny,gpt-small,gpt-medium -links lte,5g-midband -reps 3
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/edgesplit/edgesplit/internal/stats"
	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/transport/linkem"
)

// Larger GPTs than gpt-tiny over the same tokenizer (seeded weights):
// gpt-small, 4 blocks of width 256 (3.2 M parameters), and gpt-medium, 8
// blocks of width 512 (25 M), both with a context of 128, whose steps on a
// slow edge take as long as a radio round trip.
var configs = map[string]zoo.GPTConfig{
	"gpt-small":  {Vocab: lm.VocabSize, Context: 128, Dim: 256, Depth: 4, Heads: 8, MLP: 1024},
	"gpt-medium": {Vocab: lm.VocabSize, Context: 128, Dim: 512, Depth: 8, Heads: 8, MLP: 2048},
}

const prompt = "A distributed system is one in which the failure of a computer you didn't even know existed can render your own computer unusable. "

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

type row struct {
	model, link, plan string
	cut, decode       int
	firstMS, tps      float64
	upPerToken        float64
	down              int64
	identical         bool
}

func run() error {
	models := flag.String("models", "gpt-tiny,gpt-medium", "models: gpt-tiny (zoo, seeded), gpt-small (4 blocks of width 256), gpt-medium (8 blocks of width 512), or an ONNX file of a trained one (bench/train/gpt.sh)")
	links := flag.String("links", "lte,5g-midband", "link profiles (linkem names)")
	device := flag.String("device", "raspberry-pi-4", "edge device profile (or slowdown:F)")
	tokens := flag.Int("tokens", 96, "tokens to generate per run")
	reps := flag.Int("reps", 3, "interleaved rounds (medians kept)")
	out := flag.String("out", "docs/figures", "folder for generate-split.csv")
	flag.Parse()
	dev, err := node.ParseDevice(*device)
	if err != nil {
		return err
	}
	if *reps < 1 || *tokens < 2 {
		return errors.New("-reps must be ≥ 1 and -tokens ≥ 2")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var rows []row
	for _, name := range strings.Split(*models, ",") {
		m, err := loadModel(name)
		if err != nil {
			return err
		}
		want, err := unsplit(ctx, m, *tokens)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(*links, ",") {
			r, err := measure(ctx, m, m.ID, l, dev, *tokens, *reps, want)
			if err != nil {
				return fmt.Errorf("%s over %s: %w", name, l, err)
			}
			rows = append(rows, r...)
		}
	}
	if err := writeCSV(filepath.Join(*out, "generate-split.csv"), rows); err != nil {
		return err
	}
	fmt.Printf("edge %s (slowdown %g), one cloud; prompt %d characters, %d tokens; medians of %d rounds\n\n", dev.Name, dev.Slowdown, len(prompt), *tokens, *reps)
	fmt.Println("| model | link | plan | cuts (prefill/decode) | first token | tokens/s | B up per token | B down | tokens = unsplit |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %d/%d | %.0f ms | %.1f | %.0f | %d | %v |\n", r.model, r.link, r.plan, r.cut, r.decode, r.firstMS, r.tps, r.upPerToken, r.down, r.identical)
	}
	return nil
}

func loadModel(name string) (*node.Model, error) {
	var g *model.Graph
	var err error
	switch c, ok := configs[name]; {
	case ok:
		g, err = zoo.BuildGPT(name, c, 1)
	case strings.HasSuffix(name, ".onnx"): // a trained model, e.g. bench/train/gpt.sh's
		g, err = onnx.Load(name)
	default:
		g, err = zoo.Build(name, 1)
	}
	if err != nil {
		return nil, err
	}
	if _, err := zoo.GPTConfigOf(g); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	id := name
	if strings.HasSuffix(name, ".onnx") {
		id = strings.TrimSuffix(filepath.Base(name), ".onnx") + "-trained"
	}
	return node.NewModel(id, "", g, nil)
}

func unsplit(ctx context.Context, m *node.Model, n int) ([]int, error) {
	l, err := lm.New(m.Graph, model.Options{})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Generate(ctx, lm.Encode(prompt), n, nil)
}

// measure runs every plan over one link and returns the medians.
func measure(ctx context.Context, m *node.Model, name, link string, dev node.Device, tokens, reps int, want []int) ([]row, error) {
	p, err := linkem.LookupProfile(link)
	if err != nil {
		return nil, err
	}
	c, err := zoo.GPTConfigOf(m.Graph)
	if err != nil {
		return nil, err
	}
	lc, err := cluster.Start(ctx, cluster.Config{
		Edges: 1, Clouds: 1, Models: []*node.Model{m}, EdgeDevice: dev, Uplink: p.Up, Downlink: p.Down,
		GossipKey: []byte("0123456789abcdef"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Tune: func(c *node.Config) { c.ProfileRuns = 3; c.Hedge = -1 },
	})
	if err != nil {
		return nil, err
	}
	defer lc.Kill()
	edge := lc.Edges[0]
	type plan struct {
		label       string
		cut, decode int
	}
	plans := []plan{{"edge-only", c.Depth, c.Depth}, {"cloud-only", 0, 0}}
	// Single cuts inside the model: each one up to 4 blocks, else the
	// middle one.
	for k := 1; k < c.Depth; k++ {
		if c.Depth <= 4 || k == c.Depth/2 {
			plans = append(plans, plan{"split", k, k})
		}
	}
	plans = append(plans, plan{"cloud prefill, edge decode", 0, c.Depth}, plan{"planned", -1, -1})
	// A first, unmeasured generation warms up the session and profiles.
	if _, err := edge.Generate(ctx, node.GenerateRequest{Prompt: prompt, Tokens: 4, Cut: 0}, nil); err != nil {
		return nil, err
	}
	samples := make([][]*node.GenerateResult, len(plans))
	for range reps {
		for i, pl := range plans {
			res, err := edge.Generate(ctx, node.GenerateRequest{Prompt: prompt, Tokens: tokens, Cut: pl.cut, DecodeCut: pl.decode}, nil)
			if err != nil {
				return nil, fmt.Errorf("%s %d/%d: %w", pl.label, pl.cut, pl.decode, err)
			}
			if !slices.Equal(res.Tokens, want) {
				return nil, fmt.Errorf("%s %d/%d generated %q, the unsplit model %q", pl.label, res.Cut, res.DecodeCut, res.Text, lm.Decode(want))
			}
			samples[i] = append(samples[i], res)
		}
	}
	var rows []row
	for i, pl := range plans {
		ss := samples[i]
		med := func(f func(*node.GenerateResult) float64) float64 {
			v := make([]float64, len(ss))
			for j, s := range ss {
				v[j] = f(s)
			}
			return stats.Median(v)
		}
		last := ss[len(ss)-1]
		rows = append(rows, row{model: name, link: link, plan: pl.label, cut: last.Cut, decode: last.DecodeCut,
			firstMS: med(func(r *node.GenerateResult) float64 { return r.FirstTokenMS }), tps: med(func(r *node.GenerateResult) float64 { return r.TokensPerSec }),
			upPerToken: med(func(r *node.GenerateResult) float64 { return r.BytesPerToken }), down: last.BytesDown, identical: true})
		fmt.Fprintf(os.Stderr, "%s %s %s: cuts %d/%d, first token %.0f ms, %.1f tokens/s\n", name, link, pl.label, last.Cut, last.DecodeCut, rows[len(rows)-1].firstMS, rows[len(rows)-1].tps)
	}
	return rows, nil
}

func writeCSV(path string, rows []row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"model", "link", "plan", "prefill_cut", "decode_cut", "first_token_ms", "tokens_per_s", "bytes_up_per_token", "bytes_down", "tokens_equal_unsplit"})
	for _, r := range rows {
		_ = w.Write([]string{r.model, r.link, r.plan, strconv.Itoa(r.cut), strconv.Itoa(r.decode), strconv.FormatFloat(r.firstMS, 'f', 1, 64),
			strconv.FormatFloat(r.tps, 'f', 2, 64), strconv.FormatFloat(r.upPerToken, 'f', 1, 64), strconv.FormatInt(r.down, 10), strconv.FormatBool(r.identical)})
	}
	w.Flush()
	return errors.Join(w.Error(), f.Close())
}
