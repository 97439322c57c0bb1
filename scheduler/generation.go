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
//
// Prefill and decode may run at different cuts: a long prompt is best
// prefilled where compute is fast, while each decode step pays a round
// trip. When the decode cut D differs from the prefill cut P the side that
// decodes blocks it did not prefill receives their key/value caches once
// per prefill: KVBytes per block (the window's keys and values), sent down
// with the prefill's answer when D > P, up with the prefill when D < P.
type GenerationCosts struct {
	Blocks                  int
	EdgePrefill, EdgeStep   []time.Duration // len Blocks+1: the edge's part at each cut
	CloudPrefill, CloudStep []time.Duration // len Blocks+1: the cloud's part (0 at Blocks)
	PrefillBytes, StepBytes []int64         // len Blocks+1: what crosses the cut (0 at Blocks)
	AnswerBytes             int64           // the cloud's answer per call (the next token)
	KVBytes                 int64           // one block's key/value cache for the prefill window
}

// GenerationPlan is one predicted generation: the prefill cut and the
// decode cut (equal for a single-cut plan), the time to the first token
// (prefill, any cache transfer and its round trip) and the time per
// further token.
type GenerationPlan struct {
	PrefillCut, DecodeCut int
	FirstToken            time.Duration
	PerToken              time.Duration
	// Total is FirstToken + (Tokens−1)·PerToken.
	Total time.Duration
}

// Split reports whether the plan uses the cloud at all.
func (p GenerationPlan) Split(blocks int) bool { return p.PrefillCut < blocks || p.DecodeCut < blocks }

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
	if c.KVBytes < 0 || c.AnswerBytes < 0 {
		return fmt.Errorf("scheduler: generation costs: negative byte counts (KV %d, answer %d)", c.KVBytes, c.AnswerBytes)
	}
	return nil
}

// Predict predicts the generation of tokens tokens prefilled at cut
// prefill and decoded at cut decode (each in 0..Blocks) over link.
func (c GenerationCosts) Predict(link LinkEstimate, prefill, decode, tokens int) (GenerationPlan, error) {
	if err := c.validate(); err != nil {
		return GenerationPlan{}, err
	}
	if link.Up <= 0 || link.Down <= 0 {
		return GenerationPlan{}, fmt.Errorf("scheduler: link goodput %v up, %v down: want both > 0", link.Up, link.Down)
	}
	if prefill < 0 || prefill > c.Blocks || decode < 0 || decode > c.Blocks {
		return GenerationPlan{}, fmt.Errorf("scheduler: cuts %d (prefill) and %d (decode) of %d blocks", prefill, decode, c.Blocks)
	}
	return c.predict(&link, prefill, decode, max(tokens, 1)), nil
}

func (c *GenerationCosts) predict(link *LinkEstimate, pc, dc, tokens int) GenerationPlan {
	p := GenerationPlan{PrefillCut: pc, DecodeCut: dc, FirstToken: c.EdgePrefill[pc], PerToken: c.EdgeStep[dc]}
	var kvUp, kvDown int64
	switch {
	case dc > pc: // the edge decodes blocks [pc,dc) the cloud prefilled
		kvDown = int64(dc-pc) * c.KVBytes
	case dc < pc: // the cloud decodes blocks [dc,pc) the edge prefilled
		kvUp = int64(pc-dc) * c.KVBytes
	}
	if pc < c.Blocks {
		p.FirstToken += link.RTT + link.upTime(c.PrefillBytes[pc]+kvUp) + c.CloudPrefill[pc] + link.downTime(c.AnswerBytes+kvDown)
	} else if kvUp > 0 { // an edge-only prefill hands the cloud its caches
		p.FirstToken += link.RTT + link.upTime(kvUp) + link.downTime(c.AnswerBytes)
	}
	if dc < c.Blocks {
		p.PerToken += link.RTT + link.upTime(c.StepBytes[dc]) + c.CloudStep[dc] + link.downTime(c.AnswerBytes)
	}
	p.Total = p.FirstToken + time.Duration(tokens-1)*p.PerToken
	return p
}

// PlanGeneration predicts every pair of prefill and decode cuts of c for a
// generation of tokens tokens over link and returns the pair of least total
// time (edge-only on a tie, then a single cut) and every pair, prefill-major:
// all[p*(Blocks+1)+d] is prefill cut p with decode cut d, so all[k*(Blocks+2)]
// is the single cut k. Prefill and decode are predicted separately: a long
// prompt weighs the prefill terms, a long generation the per-token ones.
func PlanGeneration(c GenerationCosts, link LinkEstimate, tokens int) (best GenerationPlan, all []GenerationPlan, err error) {
	if _, err := c.Predict(link, c.Blocks, c.Blocks, tokens); err != nil {
		return best, nil, err
	}
	tokens = max(tokens, 1)
	n := c.Blocks + 1
	all = make([]GenerationPlan, 0, n*n)
	for pc := 0; pc < n; pc++ {
		for dc := 0; dc < n; dc++ {
			all = append(all, c.predict(&link, pc, dc, tokens))
		}
	}
	best = all[len(all)-1]
	for _, p := range all {
		if p.Total < best.Total || p.Total == best.Total && best.PrefillCut != best.DecodeCut && p.PrefillCut == p.DecodeCut {
			best = p
		}
	}
	return best, all, nil
}
