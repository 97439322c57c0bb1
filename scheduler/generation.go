package scheduler

import (
	"fmt"
	"time"
)

// GenerationCosts describe a causal language model cut between blocks for
// token-by-token generation: for each cut k in 0..Blocks (k blocks, with
// the embedding, on the edge; k = Blocks is edge-only) the compute each side
// spends on a prefill of the prompt's window and on one decode step, and
// the bytes that cross the cut each time (the hidden state of the window's
// rows, of the one new position; k = 0 carries the tokens themselves).
type GenerationCosts struct {
	Blocks                  int
	EdgePrefill, EdgeStep   []time.Duration // len Blocks+1: the edge's part at each cut
	CloudPrefill, CloudStep []time.Duration // len Blocks+1: the cloud's part (0 at Blocks)
	PrefillBytes, StepBytes []int64         // len Blocks+1: what crosses the cut (0 at Blocks)
	AnswerBytes             int64           // the cloud's answer per call (the next token)
}

// GenerationPlan is one cut's predicted generation: time to the first
// token (prefill and its round trip) and time per further token.
type GenerationPlan struct {
	Cut        int
	FirstToken time.Duration
	PerToken   time.Duration
	// Total is FirstToken + (Tokens−1)·PerToken.
	Total time.Duration
}

func (c *GenerationCosts) validate() error {
	n := c.Blocks + 1
	if c.Blocks < 1 {
		return fmt.Errorf("scheduler: generation costs for %d blocks", c.Blocks)
	}
	for name, l := range map[string]int{"EdgePrefill": len(c.EdgePrefill), "EdgeStep": len(c.EdgeStep), "CloudPrefill": len(c.CloudPrefill),
		"CloudStep": len(c.CloudStep), "PrefillBytes": len(c.PrefillBytes), "StepBytes": len(c.StepBytes)} {
		if l != n {
			return fmt.Errorf("scheduler: generation costs: %s has %d entries, want %d", name, l, n)
		}
	}
	return nil
}

// PlanGeneration predicts every cut of c for a generation of tokens tokens
// over link and returns them (index = cut) and the cut of the least total
// time (the edge-only one on a tie). Prefill and decode are predicted
// separately: a long prompt weighs the prefill terms, a long generation
// the per-token ones.
func PlanGeneration(c GenerationCosts, link LinkEstimate, tokens int) (best GenerationPlan, all []GenerationPlan, err error) {
	if err := c.validate(); err != nil {
		return best, nil, err
	}
	if link.Up <= 0 || link.Down <= 0 {
		return best, nil, fmt.Errorf("scheduler: link goodput %v up, %v down: want both > 0", link.Up, link.Down)
	}
	tokens = max(tokens, 1)
	for k := 0; k <= c.Blocks; k++ {
		p := GenerationPlan{Cut: k, FirstToken: c.EdgePrefill[k], PerToken: c.EdgeStep[k]}
		if k < c.Blocks {
			hop := func(up int64) time.Duration { return link.RTT + link.upTime(up) + link.downTime(c.AnswerBytes) }
			p.FirstToken += hop(c.PrefillBytes[k]) + c.CloudPrefill[k]
			p.PerToken += hop(c.StepBytes[k]) + c.CloudStep[k]
		}
		p.Total = p.FirstToken + time.Duration(tokens-1)*p.PerToken
		all = append(all, p)
	}
	best = all[c.Blocks]
	for _, p := range all {
		if p.Total < best.Total {
			best = p
		}
	}
	return best, all, nil
}
