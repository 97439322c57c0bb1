package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/cluster"
	"github.com/edgesplit/edgesplit/transport/linkem"
)

// gptModel is a 3-block GPT over lm's vocabulary (context 32) whose output
// head is scaled so that greedy decoding has clear maxima.
func gptModel(t *testing.T) *node.Model {
	t.Helper()
	g, err := zoo.BuildGPT("gpt-test", zoo.GPTConfig{Vocab: lm.VocabSize, Context: 32, Dim: 32, Depth: 3, Heads: 4, MLP: 64}, 11)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"head.weight", "tok_embed", "pos_embed"} {
		w := g.Initializers[name].Data().([]float32)
		for i := range w {
			w[i] *= 25
		}
	}
	m, err := node.NewModel("gpt", "", g, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func unsplitTokens(t *testing.T, m *node.Model, prompt string, n int) []int {
	t.Helper()
	lmm, err := lm.New(m.Graph, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lmm.Close()
	want, err := lmm.Generate(context.Background(), lm.Encode(prompt), n, nil)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// TestGenerateSplit generates through a real cluster (gossip, QUIC with
// mutual TLS, an emulated LTE uplink) at every cut — cloud-only, after each
// block, edge-only — and planned: every run gives the unsplit model's
// tokens, and per step only one hidden state goes up. Then the cloud a
// generation runs on is killed halfway: the edge replays to the other cloud
// and the generation completes with the same tokens.
func TestGenerateSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	m := gptModel(t)
	lte, err := linkem.LookupProfile("lte")
	if err != nil {
		t.Fatal(err)
	}
	lc, err := cluster.Start(context.Background(), cluster.Config{
		Edges: 1, Clouds: 3, Models: []*node.Model{m},
		EdgeDevice: node.Device{Name: "slow", Slowdown: 4}, Uplink: lte.Up, Downlink: lte.Down,
		GossipKey: []byte("0123456789abcdef"), Logger: quietLogger(),
		Tune: func(c *node.Config) { c.ProfileRuns = 3; c.Hedge = -1 },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lc.Kill)
	edge := lc.Edges[0]
	ctx := context.Background()
	const prompt, tokens = "Edge and cloud, one model: ", 80
	want := unsplitTokens(t, m, prompt, tokens)
	// Pairs of a prefill cut and a decode cut: one cut for both, then
	// prefills in the cloud whose caches come down for the edge to
	// decode blocks [cut, decode) itself (decode 3: the edge decodes
	// alone), then the edge's plan.
	for _, cuts := range [][2]int{{0, 0}, {1, 1}, {2, 2}, {3, 3}, {0, 2}, {1, 3}, {0, 3}, {-1, -1}} {
		cut, decode := cuts[0], cuts[1]
		var events []int
		res, err := edge.Generate(ctx, node.GenerateRequest{Prompt: prompt, Tokens: tokens, Cut: cut, DecodeCut: decode},
			func(e node.GenerateEvent) error { events = append(events, e.Token); return nil })
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if !slices.Equal(res.Tokens, want) || !slices.Equal(events, want) {
			t.Fatalf("cut %d: generated %q, unsplit %q", cut, res.Text, lm.Decode(want))
		}
		if res.Prefills < 2 || res.Prefills+res.Steps != tokens {
			t.Errorf("cut %d: %d prefills, %d steps for %d tokens", cut, res.Prefills, res.Steps, tokens)
		}
		if cut >= 0 && (res.Cut != cut || res.DecodeCut != decode) {
			t.Errorf("asked cuts %d/%d, ran %d/%d", cut, decode, res.Cut, res.DecodeCut)
		}
		if (res.Cut == 3) != (res.BytesUp == 0) || (res.Cut == 3) != (res.Cloud == "") {
			t.Errorf("cut %d: cloud %q, %d bytes up", res.Cut, res.Cloud, res.BytesUp)
		}
		// Caches come down only for blocks the edge decodes but did not
		// prefill: two 32-float rows per position and block, for the ≥ 16
		// positions of each window; otherwise only the answers (≤ 8 B).
		calls := int64(res.Prefills + res.Steps)
		if kv := int64(2 * 4 * 32 * (res.DecodeCut - res.Cut)); kv == 0 && res.BytesDown > 8*calls || kv > 0 && res.BytesDown < 16*kv*int64(res.Prefills) {
			t.Errorf("cuts %d/%d: %d bytes down over %d prefills and %d steps", res.Cut, res.DecodeCut, res.BytesDown, res.Prefills, res.Steps)
		}
		if res.DecodeCut == 3 && res.BytesPerStep != 0 || res.DecodeCut > 0 && res.DecodeCut < 3 && !(res.BytesPerStep > 4*32 && res.BytesPerStep < 4*32+64) {
			t.Errorf("cuts %d/%d: %.0f bytes per step, want one 32-float hidden state and a header (none when the edge decodes alone)", res.Cut, res.DecodeCut, res.BytesPerStep)
		}
		t.Logf("cuts %d/%d (asked %d/%d): cloud %q, %.0f bytes up per token (%.0f per step), %d bytes down, first token %.1f ms, %.1f tokens/s, %d prefills",
			res.Cut, res.DecodeCut, cut, decode, res.Cloud, res.BytesPerToken, res.BytesPerStep, res.BytesDown, res.FirstTokenMS, res.TokensPerSec, res.Prefills)
		if cut < 0 {
			if len(res.Plans) != 10 {
				t.Errorf("%d plans, want one per pair of cuts with the decode's at or above the prefill's (10)", len(res.Plans))
			}
			t.Logf("plans %+v", res.Plans)
		}
	}

	// The client API streams the same tokens as server-sent events.
	rec := httptest.NewRecorder()
	edge.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/generate",
		strings.NewReader(`{"prompt": "`+prompt+`", "tokens": 20}`)))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/event-stream" {
		t.Fatalf("POST /v1/generate: %d %s\n%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var streamed []int
	var done node.GenerateResult
	for _, ev := range strings.Split(strings.TrimSpace(rec.Body.String()), "\n\n") {
		name, data, _ := strings.Cut(ev, "\ndata: ")
		switch name {
		case "event: token":
			var e node.GenerateEvent
			if err := json.Unmarshal([]byte(data), &e); err != nil || e.Index != len(streamed) {
				t.Fatalf("token event %q: %v", data, err)
			}
			streamed = append(streamed, e.Token)
		case "event: done":
			if err := json.Unmarshal([]byte(data), &done); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unexpected event %q", ev)
		}
	}
	if !slices.Equal(streamed, want[:20]) || !slices.Equal(done.Tokens, want[:20]) {
		t.Fatalf("streamed %v, done %v, want %v", streamed, done.Tokens, want[:20])
	}
	for body, code := range map[string]int{`{"prompt": "x"}`: 400, `{"prompt": "x", "tokens": 2, "bogus": 1}`: 400, `not json`: 400,
		`{"prompt": "x", "tokens": 2, "model": "none"}`: 404} {
		rec := httptest.NewRecorder()
		edge.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/generate", strings.NewReader(body)))
		if rec.Code != code {
			t.Errorf("POST /v1/generate %s: %d, want %d\n%s", body, rec.Code, code, rec.Body)
		}
	}

	// A cloud dies mid-generation, once with one cut, once prefilling
	// from block 0 and decoding from block 2 (the edge holds the caches
	// of blocks 0 and 1 from the dead cloud).
	for _, cuts := range [][2]int{{1, 1}, {0, 2}} {
		killMidway(t, lc, edge, prompt, tokens, cuts[0], cuts[1], want)
	}

	for name, req := range map[string]node.GenerateRequest{
		"no prompt":           {Tokens: 3, Cut: -1},
		"no tokens":           {Prompt: "x", Cut: -1},
		"too many":            {Prompt: "x", Tokens: node.MaxGenerateTokens + 1, Cut: -1},
		"cut beyond":          {Prompt: "x", Tokens: 3, Cut: 4},
		"decode below cut":    {Prompt: "x", Tokens: 3, Cut: 2, DecodeCut: 1},
		"decode beyond":       {Prompt: "x", Tokens: 3, Cut: 1, DecodeCut: 4},
		"decode, no cut":      {Prompt: "x", Tokens: 3, Cut: -1, DecodeCut: 2},
		"decode cut below -1": {Prompt: "x", Tokens: 3, Cut: 1, DecodeCut: -2},
	} {
		if _, err := edge.Generate(ctx, req, nil); !errors.Is(err, node.ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}
}

// killMidway generates at cuts cut/decode and kills the cloud carrying it
// halfway: the generation completes on another cloud with tokens want.
func killMidway(t *testing.T, lc *cluster.Local, edge *node.Node, prompt string, tokens, cut, decode int, want []int) {
	t.Helper()
	ctx := context.Background()
	var killed string
	res, err := edge.Generate(ctx, node.GenerateRequest{Prompt: prompt, Tokens: tokens, Cut: cut, DecodeCut: decode}, func(e node.GenerateEvent) error {
		if e.Index == tokens/2 {
			for _, c := range lc.Clouds {
				if c.Name() == e.Cloud {
					killed = c.Name()
					c.Kill()
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("generation with a cloud killed: %v", err)
	}
	if killed == "" || res.Failovers != 1 || res.Cloud == killed || res.Cloud == "" {
		t.Fatalf("killed %q: %d failovers, finished on %q", killed, res.Failovers, res.Cloud)
	}
	if !slices.Equal(res.Tokens, want) {
		t.Fatalf("after the failover: %q, unsplit %q", res.Text, lm.Decode(want))
	}
	t.Logf("cuts %d/%d: killed %s at token %d: finished on %s, identical; %.0f bytes up per token (replay included)", cut, decode, killed, tokens/2, res.Cloud, res.BytesPerToken)
}
