package partition

import (
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model/zoo"
)

// TestAnalyticGPTNodes: the node counts per part are those of gpt-tiny's
// simplified graph.
func TestAnalyticGPTNodes(t *testing.T) {
	g, err := zoo.Skeleton("gpt-tiny")
	if err != nil {
		t.Fatal(err)
	}
	c := zoo.GPTTinyConfig
	var block int
	for _, nd := range g.Nodes {
		if strings.HasPrefix(nd.Name, zoo.BlockPrefix(1)) {
			block++
		}
	}
	block += 2 // the residual Adds ("addN") carry no block prefix
	if block != gptBlockNodes {
		t.Errorf("block 1 has %d nodes, the analytic count is %d", block, gptBlockNodes)
	}
	if want := gptEmbedNodes + c.Depth*gptBlockNodes + gptHeadNodes; len(g.Nodes) != want {
		t.Errorf("gpt-tiny has %d nodes, the analytic parts %d", len(g.Nodes), want)
	}
}

// TestAnalyticGPTWork: MACs by the formulas, attention growing with the
// sequence, and a full-window prefill below the engine graph's analytic
// profile (which pads, computes every score and the head on every row) but
// of its order.
func TestAnalyticGPTWork(t *testing.T) {
	c := zoo.GPTConfig{Vocab: 50257, Context: 1024, Dim: 768, Depth: 12, Heads: 12, MLP: 3072}
	d, m := 768.0, 3072.0
	for _, tc := range []struct {
		rows int
		macs float64
	}{{1, 4*d*d + 2*d*m + 2*d}, {256, 256*(4*d*d+2*d*m) + 256*257*d}, {1024, 1024*(4*d*d+2*d*m) + 1024*1025*d}} {
		w, err := AnalyticGPTPrefill(c, tc.rows)
		if err != nil {
			t.Fatal(err)
		}
		if w.Block.MACs != tc.macs {
			t.Errorf("prefill of %d rows: %g MACs per block, want %g", tc.rows, w.Block.MACs, tc.macs)
		}
		if w.Head.MACs != d*50257 {
			t.Errorf("prefill head: %g MACs, want the last row's %g", w.Head.MACs, d*50257)
		}
	}
	s0, _ := AnalyticGPTStep(c, 0)
	s1, _ := AnalyticGPTStep(c, 1023)
	if got, want := s1.Block.MACs-s0.Block.MACs, 2*1023*d; got != want {
		t.Errorf("step at 1023 − step at 0: %g MACs per block, want %g", got, want)
	}
	if s1.Block.Latency() <= s0.Block.Latency() {
		t.Errorf("a later step is not slower: %v ≤ %v", s1.Block.Latency(), s0.Block.Latency())
	}
	if p, _ := AnalyticGPTPrefill(c, 1); p.Block.MACs != s0.Block.MACs {
		t.Errorf("a 1-row prefill (%g MACs) differs from the step at 0 (%g)", p.Block.MACs, s0.Block.MACs)
	}

	tiny := zoo.GPTTinyConfig
	g, err := zoo.Skeleton("gpt-tiny")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Analytic(g)
	if err != nil {
		t.Fatal(err)
	}
	var engine time.Duration
	for _, n := range p.Nodes {
		engine += n.Latency
	}
	w, err := AnalyticGPTPrefill(tiny, tiny.Context)
	if err != nil {
		t.Fatal(err)
	}
	ours := w.Embed.Latency() + time.Duration(tiny.Depth)*w.Block.Latency() + w.Head.Latency()
	if ours > engine || ours < engine/2 {
		t.Errorf("gpt-tiny full-window prefill %v, the engine graph's analytic profile %v: want within [½, 1]×", ours, engine)
	}
	t.Logf("gpt-tiny prefill of %d rows %v (engine graph %v); step at 32 %v per block", tiny.Context, ours, engine, mustStep(t, tiny, 32).Block.Latency())
}

func mustStep(t *testing.T, c zoo.GPTConfig, pos int) GPTCall {
	w, err := AnalyticGPTStep(c, pos)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestAnalyticGPTErrors(t *testing.T) {
	c := zoo.GPTTinyConfig
	for name, f := range map[string]func() error{
		"rows 0":     func() error { _, err := AnalyticGPTPrefill(c, 0); return err },
		"rows > ctx": func() error { _, err := AnalyticGPTPrefill(c, c.Context+1); return err },
		"pos −1":     func() error { _, err := AnalyticGPTStep(c, -1); return err },
		"pos ctx":    func() error { _, err := AnalyticGPTStep(c, c.Context); return err },
		"bad config": func() error { _, err := AnalyticGPTStep(zoo.GPTConfig{}, 0); return err },
		"heads ∤ width": func() error {
			_, err := AnalyticGPTPrefill(zoo.GPTConfig{Vocab: 9, Context: 8, Dim: 10, Depth: 1, Heads: 3, MLP: 8}, 1)
			return err
		},
	} {
		if err := f(); err == nil || !strings.HasPrefix(err.Error(), "partition: ") {
			t.Errorf("%s: error %v, want one starting with partition:", name, err)
		}
	}
}
