package sim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
)

// ErrGeneration is returned (wrapped) by SimulateGeneration and
// GenerationProfileNamed for input they cannot simulate.
var ErrGeneration = errors.New("sim: bad generation")

// GPT2SmallConfig is a GPT-2-small-class configuration: 12 blocks of width
// 768 with 12 heads and an MLP of 3072, a context of 1024 positions and
// GPT-2's vocabulary of 50,257 tokens (≈ 124 M parameters).
var GPT2SmallConfig = zoo.GPTConfig{Vocab: 50257, Context: 1024, Dim: 768, Depth: 12, Heads: 12, MLP: 3072}

// generationProfiles are the named transformer profiles.
var generationProfiles = map[string]zoo.GPTConfig{
	"gpt-tiny":   zoo.GPTTinyConfig,
	"gpt2-small": GPT2SmallConfig,
}

// GenerationProfileNames lists the names GenerationProfileNamed knows,
// sorted: "gpt-tiny" (zoo.GPTTinyConfig) and "gpt2-small"
// (GPT2SmallConfig).
func GenerationProfileNames() []string {
	names := make([]string, 0, len(generationProfiles))
	for n := range generationProfiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// GenerationProfile is a causal language model as the generation simulator
// sees it: a GPT configuration whose per-call work is counted analytically
// (partition.AnalyticGPTPrefill, partition.AnalyticGPTStep: attention grows
// with the sequence) and priced on partition's analytic reference device,
// scaled by each side's slowdown.
type GenerationProfile struct {
	Name   string
	Config zoo.GPTConfig
	// EdgeSlowdown is the edge device's time relative to the reference
	// device (8: about a Raspberry Pi 4 against one server core). Zero
	// means 1.
	EdgeSlowdown float64
	// CloudSlowdown is the cloud's. Zero means 1.
	CloudSlowdown float64
}

// GenerationProfileNamed returns the named profile (one of
// GenerationProfileNames) with the edge edgeSlowdown times slower than the
// reference device and the cloud at the reference. An unknown name wraps
// ErrGeneration.
func GenerationProfileNamed(name string, edgeSlowdown float64) (GenerationProfile, error) {
	c, ok := generationProfiles[name]
	if !ok {
		return GenerationProfile{}, fmt.Errorf("%w: unknown transformer profile %q (known: %v)", ErrGeneration, name, GenerationProfileNames())
	}
	p := GenerationProfile{Name: name, Config: c, EdgeSlowdown: edgeSlowdown}
	return p, p.validate()
}

func (p *GenerationProfile) validate() error {
	if err := p.Config.Validate(); err != nil {
		return fmt.Errorf("%w: profile %q: %v", ErrGeneration, p.Name, err)
	}
	for _, s := range []float64{p.EdgeSlowdown, p.CloudSlowdown} {
		if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			return fmt.Errorf("%w: profile %q: slowdowns %g (edge) and %g (cloud), want ≥ 0 (0: the reference)", ErrGeneration, p.Name, p.EdgeSlowdown, p.CloudSlowdown)
		}
	}
	return nil
}

func slowOr1(s float64) float64 {
	if s == 0 {
		return 1
	}
	return s
}

// Limits of a simulated generation.
const (
	MaxGenerationPrompt = 1 << 20
	MaxGenerationTokens = 1 << 20
)

// generationAnswerBytes is the cloud's answer to a call: the next token and
// its probability, as a node answers.
const generationAnswerBytes = 6

// genCall is one call of a generation: a prefill of n rows (the prompt's
// window, or the window's new start after a jump) or a decode step at
// position n.
type genCall struct {
	prefill bool
	n       int
}

// genSchedule lists the calls that generate tokens tokens after a prompt
// of prompt tokens in a context of ctx positions, by lm.Start's window
// rule (node, partition.GPTDecoder and lm.Model follow it): the prompt's
// window is prefilled; each further token is a step, except when the
// window jumps, where the new window (the last ctx/2 tokens) is prefilled
// again. Call i produces token i.
func genSchedule(prompt, tokens, ctx int) []genCall {
	calls := make([]genCall, 0, tokens)
	start := lm.Start(prompt, ctx)
	calls = append(calls, genCall{prefill: true, n: prompt - start})
	for n := prompt + 1; len(calls) < tokens; n++ {
		if s := lm.Start(n, ctx); s != start {
			start = s
			calls = append(calls, genCall{prefill: true, n: n - s})
		} else {
			calls = append(calls, genCall{n: n - 1 - start})
		}
	}
	return calls
}

// genParts is a call's time per part on the reference device, in ns.
type genParts struct{ embed, block, head float64 }

func partsOf(w partition.GPTCall) genParts {
	return genParts{float64(w.Embed.Latency()), float64(w.Block.Latency()), float64(w.Head.Latency())}
}

// split returns the edge's and the cloud's reference ns at cut k of blocks.
func (g genParts) split(k, blocks int) (edge, cloud float64) {
	if k > 0 {
		edge = g.embed + float64(k)*g.block
	} else {
		cloud = g.embed
	}
	if k == blocks {
		return edge + g.head, 0
	}
	return edge, cloud + float64(blocks-k)*g.block + g.head
}

// genModel holds what a simulation needs of a profile for one generation.
type genModel struct {
	cfg                 zoo.GPTConfig
	edgeSlow, cloudSlow float64 // slowdowns
	calls               []genCall
	parts               []genParts // per call
}

func (p GenerationProfile) model(prompt, tokens int) (*genModel, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if prompt < 1 || prompt > MaxGenerationPrompt {
		return nil, fmt.Errorf("%w: prompt of %d tokens, want 1..%d", ErrGeneration, prompt, MaxGenerationPrompt)
	}
	if tokens < 1 || tokens > MaxGenerationTokens {
		return nil, fmt.Errorf("%w: %d tokens to generate, want 1..%d", ErrGeneration, tokens, MaxGenerationTokens)
	}
	m := &genModel{cfg: p.Config, edgeSlow: slowOr1(p.EdgeSlowdown), cloudSlow: slowOr1(p.CloudSlowdown), calls: genSchedule(prompt, tokens, p.Config.Context)}
	prefills := map[int]genParts{}
	m.parts = make([]genParts, len(m.calls))
	for i, c := range m.calls {
		if c.prefill {
			g, ok := prefills[c.n]
			if !ok {
				w, err := partition.AnalyticGPTPrefill(p.Config, c.n)
				if err != nil {
					return nil, fmt.Errorf("sim: generation: %w", err)
				}
				g = partsOf(w)
				prefills[c.n] = g
			}
			m.parts[i] = g
			continue
		}
		w, err := partition.AnalyticGPTStep(p.Config, c.n)
		if err != nil {
			return nil, fmt.Errorf("sim: generation: %w", err)
		}
		m.parts[i] = partsOf(w)
	}
	return m, nil
}

// times returns call i's edge and cloud time (ns) at cut k.
func (m *genModel) times(i, k int) (edge, cloud int64) {
	e, c := m.parts[i].split(k, m.cfg.Depth)
	return int64(math.Round(e * m.edgeSlow)), int64(math.Round(c * m.cloudSlow))
}

// bytes returns what crosses cut k for call c: the window's (or the one
// position's) hidden state, the token ids (4 bytes each) at cut 0, nothing
// at the model's depth.
func (m *genModel) bytes(c genCall, k int) int64 {
	rows := int64(1)
	if c.prefill {
		rows = int64(c.n)
	}
	switch {
	case k == m.cfg.Depth:
		return 0
	case k == 0:
		return 4 * rows
	}
	return 4 * rows * int64(m.cfg.Dim)
}

// kvBytes is one block's key/value cache of rows positions.
func (m *genModel) kvBytes(rows int) int64 { return 2 * 4 * int64(rows) * int64(m.cfg.Dim) }

// costs are the planner's GenerationCosts: call 0's prefill, and each
// decode step at its mean over the generation's steps (the step at the
// position after the prompt's window when there are none). A step's time
// is linear in its position, so with no window jump the mean step times
// the steps is the steps' total.
func (m *genModel) costs() scheduler.GenerationCosts {
	b := m.cfg.Depth
	c := scheduler.GenerationCosts{Blocks: b, AnswerBytes: generationAnswerBytes, KVBytes: m.kvBytes(m.calls[0].n)}
	var step genParts
	steps := 0
	for i, cl := range m.calls {
		if !cl.prefill {
			step.embed += m.parts[i].embed
			step.block += m.parts[i].block
			step.head += m.parts[i].head
			steps++
		}
	}
	stepCall := genCall{n: min(m.calls[0].n, m.cfg.Context-1)}
	if steps == 0 {
		w, _ := partition.AnalyticGPTStep(m.cfg, stepCall.n) // in range: validated config
		step, steps = partsOf(w), 1
	}
	for k := 0; k <= b; k++ {
		pe, pc := m.times(0, k)
		se, sc := step.split(k, b)
		c.EdgePrefill = append(c.EdgePrefill, time.Duration(pe))
		c.CloudPrefill = append(c.CloudPrefill, time.Duration(pc))
		c.EdgeStep = append(c.EdgeStep, time.Duration(math.Round(se*m.edgeSlow/float64(steps))))
		c.CloudStep = append(c.CloudStep, time.Duration(math.Round(sc*m.cloudSlow/float64(steps))))
		c.PrefillBytes = append(c.PrefillBytes, m.bytes(m.calls[0], k))
		c.StepBytes = append(c.StepBytes, m.bytes(stepCall, k))
	}
	return c
}

// Costs returns the GenerationCosts a planner sees for generating tokens
// tokens after a prompt of prompt tokens: the prefill of the prompt's
// window (lm.Start's rule) and each decode step at its mean over the
// generation; KVBytes is one block's cache of the prompt's window. The
// window's later prefills (when the sequence outgrows the context) are not
// in them, as the nodes' plans leave them out.
func (p GenerationProfile) Costs(prompt, tokens int) (scheduler.GenerationCosts, error) {
	m, err := p.model(prompt, tokens)
	if err != nil {
		return scheduler.GenerationCosts{}, err
	}
	return m.costs(), nil
}

// GenerationLink is the link of a simulated generation: fixed rates in
// Mbit/s (each direction one transfer at a time, at its rate) and a
// round-trip time split evenly between the directions; UpTrace or
// DownTrace, when set, replace their direction's rate by a Mahimahi trace
// (one MTU per delivery opportunity, from time 0; planners see its mean
// rate).
type GenerationLink struct {
	UpMbps, DownMbps   float64
	RTT                time.Duration
	UpTrace, DownTrace *Trace
}

// estimate is the link as planners see it.
func (l *GenerationLink) estimate() (scheduler.LinkEstimate, error) {
	up, down := l.UpMbps, l.DownMbps
	if l.UpTrace != nil {
		up = l.UpTrace.MeanMbps()
	}
	if l.DownTrace != nil {
		down = l.DownTrace.MeanMbps()
	}
	if !(up > 0) || !(down > 0) || math.IsInf(up, 0) || math.IsInf(down, 0) || l.RTT < 0 {
		return scheduler.LinkEstimate{}, fmt.Errorf("%w: link of %g Mbit/s up, %g down, RTT %v: want rates > 0 and RTT ≥ 0", ErrGeneration, up, down, l.RTT)
	}
	return scheduler.LinkEstimate{RTT: l.RTT, Up: up * 1e6 / 8, Down: down * 1e6 / 8}, nil
}

// Generation policies: where SimulateGeneration's device puts the prefill
// and the decode steps, each planned by scheduler.PlanGeneration on the
// profile's Costs and the link's rates and RTT.
const (
	GenerationEdgeOnly  = "edge-only"  // every block on the device
	GenerationCloudOnly = "cloud-only" // the tokens go up, every block on the cloud
	// GenerationSingleCut is the best single cut (prefill and decode at
	// the same cut, 0 and the depth included).
	GenerationSingleCut = "single-cut"
	// GenerationSplit is the best single cut that keeps the embedding and
	// at least one block on the device and uses the cloud (1 ≤ cut <
	// depth): the prompt's tokens never leave the device.
	GenerationSplit = "split"
	// GenerationAuto is PlanGeneration's best pair of prefill and decode
	// cuts.
	GenerationAuto = "auto"
	// GenerationFixed runs Generation.PrefillCut and Generation.DecodeCut.
	GenerationFixed = "fixed"
)

// GenerationPolicies lists the policies SimulateGeneration accepts.
func GenerationPolicies() []string {
	return []string{GenerationEdgeOnly, GenerationCloudOnly, GenerationSingleCut, GenerationSplit, GenerationAuto, GenerationFixed}
}

// Generation is one simulated request: a device generates Tokens tokens
// after a prompt of Prompt tokens over Link, planned by Policy (default
// GenerationAuto).
type Generation struct {
	Profile GenerationProfile
	Link    GenerationLink
	Prompt  int
	Tokens  int
	Policy  string
	// PrefillCut and DecodeCut are the cuts of policy GenerationFixed
	// (blocks on the device, 0..Depth); other policies ignore them.
	PrefillCut, DecodeCut int
}

// GenerationResult is a simulated generation. Times run from the request.
type GenerationResult struct {
	Policy                string
	PrefillCut, DecodeCut int
	Blocks                int
	// Predicted is the plan's prediction (scheduler.GenerationCosts.Predict
	// on the profile's Costs): its FirstToken counts a cache hand-off to
	// the cloud after an edge-only prefill, which the simulation's
	// FirstToken does not (the device knows the token before it).
	Predicted scheduler.GenerationPlan
	// FirstToken is when the device knows the first token; Total when it
	// knows the last.
	FirstToken, Total time.Duration
	// TokensPerSec is the rate after the first token: (Tokens−1) ÷ (Total
	// − FirstToken); 0 for a single token.
	TokensPerSec float64
	// Prefills counts the prompt's prefill and the window's later ones;
	// Steps the decode steps.
	Prefills, Steps int
	// BytesUp and BytesDown are everything sent each way (hidden states,
	// token ids, key/value caches, answers); BytesPerToken is BytesUp over
	// the tokens generated, as a node reports it.
	BytesUp, BytesDown int64
	BytesPerToken      float64
	// Times[i] is when the device knew token i.
	Times []time.Duration
}

// Event kinds of a generation (its own queue, not a world's).
const (
	genEdgeDone  uint8 = iota + 1 // the device's part of the call is done
	genCloudArr                   // the call's upload reached the cloud
	genCloudDone                  // the cloud's part is done
	genAnswer                     // the answer reached the device
)

// SimulateGeneration plans g by its policy and simulates it call by call,
// event by event, on a device and a cloud that serve nothing else: for a
// prefill the device's part at the prefill cut, the upload of the window's
// hidden state (with the key/value caches of the blocks the cloud will
// decode but did not prefill), the cloud's part, and the answer (with the
// caches of the blocks the device will decode); for each decode step the
// device's part at the decode cut, the upload of one hidden state, the
// cloud's part and the answer. When the sequence outgrows the context the
// window jumps (lm.Start) and is prefilled again at the prefill cut. A
// call at the model's depth stays on the device (an edge-only prefill that
// hands its caches to a decoding cloud still waits for the cloud's
// answer before the first step). Bad input wraps ErrGeneration.
func SimulateGeneration(g Generation) (GenerationResult, error) {
	m, err := g.Profile.model(g.Prompt, g.Tokens)
	if err != nil {
		return GenerationResult{}, err
	}
	est, err := g.Link.estimate()
	if err != nil {
		return GenerationResult{}, err
	}
	plan, err := planGeneration(m, est, &g)
	if err != nil {
		return GenerationResult{}, err
	}
	r := GenerationResult{Policy: g.Policy, PrefillCut: plan.PrefillCut, DecodeCut: plan.DecodeCut, Blocks: m.cfg.Depth, Predicted: plan,
		Times: make([]time.Duration, len(m.calls))}
	if r.Policy == "" {
		r.Policy = GenerationAuto
	}
	run := genRun{m: m, link: &g.Link, res: &r, upDelay: int64(g.Link.RTT) / 2}
	run.downDelay = int64(g.Link.RTT) - run.upDelay
	run.start(0, 0)
	for run.q.len() > 0 {
		e := run.q.pop()
		run.handle(e)
	}
	r.Total = r.Times[len(r.Times)-1]
	r.FirstToken = r.Times[0]
	if n := len(r.Times); n > 1 && r.Total > r.FirstToken {
		r.TokensPerSec = float64(n-1) / (r.Total - r.FirstToken).Seconds()
	}
	r.BytesPerToken = float64(r.BytesUp) / float64(len(r.Times))
	return r, nil
}

// planGeneration chooses g's cuts by its policy.
func planGeneration(m *genModel, est scheduler.LinkEstimate, g *Generation) (scheduler.GenerationPlan, error) {
	costs := m.costs()
	b := m.cfg.Depth
	if g.Policy == GenerationFixed {
		p, err := costs.Predict(est, g.PrefillCut, g.DecodeCut, len(m.calls))
		if err != nil {
			return p, fmt.Errorf("%w: %v", ErrGeneration, err)
		}
		return p, nil
	}
	best, all, err := scheduler.PlanGeneration(costs, est, len(m.calls))
	if err != nil {
		return best, fmt.Errorf("sim: generation: %w", err)
	}
	single := func(lo, hi int) scheduler.GenerationPlan {
		p := all[hi*(b+2)]
		for k := hi - 1; k >= lo; k-- {
			if q := all[k*(b+2)]; q.Total < p.Total {
				p = q
			}
		}
		return p
	}
	switch g.Policy {
	case "", GenerationAuto:
		return best, nil
	case GenerationEdgeOnly:
		return all[len(all)-1], nil
	case GenerationCloudOnly:
		return all[0], nil
	case GenerationSingleCut:
		return single(0, b), nil
	case GenerationSplit:
		if b < 2 {
			return best, fmt.Errorf("%w: policy %s needs a cut inside the model, which has %d block", ErrGeneration, g.Policy, b)
		}
		return single(1, b-1), nil
	}
	return best, fmt.Errorf("%w: unknown policy %q (known: %v)", ErrGeneration, g.Policy, GenerationPolicies())
}

// genRun is one generation's event loop: the calls go one after the other;
// each direction of the link carries one transfer at a time.
type genRun struct {
	m                  *genModel
	link               *GenerationLink
	res                *GenerationResult
	q                  eventHeap
	upFree, downFree   int64
	upDelay, downDelay int64
	kvUp, kvDown       int64 // of the current call
}

// cut is the cut call i runs at.
func (g *genRun) cut(i int) int {
	if g.m.calls[i].prefill {
		return g.res.PrefillCut
	}
	return g.res.DecodeCut
}

// start begins call i at time now: the device's part.
func (g *genRun) start(i int, now int64) {
	c := g.m.calls[i]
	g.kvUp, g.kvDown = 0, 0
	if c.prefill {
		g.res.Prefills++
		p, d := g.res.PrefillCut, g.res.DecodeCut
		switch {
		case d > p: // the device decodes blocks [p,d) the cloud prefilled
			g.kvDown = int64(d-p) * g.m.kvBytes(c.n)
		case d < p: // the cloud decodes blocks [d,p) the device prefilled
			g.kvUp = int64(p-d) * g.m.kvBytes(c.n)
		}
	} else {
		g.res.Steps++
	}
	edge, _ := g.m.times(i, g.cut(i))
	g.q.push(now+edge, genEdgeDone, 0, int32(i))
}

func (g *genRun) handle(e event) {
	i := int(e.b)
	k := g.cut(i)
	switch e.kind {
	case genEdgeDone:
		if k == g.m.cfg.Depth {
			g.res.Times[i] = time.Duration(e.at) // the device has the token
			if g.kvUp == 0 {
				g.next(i, e.at)
				return
			}
		}
		n := g.m.bytes(g.m.calls[i], k) + g.kvUp
		g.res.BytesUp += n
		done := g.transfer(g.link.UpTrace, g.link.UpMbps, &g.upFree, e.at, n)
		g.q.push(done+g.upDelay, genCloudArr, 0, e.b)
	case genCloudArr:
		_, cloud := g.m.times(i, k)
		g.q.push(e.at+cloud, genCloudDone, 0, e.b)
	case genCloudDone:
		n := int64(generationAnswerBytes) + g.kvDown
		g.res.BytesDown += n
		done := g.transfer(g.link.DownTrace, g.link.DownMbps, &g.downFree, e.at, n)
		g.q.push(done+g.downDelay, genAnswer, 0, e.b)
	case genAnswer:
		if k < g.m.cfg.Depth {
			g.res.Times[i] = time.Duration(e.at)
		}
		g.next(i, e.at)
	}
}

// next starts the call after i, if any.
func (g *genRun) next(i int, now int64) {
	if i+1 < len(g.m.calls) {
		g.start(i+1, now)
	}
}

// transfer sends n bytes from time at on one direction (its trace, or its
// fixed rate in Mbit/s) after its previous transfer and returns when the
// last byte left.
func (g *genRun) transfer(t *Trace, mbps float64, free *int64, at, n int64) int64 {
	s := max(at, *free)
	if t != nil {
		*free = t.finish(s, 0, n)
	} else {
		*free = s + int64(math.Ceil(float64(n)*8e3/mbps)) // bytes at Mbit/s, in ns
	}
	return *free
}
