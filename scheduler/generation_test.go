package scheduler

import (
	"strings"
	"testing"
	"time"
)

// genCosts: a 4-block model whose edge is edgeSlow× slower than its
// cloud; a prefill costs rows× a step.
func genCosts(edgeSlow float64, rows int, kv int64) GenerationCosts {
	const blocks = 4
	step := 2 * time.Millisecond // the whole model, one token, on the cloud
	c := GenerationCosts{Blocks: blocks, AnswerBytes: 6, KVBytes: kv}
	for k := 0; k <= blocks; k++ {
		f := float64(k) / blocks
		c.EdgePrefill = append(c.EdgePrefill, time.Duration(f*edgeSlow*float64(rows)*float64(step)))
		c.EdgeStep = append(c.EdgeStep, time.Duration(f*edgeSlow*float64(step)))
		c.CloudPrefill = append(c.CloudPrefill, time.Duration((1-f)*float64(rows)*float64(step)))
		c.CloudStep = append(c.CloudStep, time.Duration((1-f)*float64(step)))
		var pb, sb int64
		if k < blocks {
			pb, sb = int64(rows*256), 256
		}
		c.PrefillBytes, c.StepBytes = append(c.PrefillBytes, pb), append(c.StepBytes, sb)
	}
	return c
}

func TestPlanGeneration(t *testing.T) {
	lte := LinkEstimate{RTT: 50 * time.Millisecond, Up: 1e6, Down: 4e6}
	lan := LinkEstimate{RTT: 200 * time.Microsecond, Up: 1e9, Down: 1e9}
	for _, tc := range []struct {
		name                  string
		c                     GenerationCosts
		link                  LinkEstimate
		tokens                int
		prefillCut, decodeCut int
	}{
		// A fast edge never pays a round trip per token.
		{"fast edge", genCosts(1, 64, 1<<12), lte, 100, 4, 4},
		// A slow edge on a fast link hands everything to the cloud.
		{"slow edge, LAN", genCosts(20, 64, 1<<12), lan, 100, 0, 0},
		// A long prompt on a slow edge but a slow round trip per token:
		// prefill in the cloud, its caches come down, decode at the edge.
		{"long prompt, LTE", genCosts(20, 512, 1<<12), lte, 100, 0, 4},
		// The same when the caches are too big to move: one cut for both.
		{"long prompt, huge caches", genCosts(20, 512, 1<<30), lte, 100, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			best, all, err := PlanGeneration(tc.c, tc.link, tc.tokens)
			if err != nil {
				t.Fatal(err)
			}
			if n := tc.c.Blocks + 1; len(all) != n*n {
				t.Fatalf("%d plans, want %d", len(all), n*n)
			}
			if best.PrefillCut != tc.prefillCut || best.DecodeCut != tc.decodeCut {
				t.Errorf("best plan prefills at %d and decodes at %d (%v), want %d and %d", best.PrefillCut, best.DecodeCut, best.Total, tc.prefillCut, tc.decodeCut)
			}
			for i, p := range all {
				if p.PrefillCut != i/(tc.c.Blocks+1) || p.DecodeCut != i%(tc.c.Blocks+1) {
					t.Fatalf("all[%d] is (%d,%d)", i, p.PrefillCut, p.DecodeCut)
				}
				if p.Total < best.Total {
					t.Errorf("plan (%d,%d) takes %v, less than the best's %v", p.PrefillCut, p.DecodeCut, p.Total, best.Total)
				}
				if want := p.FirstToken + time.Duration(tc.tokens-1)*p.PerToken; p.Total != want {
					t.Errorf("plan (%d,%d): total %v, want %v", p.PrefillCut, p.DecodeCut, p.Total, want)
				}
				one, err := tc.c.Predict(tc.link, p.PrefillCut, p.DecodeCut, tc.tokens)
				if err != nil || one != p {
					t.Errorf("Predict(%d,%d) = %+v, %v; PlanGeneration gave %+v", p.PrefillCut, p.DecodeCut, one, err, p)
				}
			}
			if edge := all[len(all)-1]; edge.Split(tc.c.Blocks) || edge.FirstToken != tc.c.EdgePrefill[tc.c.Blocks] {
				t.Errorf("the edge-only plan %+v uses the link", edge)
			}
		})
	}
}

// The caches' direction: decoding more blocks at the edge than it
// prefilled waits for them on the downlink, fewer sends them up.
func TestGenerationCacheTransfer(t *testing.T) {
	c := genCosts(4, 64, 1e6)
	link := LinkEstimate{RTT: 10 * time.Millisecond, Up: 1e6, Down: 1e7}
	same, _ := c.Predict(link, 2, 2, 10)
	down, _ := c.Predict(link, 1, 2, 10)   // one block's caches come down
	up, _ := c.Predict(link, 2, 1, 10)     // one block's caches go up
	onlyUp, _ := c.Predict(link, 4, 3, 10) // an edge-only prefill uploads them in a hop of its own
	if got, want := down.FirstToken-(c.EdgePrefill[1]+c.CloudPrefill[1]+link.RTT+link.upTime(c.PrefillBytes[1])+link.downTime(c.AnswerBytes+c.KVBytes)), time.Duration(0); got != want {
		t.Errorf("prefill 1, decode 2: first token off by %v", got)
	}
	if up.FirstToken-same.FirstToken != link.upTime(c.PrefillBytes[2]+c.KVBytes)-link.upTime(c.PrefillBytes[2]) {
		t.Errorf("prefill 2, decode 1: first token %v, single cut %v", up.FirstToken, same.FirstToken)
	}
	if want := c.EdgePrefill[4] + link.RTT + link.upTime(c.KVBytes) + link.downTime(c.AnswerBytes); onlyUp.FirstToken != want {
		t.Errorf("prefill 4, decode 3: first token %v, want %v", onlyUp.FirstToken, want)
	}
	if up.PerToken != same.PerToken-c.EdgeStep[2]+c.EdgeStep[1]-c.CloudStep[2]+c.CloudStep[1]+link.upTime(c.StepBytes[1])-link.upTime(c.StepBytes[2]) {
		t.Errorf("decode cut 1 costs %v per token, cut 2 %v", up.PerToken, same.PerToken)
	}
}

func TestPlanGenerationErrors(t *testing.T) {
	good := genCosts(2, 8, 100)
	link := LinkEstimate{RTT: time.Millisecond, Up: 1e6, Down: 1e6}
	short := good
	short.StepBytes = short.StepBytes[:2]
	neg := good
	neg.KVBytes = -1
	for _, tc := range []struct {
		name string
		c    GenerationCosts
		link LinkEstimate
		want string
	}{
		{"no blocks", GenerationCosts{}, link, "0 blocks"},
		{"short table", short, link, "StepBytes has 2 entries, want 5"},
		{"negative bytes", neg, link, "negative byte counts"},
		{"dead link", good, LinkEstimate{RTT: time.Millisecond}, "want both > 0"},
	} {
		if _, _, err := PlanGeneration(tc.c, tc.link, 10); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := good.Predict(link, 5, 0, 1); err == nil || !strings.Contains(err.Error(), "cuts 5 (prefill) and 0 (decode) of 4 blocks") {
		t.Errorf("Predict out of range: %v", err)
	}
}
