package sim

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/partition"
)

func genProfile(t *testing.T, name string, slow float64) GenerationProfile {
	t.Helper()
	p, err := GenerationProfileNamed(name, slow)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lteLink is LTE's round trip with the given uplink (downlink 4×).
func lteLink(up float64) GenerationLink {
	return GenerationLink{UpMbps: up, DownMbps: 4 * up, RTT: 55 * time.Millisecond}
}

func TestSimulateGeneration(t *testing.T) {
	gpt2 := genProfile(t, "gpt2-small", 8)
	tiny := genProfile(t, "gpt-tiny", 8)
	tests := []struct {
		name  string
		g     Generation
		jumps bool // the window jumps: the plan leaves the later prefills out
		check func(t *testing.T, r GenerationResult)
		cuts  [2]int // want (prefill, decode) cuts; {-1,-1}: any
	}{
		{name: "edge-only sends nothing", g: Generation{Profile: gpt2, Link: lteLink(10), Prompt: 64, Tokens: 16, Policy: GenerationEdgeOnly},
			cuts: [2]int{12, 12}, check: func(t *testing.T, r GenerationResult) {
				if r.BytesUp != 0 || r.BytesDown != 0 || r.BytesPerToken != 0 {
					t.Errorf("edge-only sent %d bytes up, %d down", r.BytesUp, r.BytesDown)
				}
			}},
		{name: "cloud-only sends tokens", g: Generation{Profile: gpt2, Link: lteLink(10), Prompt: 64, Tokens: 16, Policy: GenerationCloudOnly},
			cuts: [2]int{0, 0}, check: func(t *testing.T, r GenerationResult) {
				if want := int64(4*64 + 4*15); r.BytesUp != want {
					t.Errorf("cloud-only sent %d bytes up, want the %d of the token ids", r.BytesUp, want)
				}
			}},
		{name: "single cut on a slow edge is the cloud", g: Generation{Profile: gpt2, Link: lteLink(100), Prompt: 64, Tokens: 16, Policy: GenerationSingleCut},
			cuts: [2]int{0, 0}},
		{name: "split keeps tokens on the device", g: Generation{Profile: gpt2, Link: lteLink(100), Prompt: 64, Tokens: 16, Policy: GenerationSplit},
			cuts: [2]int{-1, -1}, check: func(t *testing.T, r GenerationResult) {
				if r.PrefillCut != r.DecodeCut || r.PrefillCut < 1 || r.PrefillCut > 11 {
					t.Errorf("split planned (%d,%d), want one cut in 1..11", r.PrefillCut, r.DecodeCut)
				}
				if want := int64(4*64*768 + 15*4*768); r.BytesUp != want {
					t.Errorf("split sent %d bytes up, want %d (the window's hidden state, then one per step)", r.BytesUp, want)
				}
			}},
		{name: "auto on a laptop-class edge prefills in the cloud, decodes on the device", g: Generation{Profile: genProfile(t, "gpt2-small", 1.5), Link: lteLink(1000), Prompt: 256, Tokens: 128},
			cuts: [2]int{0, 12}, check: func(t *testing.T, r GenerationResult) {
				if want := int64(generationAnswerBytes + 12*2*4*256*768); r.BytesDown != want {
					t.Errorf("%d bytes down, want the answer and 12 blocks' caches, %d", r.BytesDown, want)
				}
			}},
		{name: "fixed edge prefill hands the caches up", g: Generation{Profile: gpt2, Link: lteLink(100), Prompt: 32, Tokens: 4, Policy: GenerationFixed, PrefillCut: 12, DecodeCut: 3},
			cuts: [2]int{12, 3}, check: func(t *testing.T, r GenerationResult) {
				if want := int64(9*2*4*32*768 + 3*4*768); r.BytesUp != want {
					t.Errorf("%d bytes up, want 9 blocks' caches and 3 steps, %d", r.BytesUp, want)
				}
				if r.FirstToken >= r.Predicted.FirstToken {
					t.Errorf("first token at %v: the device knows it before the caches reach the cloud (predicted %v)", r.FirstToken, r.Predicted.FirstToken)
				}
			}},
		{name: "tiny model stays on the device", g: Generation{Profile: tiny, Link: lteLink(100), Prompt: 32, Tokens: 16, Policy: GenerationAuto},
			cuts: [2]int{2, 2}},
		{name: "tiny model past its context", g: Generation{Profile: tiny, Link: lteLink(10), Prompt: 64, Tokens: 128, Policy: GenerationSplit},
			cuts: [2]int{1, 1}, jumps: true, check: func(t *testing.T, r GenerationResult) {
				if r.Prefills != 5 || r.Steps != 123 {
					t.Errorf("%d prefills and %d steps, want 5 and 123 (lm.Start: 32 kept, 33 per window)", r.Prefills, r.Steps)
				}
			}},
		{name: "trace link", g: Generation{Profile: gpt2, Link: GenerationLink{UpTrace: TraceFromRate(10, 1000), DownTrace: TraceFromRate(40, 1000), RTT: 55 * time.Millisecond}, Prompt: 64, Tokens: 16, Policy: GenerationSplit},
			cuts: [2]int{-1, -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := SimulateGeneration(tc.g)
			if err != nil {
				t.Fatal(err)
			}
			if tc.cuts[0] >= 0 && (r.PrefillCut != tc.cuts[0] || r.DecodeCut != tc.cuts[1]) {
				t.Errorf("planned (%d,%d), want (%d,%d)", r.PrefillCut, r.DecodeCut, tc.cuts[0], tc.cuts[1])
			}
			if len(r.Times) != tc.g.Tokens || r.Prefills+r.Steps != tc.g.Tokens {
				t.Errorf("%d token times, %d prefills + %d steps for %d tokens", len(r.Times), r.Prefills, r.Steps, tc.g.Tokens)
			}
			for i := 1; i < len(r.Times); i++ {
				if r.Times[i] <= r.Times[i-1] {
					t.Fatalf("token %d at %v, not after token %d at %v", i, r.Times[i], i-1, r.Times[i-1])
				}
			}
			if want := float64(tc.g.Tokens-1) / (r.Total - r.FirstToken).Seconds(); math.Abs(r.TokensPerSec-want) > 1e-9*want {
				t.Errorf("%g tokens/s, want %g", r.TokensPerSec, want)
			}
			// The simulation is the cost model's prediction on a fixed link
			// with no window jump; a trace adds packet and millisecond
			// rounding.
			tol := 0.01
			if tc.g.Link.UpTrace != nil {
				tol = 0.05
			}
			if d := math.Abs(float64(r.Total-r.Predicted.Total)) / float64(r.Predicted.Total); !tc.jumps && d > tol {
				t.Errorf("simulated %v, predicted %v: %.2f %% apart, want ≤ %g %%", r.Total, r.Predicted.Total, 100*d, 100*tol)
			} else if tc.jumps && r.Total <= r.Predicted.Total {
				t.Errorf("simulated %v with the window's re-prefills, predicted %v without them: want more", r.Total, r.Predicted.Total)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// TestGenerationCloudBeatsSlowEdge: on a fast link a slow edge's
// generation is faster in the cloud, a fast edge's not far off.
func TestGenerationCloudBeatsSlowEdge(t *testing.T) {
	for _, slow := range []float64{4, 8, 16} {
		p := genProfile(t, "gpt2-small", slow)
		edge, err := SimulateGeneration(Generation{Profile: p, Link: lteLink(100), Prompt: 128, Tokens: 32, Policy: GenerationEdgeOnly})
		if err != nil {
			t.Fatal(err)
		}
		cloud, err := SimulateGeneration(Generation{Profile: p, Link: lteLink(100), Prompt: 128, Tokens: 32, Policy: GenerationCloudOnly})
		if err != nil {
			t.Fatal(err)
		}
		if cloud.Total >= edge.Total || cloud.FirstToken >= edge.FirstToken || cloud.TokensPerSec <= edge.TokensPerSec {
			t.Errorf("edge %g×: cloud-only %v (first %v, %.2f/s), edge-only %v (first %v, %.2f/s): want the cloud faster",
				slow, cloud.Total, cloud.FirstToken, cloud.TokensPerSec, edge.Total, edge.FirstToken, edge.TokensPerSec)
		}
	}
}

// TestGenerationAutoNeverWorse: over links and profiles, auto's total is
// never above a single-cut policy's by more than rounding.
func TestGenerationAutoNeverWorse(t *testing.T) {
	profiles := []GenerationProfile{genProfile(t, "gpt2-small", 8), genProfile(t, "gpt2-small", 1.5), genProfile(t, "gpt-tiny", 8), genProfile(t, "gpt-tiny", 0.5)}
	for _, p := range profiles {
		for _, up := range []float64{0.1, 1, 10, 100, 1000} {
			auto, err := SimulateGeneration(Generation{Profile: p, Link: lteLink(up), Prompt: 48, Tokens: 12})
			if err != nil {
				t.Fatal(err)
			}
			for _, pol := range []string{GenerationEdgeOnly, GenerationCloudOnly, GenerationSingleCut, GenerationSplit} {
				r, err := SimulateGeneration(Generation{Profile: p, Link: lteLink(up), Prompt: 48, Tokens: 12, Policy: pol})
				if err != nil {
					t.Fatal(err)
				}
				if auto.Total > r.Total+time.Duration(auto.Prefills+auto.Steps)*4 { // ns rounding per call
					t.Errorf("%s, edge %g×, %g Mbit/s: auto (%d,%d) %v, %s (%d,%d) %v", p.Name, p.EdgeSlowdown, up,
						auto.PrefillCut, auto.DecodeCut, auto.Total, pol, r.PrefillCut, r.DecodeCut, r.Total)
				}
			}
		}
	}
}

// TestGenerationWindowMatchesDecoder: the simulated calls and the bytes
// crossing a cut are those of partition.GPTDecoder running the real
// gpt-tiny, window jumps included.
func TestGenerationWindowMatchesDecoder(t *testing.T) {
	stages, err := partition.GPTStages(zoo.GPTTiny(1), []int{1}, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range stages {
			s.Close()
		}
	}()
	d, err := partition.NewGPTDecoder(stages)
	if err != nil {
		t.Fatal(err)
	}
	prompt := make([]int, 50)
	for i := range prompt {
		prompt[i] = 33 + i%60
	}
	const n = 60 // two window jumps
	if _, err := d.Generate(context.Background(), prompt, n, nil); err != nil {
		t.Fatal(err)
	}
	r, err := SimulateGeneration(Generation{Profile: genProfile(t, "gpt-tiny", 8), Link: lteLink(10), Prompt: len(prompt), Tokens: n,
		Policy: GenerationFixed, PrefillCut: 1, DecodeCut: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Prefills != d.Prefills || r.Steps != d.Steps || r.BytesUp != d.Crossed[0] {
		t.Errorf("simulated %d prefills, %d steps, %d bytes up; the decoder %d, %d, %d", r.Prefills, r.Steps, r.BytesUp, d.Prefills, d.Steps, d.Crossed[0])
	}
}

func TestSimulateGenerationErrors(t *testing.T) {
	ok := Generation{Profile: genProfile(t, "gpt-tiny", 8), Link: lteLink(10), Prompt: 8, Tokens: 4}
	if _, err := SimulateGeneration(ok); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(g *Generation)
		want string
	}{
		{"no prompt", func(g *Generation) { g.Prompt = 0 }, "prompt of 0 tokens"},
		{"no tokens", func(g *Generation) { g.Tokens = 0 }, "0 tokens to generate"},
		{"too many tokens", func(g *Generation) { g.Tokens = MaxGenerationTokens + 1 }, "tokens to generate"},
		{"no uplink", func(g *Generation) { g.Link.UpMbps = 0 }, "want rates > 0"},
		{"NaN downlink", func(g *Generation) { g.Link.DownMbps = math.NaN() }, "want rates > 0"},
		{"negative RTT", func(g *Generation) { g.Link.RTT = -time.Millisecond }, "RTT ≥ 0"},
		{"negative slowdown", func(g *Generation) { g.Profile.EdgeSlowdown = -1 }, "slowdowns"},
		{"bad config", func(g *Generation) { g.Profile.Config.Heads = 3 }, "multiple of Heads"},
		{"unknown policy", func(g *Generation) { g.Policy = "neurosurgeon" }, `unknown policy "neurosurgeon"`},
		{"fixed cut out of range", func(g *Generation) { g.Policy, g.PrefillCut = GenerationFixed, 3 }, "cuts 3 (prefill)"},
		{"split of one block", func(g *Generation) { g.Profile.Config.Depth = 1; g.Policy = GenerationSplit }, "needs a cut inside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := ok
			tc.edit(&g)
			_, err := SimulateGeneration(g)
			if !errors.Is(err, ErrGeneration) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrGeneration saying %q", err, tc.want)
			}
		})
	}
	if _, err := GenerationProfileNamed("gpt-5", 8); !errors.Is(err, ErrGeneration) || !strings.Contains(err.Error(), "gpt2-small") {
		t.Errorf("unknown profile: %v, want ErrGeneration listing the known ones", err)
	}
}

// TestGenerationCosts: the planner's costs split the model's work: edge
// and cloud add up to the whole at every cut, the edge's part grows with
// the cut, and the bytes are the brief's.
func TestGenerationCosts(t *testing.T) {
	p := genProfile(t, "gpt2-small", 1)
	c, err := p.Costs(100, 10)
	if err != nil {
		t.Fatal(err)
	}
	whole := c.EdgePrefill[c.Blocks]
	for k := 0; k <= c.Blocks; k++ {
		if s := c.EdgePrefill[k] + c.CloudPrefill[k]; absDur(s-whole) > 2 {
			t.Errorf("cut %d: edge %v + cloud %v = %v, the whole model %v", k, c.EdgePrefill[k], c.CloudPrefill[k], s, whole)
		}
		if k > 0 && c.EdgeStep[k] <= c.EdgeStep[k-1] {
			t.Errorf("cut %d: edge step %v not above cut %d's %v", k, c.EdgeStep[k], k-1, c.EdgeStep[k-1])
		}
	}
	if c.PrefillBytes[0] != 400 || c.PrefillBytes[5] != 4*100*768 || c.StepBytes[5] != 4*768 || c.StepBytes[12] != 0 || c.KVBytes != 2*4*100*768 {
		t.Errorf("bytes: prefill %v, step %v, KV %d", c.PrefillBytes, c.StepBytes, c.KVBytes)
	}
}

func absDur(d time.Duration) time.Duration { return max(d, -d) }
