package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/transport"
	"gorgonia.org/tensor"
)

// Generation (token-by-token decoding of a causal language model split
// between an edge and a cloud): the edge runs the embedding and blocks
// [0, Cut) with their key/value caches, the cloud blocks [Cut, Depth) and
// the head with theirs, in a session the edge opens; per token only the
// new position's hidden state goes up and the next token comes down.
// Prefill and decode may be cut apart: with a decode cut D above the
// prefill cut P the cloud prefills blocks [P, Depth) and sends the caches
// of blocks [P, D) down with the first token, and the edge decodes those
// blocks itself (D = Depth: the cloud only prefills). The edge keeps what
// it sent since the window's last prefill, so when its cloud is lost it
// replays that to another, which rebuilds the same cache by the same
// computations: the generation goes on with the same tokens.

// Limits of a generation.
const (
	// MaxGenerateTokens bounds the tokens one request generates.
	MaxGenerateTokens = 4096
	// MaxPromptBytes bounds a prompt.
	MaxPromptBytes = 16 << 10
	// MaxGenerationSessions bounds the sessions (caches) one node holds
	// for its callers; an idle session is dropped after
	// GenerationSessionIdle.
	MaxGenerationSessions = 64
	GenerationSessionIdle = 2 * time.Minute
)

// ErrNotLM is returned (wrapped) by Generate for a model that is not a
// causal language model laid out as zoo's GPTs.
var ErrNotLM = errors.New("node: not a language model")

// ErrNoCloud is returned (wrapped) by Generate when the plan needs a cloud
// and none serves the model.
var ErrNoCloud = errors.New("node: no cloud")

// generationPreset carries hidden states without loss: the tokens of a
// split generation are the unsplit model's.
const generationPreset = tensorcodec.PresetLossless

// GenerateRequest asks an edge to continue a prompt.
type GenerateRequest struct {
	Model  string // model id (default: the first loaded)
	Prompt string
	Tokens int // tokens to generate (1..MaxGenerateTokens)
	// Cut, when ≥ 0, fixes the blocks that run on the edge (0: cloud-only,
	// the model's depth: edge-only); -1 lets the edge plan it. DecodeCut,
	// when above Cut, decodes at another cut than the prefill's (the
	// caches of blocks [Cut, DecodeCut) come down from the cloud after
	// each prefill); 0 or -1 decodes at Cut.
	Cut, DecodeCut int
	// Cloud, when set, is the cloud to start on.
	Cloud string
}

// GenerateEvent is one generated token.
type GenerateEvent struct {
	Index int    `json:"index"`
	Token int    `json:"token"`
	Text  string `json:"text"`
	Cloud string `json:"cloud,omitempty"`
}

// GenerateResult is a finished generation.
type GenerateResult struct {
	Model     string `json:"model"`
	Version   string `json:"model_version"`
	Text      string `json:"text"`
	Tokens    []int  `json:"tokens"`
	Cut       int    `json:"cut"`        // the prefill's
	DecodeCut int    `json:"decode_cut"` // the decode steps' (≥ Cut)
	Blocks    int    `json:"blocks"`
	Cloud     string `json:"cloud,omitempty"` // the cloud that finished it
	Failovers int    `json:"failovers"`
	Prefills  int    `json:"prefills"`
	Steps     int    `json:"steps"`
	// BytesUp counts the encoded hidden states sent (replays included);
	// BytesPerToken is BytesUp over the generated tokens; BytesPerStep the
	// mean of one decode step's message (one position's hidden state).
	BytesUp       int64   `json:"bytes_up"`
	BytesPerToken float64 `json:"bytes_per_token"`
	BytesPerStep  float64 `json:"bytes_per_step"`
	// BytesDown counts what came down: the answers (the next token) and,
	// when DecodeCut > Cut, the key/value caches after each prefill.
	BytesDown    int64   `json:"bytes_down"`
	FirstTokenMS float64 `json:"first_token_ms"`
	TokensPerSec float64 `json:"tokens_per_s"`
	TotalMS      float64 `json:"total_ms"`
	// Plans are the predictions for every pair of cuts (when the edge
	// planned).
	Plans []GenerationPlanReport `json:"plans,omitempty"`
}

// GenerationPlanReport is one pair of cuts' prediction, on the best cloud
// for it.
type GenerationPlanReport struct {
	Cut          int     `json:"cut"`
	DecodeCut    int     `json:"decode_cut"`
	Cloud        string  `json:"cloud,omitempty"`
	FirstTokenMS float64 `json:"first_token_ms"`
	PerTokenMS   float64 `json:"per_token_ms"`
}

// gptCosts is a model's native compute per part, measured once per node.
type gptCosts struct {
	once     sync.Once
	err      error
	prefill  time.Duration // the whole model, one window
	step     time.Duration // the whole model, one token
	fraction []float64     // share of the compute before each cut (len Depth+1)
}

// genState is a node's generation state: the sessions it serves (clouds),
// the measured costs of its language models (edges).
type genState struct {
	mu       sync.Mutex
	sessions map[string]*genSession
	costs    map[string]*gptCosts // model version → costs
	stages   stagePool
}

// stagePool keeps compiled GPT stages between generations (compiling one
// takes milliseconds, as long as a small model's whole first token): a few
// idle ones per model version and block range, a bounded number in all. A
// stage taken from it holds another generation's caches, which its
// Prefill or LoadCaches replaces.
type stagePool struct {
	mu    sync.Mutex
	idle  map[stageKey][]*partition.GPTStage
	total int
}

type stageKey struct {
	model, version string
	from, to       int
}

// Idle stages kept per key and in all.
const (
	maxIdleStagesPerKey = 2
	maxIdleStages       = 16
)

// get returns an idle stage of m's blocks [from, to), or compiles one.
func (p *stagePool) get(m *Model, from, to int) (*partition.GPTStage, error) {
	k := stageKey{m.ID, m.Version, from, to}
	p.mu.Lock()
	if l := p.idle[k]; len(l) > 0 {
		st := l[len(l)-1]
		p.idle[k] = l[:len(l)-1]
		p.total--
		p.mu.Unlock()
		return st, nil
	}
	p.mu.Unlock()
	return partition.NewGPTStage(m.Graph, from, to, model.Options{})
}

// put keeps st (of m) for a later get, or closes it when the pool is full.
func (p *stagePool) put(m *Model, st *partition.GPTStage) {
	if st == nil {
		return
	}
	k := stageKey{m.ID, m.Version, st.From, st.To}
	p.mu.Lock()
	if p.idle == nil {
		p.idle = make(map[stageKey][]*partition.GPTStage)
	}
	if len(p.idle[k]) < maxIdleStagesPerKey && p.total < maxIdleStages {
		p.idle[k] = append(p.idle[k], st)
		p.total++
		st = nil
	}
	p.mu.Unlock()
	if st != nil {
		st.Close()
	}
}

// closeAll closes every idle stage.
func (p *stagePool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, l := range p.idle {
		for _, st := range l {
			st.Close()
		}
		delete(p.idle, k)
	}
	p.total = 0
}

// genSession is one caller's cache on this node: blocks [cut, decode)
// run in prefills only (their caches go to the edge), blocks [decode,
// Depth) in prefills and decode steps.
type genSession struct {
	mu          sync.Mutex
	model       *Model
	cut, decode int
	front       *partition.GPTStage // [cut, decode); nil when equal
	stage       *partition.GPTStage // [decode, Depth); nil at Depth
	last        time.Time
}

// open reports whether the session holds stages.
func (s *genSession) open() bool { return s.front != nil || s.stage != nil }

// close releases the session's stages: back to pool when it is not nil,
// else closed (a failed session's stages are not reused).
func (s *genSession) close(pool *stagePool) {
	for _, st := range []*partition.GPTStage{s.front, s.stage} {
		switch {
		case st == nil:
		case pool != nil:
			pool.put(s.model, st)
		default:
			st.Close()
		}
	}
	s.front, s.stage = nil, nil
}

// gptOf returns m's GPT configuration, or ErrNotLM.
func gptOf(m *Model) (zoo.GPTConfig, error) {
	c, err := zoo.GPTConfigOf(m.Graph)
	if err != nil {
		return c, fmt.Errorf("%w: model %s: %v", ErrNotLM, m.ID, err)
	}
	if c.Vocab != lm.VocabSize {
		return c, fmt.Errorf("%w: model %s has %d tokens, the tokenizer %d", ErrNotLM, m.ID, c.Vocab, lm.VocabSize)
	}
	return c, nil
}

// session returns the caller's session key's session, creating it when
// create is set (dropping idle ones, refusing past MaxGenerationSessions).
func (g *genState) session(key string, create bool) (*genSession, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessions == nil {
		g.sessions = make(map[string]*genSession)
	}
	now := time.Now()
	for k, s := range g.sessions {
		if s.mu.TryLock() {
			if now.Sub(s.last) > GenerationSessionIdle {
				s.close(&g.stages)
				delete(g.sessions, k)
			}
			s.mu.Unlock()
		}
	}
	if s, ok := g.sessions[key]; ok || !create {
		return s, nil
	}
	if len(g.sessions) >= MaxGenerationSessions {
		return nil, transport.Errorf(transport.CodeUnavailable, "%d generations in progress, the most one node holds", MaxGenerationSessions)
	}
	s := &genSession{last: now}
	g.sessions[key] = s
	return s, nil
}

func (g *genState) drop(key string) {
	g.mu.Lock()
	s, ok := g.sessions[key]
	delete(g.sessions, key)
	g.mu.Unlock()
	if ok {
		s.mu.Lock()
		s.close(&g.stages)
		s.mu.Unlock()
	}
}

// dropHeld is drop for a caller holding s.mu: it forgets key's session s
// and releases its stage without locking s again.
func (g *genState) dropHeld(key string, s *genSession) {
	g.mu.Lock()
	if g.sessions[key] == s {
		delete(g.sessions, key)
	}
	g.mu.Unlock()
	s.close(nil)
}

// closeAll releases every session (the node is stopping).
func (g *genState) closeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, s := range g.sessions {
		s.close(nil)
		delete(g.sessions, k)
	}
	g.stages.closeAll()
}

// serveGenerate is a cloud's side of opGenerate and opGenerateEnd.
func (n *Node) serveGenerate(ctx context.Context, m *Model, req segmentRequest, body io.Reader, w transport.ResponseWriter) error {
	info, _ := transport.PeerFromContext(ctx)
	key := info.Name + "/" + req.Session
	if req.Op == opGenerateEnd {
		n.gen.drop(key)
		return nil
	}
	c, err := gptOf(m)
	if err != nil {
		return transport.Errorf(transport.CodeBadRequest, "%v", err)
	}
	if req.Cut >= c.Depth || req.Decode > c.Depth {
		return transport.Errorf(transport.CodeBadRequest, "cut %d, decode cut %d of a %d-block model: the cloud must prefill a block", req.Cut, req.Decode, c.Depth)
	}
	if req.Prefill > c.Context || req.Pos >= c.Context {
		return transport.Errorf(transport.CodeBadRequest, "prefill %d, position %d: the context is %d", req.Prefill, req.Pos, c.Context)
	}
	width := func(cut int) int {
		if cut == 0 {
			return c.Vocab
		}
		return c.Dim
	}
	// At most a window and a step per position: the body's bound.
	limit := maxSegmentBody([]model.ValueInfo{{Shape: []int{c.Context, width(req.Cut)}}, {Shape: []int{c.Context, width(req.Decode)}}, {Shape: []int{c.Context, 1}}})
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	rc := &recvClock{r: body}
	if _, err := buf.ReadFrom(io.LimitReader(rc, limit+1)); err != nil {
		return err
	}
	if int64(buf.Len()) > limit {
		return transport.Errorf(transport.CodeTooLarge, "generate payload over %d bytes", limit)
	}
	var hdr segmentResponse
	rc.report(&hdr)
	start := time.Now()
	xs, err := tensorcodec.Decode(nil, buf.Bytes())
	if err != nil {
		return transport.Errorf(transport.CodeBadRequest, "generate payload: %v", err)
	}
	steps := xs
	if req.Prefill > 0 {
		if len(xs) == 0 || !slices.Equal([]int(xs[0].Shape()), []int{1, c.Context, width(req.Cut)}) {
			return transport.Errorf(transport.CodeBadRequest, "generate payload: want a 1×%d×%d prefill window first", c.Context, width(req.Cut))
		}
		steps = xs[1:]
	}
	if len(xs) == 0 || req.Pos+len(steps) > c.Context {
		return transport.Errorf(transport.CodeBadRequest, "generate payload: %d steps from position %d in a context of %d", len(steps), req.Pos, c.Context)
	}
	if len(steps) > 0 && req.Decode == c.Depth {
		return transport.Errorf(transport.CodeBadRequest, "generate payload: %d decode steps for a generation the edge decodes alone", len(steps))
	}
	for i, x := range steps {
		if !slices.Equal([]int(x.Shape()), []int{1, 1, width(req.Decode)}) {
			return transport.Errorf(transport.CodeBadRequest, "generate payload: step %d is %v, want 1×1×%d", i, []int(x.Shape()), width(req.Decode))
		}
	}
	s, err := n.gen.session(key, req.Prefill > 0)
	if err != nil {
		return err
	}
	if s == nil {
		return transport.Errorf(transport.CodeNotFound, "no generation %s of %s here (expired or never prefilled): replay from the prefill", req.Session, info.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = time.Now()
	if req.Prefill == 0 && !s.open() {
		return transport.Errorf(transport.CodeNotFound, "generation %s was dropped here: replay from the prefill", req.Session)
	}
	if req.Prefill > 0 && (!s.open() || s.model != m || s.cut != req.Cut || s.decode != req.Decode) {
		s.close(&n.gen.stages)
		s.model = m
		if req.Decode > req.Cut {
			s.front, err = n.gen.stages.get(m, req.Cut, req.Decode)
		}
		if err == nil && req.Decode < c.Depth {
			s.stage, err = n.gen.stages.get(m, req.Decode, c.Depth)
		}
		if err != nil {
			n.gen.dropHeld(key, s)
			return transport.Errorf(transport.CodeInternal, "generation stage: %v", err)
		}
		s.model, s.cut, s.decode = m, req.Cut, req.Decode
	}
	if s.model != m || s.cut != req.Cut || s.decode != req.Decode {
		return transport.Errorf(transport.CodeBadRequest, "generation %s runs version %s prefilled from block %d and decoded from %d, not %s from %d and %d",
			req.Session, s.model.Version, s.cut, s.decode, m.Version, req.Cut, req.Decode)
	}
	if req.Prefill == 0 && s.stage.Filled() != req.Pos {
		return transport.Errorf(transport.CodeNotFound, "generation %s holds %d positions, the step is at %d: replay from the prefill", req.Session, s.stage.Filled(), req.Pos)
	}
	wait, release, _, err := n.acquireWorker(ctx)
	if err != nil {
		return err
	}
	defer release()
	decoded := time.Now()
	var p *tensor.Dense
	var caches []byte
	row := 0
	if req.Prefill > 0 {
		p = xs[0]
		for _, st := range []*partition.GPTStage{s.front, s.stage} {
			if st != nil && err == nil {
				p, err = st.Prefill(ctx, p, req.Prefill)
			}
		}
		row = req.Prefill - 1
		if err == nil && req.Caches {
			var kv []*tensor.Dense
			if kv, err = s.front.Caches(req.Prefill); err == nil {
				caches, _, err = tensorcodec.EncodePreset(nil, generationPreset, kv...)
			}
		}
	}
	for i := 0; err == nil && i < len(steps); i++ {
		p, err = s.stage.Step(ctx, steps[i], req.Pos+i)
		row = 0
	}
	if err == nil {
		err = n.cfg.Device.Emulate(ctx, time.Since(decoded), 0)
	}
	if err != nil {
		n.gen.dropHeld(key, s) // its cache is part-updated
		if ctx.Err() != nil {
			return transport.Errorf(transport.CodeDeadlineExceeded, "generation: %v", context.Cause(ctx))
		}
		return transport.Errorf(transport.CodeInternal, "generation: %v", err)
	}
	probs := p.Data().([]float32)[row*c.Vocab : (row+1)*c.Vocab]
	tok := lm.Argmax(probs)
	computed := time.Now()
	hdr.Queue, hdr.Decode, hdr.Compute = wait, decoded.Sub(start)-wait, computed.Sub(decoded)
	hdr.Version = m.Version
	w.SetHeader(hdr.marshal())
	ans := binary.AppendUvarint(nil, uint64(tok))
	ans = binary.LittleEndian.AppendUint32(ans, math.Float32bits(probs[tok]))
	if _, err = w.Write(ans); err == nil && caches != nil {
		_, err = w.Write(caches)
	}
	return err
}

// cacheLimit bounds the encoded caches of blocks [cut, decode) of c.
func cacheLimit(c zoo.GPTConfig, cut, decode int) int64 {
	var vi []model.ValueInfo
	for range 2 * (decode - cut) {
		vi = append(vi, model.ValueInfo{Shape: []int{c.Context, c.Dim}})
	}
	return maxSegmentBody(vi)
}

// costsOf measures m's native prefill and step times once (a few runs of
// the whole model as one stage) and apportions them to the blocks by their
// multiply-accumulates.
func (n *Node) costsOf(m *Model, c zoo.GPTConfig) (*gptCosts, error) {
	n.gen.mu.Lock()
	if n.gen.costs == nil {
		n.gen.costs = make(map[string]*gptCosts)
	}
	gc, ok := n.gen.costs[m.ID+"@"+m.Version]
	if !ok {
		gc = &gptCosts{}
		n.gen.costs[m.ID+"@"+m.Version] = gc
	}
	n.gen.mu.Unlock()
	gc.once.Do(func() {
		st, err := partition.NewGPTStage(m.Graph, 0, c.Depth, model.Options{})
		if err != nil {
			gc.err = err
			return
		}
		defer st.Close()
		ctx := context.Background()
		win := tensor.New(tensor.WithShape(1, c.Context, c.Vocab), tensor.WithBacking(make([]float32, c.Context*c.Vocab)))
		one := tensor.New(tensor.WithShape(1, 1, c.Vocab), tensor.WithBacking(make([]float32, c.Vocab)))
		var pf, sp []time.Duration
		for range 3 {
			t := time.Now()
			if _, gc.err = st.Prefill(ctx, win, c.Context/2); gc.err != nil {
				return
			}
			pf = append(pf, time.Since(t))
			t = time.Now()
			if _, gc.err = st.Step(ctx, one, c.Context/2); gc.err != nil {
				return
			}
			sp = append(sp, time.Since(t))
		}
		slices.Sort(pf)
		slices.Sort(sp)
		gc.prefill, gc.step = pf[1], sp[1]
		embed, block, head := float64(c.Vocab*c.Dim), float64(4*c.Dim*c.Dim+2*c.Dim*c.MLP+2*c.Context*c.Dim), float64(c.Dim*c.Vocab)
		total := embed + float64(c.Depth)*block + head
		for k := 0; k <= c.Depth; k++ {
			f := (embed + float64(k)*block) / total
			if k == c.Depth {
				f = 1
			}
			gc.fraction = append(gc.fraction, f)
		}
	})
	return gc, gc.err
}

// planGeneration predicts every pair of a prefill cut and a decode cut at
// or above it on every usable cloud and returns the best pair and cloud
// ("" for edge-only) and the predictions of the best cloud per pair.
func (n *Node) planGeneration(m *Model, c zoo.GPTConfig, promptLen, tokens int, only string) (scheduler.GenerationPlan, string, []GenerationPlanReport, error) {
	none := scheduler.GenerationPlan{PrefillCut: -1, DecodeCut: -1}
	gc, err := n.costsOf(m, c)
	if err != nil {
		return none, "", nil, err
	}
	rows := min(promptLen, c.Context)
	// One block's keys and values for the window's rows, losslessly coded.
	costs := scheduler.GenerationCosts{Blocks: c.Depth, AnswerBytes: 6, KVBytes: int64(2*4*rows*c.Dim) + 64}
	edgeSlow := max(n.cfg.Device.Slowdown, 1)
	for k := 0; k <= c.Depth; k++ {
		f := gc.fraction[k]
		costs.EdgePrefill = append(costs.EdgePrefill, time.Duration(f*edgeSlow*float64(gc.prefill)))
		costs.EdgeStep = append(costs.EdgeStep, time.Duration(f*edgeSlow*float64(gc.step)))
		var pb, sb int64
		switch {
		case k == 0: // one-hot rows: about two bytes each once entropy-coded
			pb, sb = int64(2*rows)+64, 64
		case k < c.Depth:
			pb, sb = int64(4*rows*c.Dim), int64(4*c.Dim)
		}
		costs.PrefillBytes, costs.StepBytes = append(costs.PrefillBytes, pb), append(costs.StepBytes, sb)
	}
	best, cloud := none, ""
	// The pairs this node runs: decode at or above the prefill's cut.
	var reports []GenerationPlanReport
	index := map[[2]int]int{}
	for pc := 0; pc <= c.Depth; pc++ {
		for dc := pc; dc <= c.Depth; dc++ {
			index[[2]int{pc, dc}] = len(reports)
			reports = append(reports, GenerationPlanReport{Cut: pc, DecodeCut: dc, FirstTokenMS: -1})
		}
	}
	consider := func(p Peer, slow float64) error {
		cc := costs
		cc.CloudPrefill, cc.CloudStep = nil, nil
		for k := 0; k <= c.Depth; k++ {
			f := 1 - gc.fraction[k]
			cc.CloudPrefill = append(cc.CloudPrefill, time.Duration(f*slow*float64(gc.prefill)))
			cc.CloudStep = append(cc.CloudStep, time.Duration(f*slow*float64(gc.step)))
		}
		link := scheduler.LinkEstimate{RTT: time.Millisecond, Up: 1e9, Down: 1e9}
		if p.Name != "" {
			link = n.linkEstimate(p)
		}
		_, pairs, err := scheduler.PlanGeneration(cc, link, tokens)
		if err != nil {
			return err
		}
		for _, pl := range pairs {
			i, ok := index[[2]int{pl.PrefillCut, pl.DecodeCut}]
			split := pl.Split(c.Depth)
			if !ok || split != (p.Name != "") {
				continue // a pair this node does not run, or edge-only judged with a cloud
			}
			if r := &reports[i]; r.FirstTokenMS < 0 || ms(pl.Total) < r.FirstTokenMS+float64(tokens-1)*r.PerTokenMS {
				*r = GenerationPlanReport{Cut: pl.PrefillCut, DecodeCut: pl.DecodeCut, Cloud: p.Name, FirstTokenMS: ms(pl.FirstToken), PerTokenMS: ms(pl.PerToken)}
			}
			// Ties go to edge-only (judged first), then to one cut for both.
			if best.PrefillCut < 0 || pl.Total < best.Total || pl.Total == best.Total && best.PrefillCut != best.DecodeCut && pl.PrefillCut == pl.DecodeCut {
				best, cloud = pl, p.Name
			}
		}
		return nil
	}
	if err := consider(Peer{}, 1); err != nil { // edge-only
		return none, "", nil, err
	}
	for _, p := range n.members.Peers() {
		if !n.usableCloud(p, m) || (only != "" && p.Name != only) {
			continue
		}
		if err := consider(p, max(p.Meta.Slowdown, 1)); err != nil {
			return none, "", nil, err
		}
	}
	return best, cloud, reports, nil
}

// genCall is the edge's side of one split generation: the cloud it talks
// to and what it sent since the window's last prefill (for a replay).
type genCall struct {
	n       *Node
	m       *Model
	session string
	cfg     zoo.GPTConfig
	// cut and decode: the first block the cloud runs in a prefill and in
	// a decode step; load takes the caches of blocks [cut, decode) the
	// cloud sends after a fresh prefill.
	cut, decode int
	load        func(n int, kv []*tensor.Dense) error
	cloud       string
	tried       map[string]bool
	// log: the current window's prefill (tokens, encoded window) and the
	// steps after it (each encoded on its own), for a replay.
	prefillN   int
	prefillMsg *tensor.Dense
	steps      []*tensor.Dense
	bytesUp    int64
	bytesDown  int64 // answers and caches received
	stepBytes  int64 // of the step-only messages
	stepMsgs   int
	failovers  int
	used       []string
}

// send sends the request for the current log's tail (a prefill with no
// steps, or the last step) and answers the next token; on a cloud's failure
// it replays the whole log to another.
func (g *genCall) send(ctx context.Context, prefill bool) (int, error) {
	var errs []error
	for attempt := 0; attempt < 4; attempt++ {
		if g.cloud == "" {
			g.cloud = g.n.nextGenCloud(g.m, g.tried)
			if g.cloud == "" {
				errs = append(errs, fmt.Errorf("no other cloud serves %s version %s", g.m.ID, g.m.Version))
				break
			}
			g.failovers++
			prefill = true // the new cloud gets the whole log
		}
		req := segmentRequest{Op: opGenerate, Model: g.m.ID, Version: g.m.Version, Codec: generationPreset.String(), Session: g.session, Cut: g.cut, Decode: g.decode}
		var xs []*tensor.Dense
		if prefill {
			req.Prefill, req.Pos = g.prefillN, g.prefillN
			xs = append([]*tensor.Dense{g.prefillMsg}, g.steps...)
			// The edge's blocks [cut, decode) need the caches of this
			// window unless it has decoded with them already (a replay).
			req.Caches = g.decode > g.cut && len(g.steps) == 0
		} else {
			req.Pos = g.prefillN + len(g.steps) - 1
			xs = g.steps[len(g.steps)-1:]
		}
		tok, kv, sent, got, err := g.n.callGenerate(ctx, g.cloud, g.cfg, req, xs)
		g.bytesUp += sent
		g.bytesDown += got
		if err == nil && req.Caches {
			if err = g.load(g.prefillN, kv); err != nil {
				err = fmt.Errorf("node: caches from %s: %w", g.cloud, err)
			}
		}
		if !prefill {
			g.stepBytes += sent
			g.stepMsgs++
		}
		if err == nil {
			if !slices.Contains(g.used, g.cloud) {
				g.used = append(g.used, g.cloud)
			}
			return tok, nil
		}
		if ctx.Err() != nil {
			return 0, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", g.cloud, err))
		if transport.CodeOf(err) == transport.CodeNotFound && !prefill {
			prefill = true // the cloud lost the session: replay to it
			continue
		}
		g.n.log.Warn("generation: cloud failed, replaying to another", "cloud", g.cloud, "err", err)
		g.tried[g.cloud] = true
		g.cloud = ""
	}
	return 0, fmt.Errorf("node: generation: %w", errors.Join(errs...))
}

// nextGenCloud picks a usable cloud not yet tried (the least loaded, then
// by name).
func (n *Node) nextGenCloud(m *Model, tried map[string]bool) string {
	best, load := "", math.Inf(1)
	for _, p := range n.members.Peers() {
		if tried[p.Name] || !n.usableCloud(p, m) || p.Meta.Role != RoleCloud {
			continue
		}
		if p.Meta.Load < load {
			best, load = p.Name, p.Meta.Load
		}
	}
	return best
}

// callGenerate sends one opGenerate request through the edge's access link
// and decodes the answer: the next token, and the caches when req asked for
// them; sent and got count the payload bytes each way.
func (n *Node) callGenerate(ctx context.Context, cloud string, c zoo.GPTConfig, req segmentRequest, xs []*tensor.Dense) (tok int, kv []*tensor.Dense, sent, got int64, err error) {
	peer, ok := n.members.Peer(cloud)
	if !ok || !peer.Alive {
		return 0, nil, 0, 0, transport.Errorf(transport.CodeUnavailable, "cloud %s is gone", cloud)
	}
	payload, _, err := tensorcodec.EncodePreset(nil, generationPreset, xs...)
	if err != nil {
		return 0, nil, 0, 0, err
	}
	sent = int64(len(payload))
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	link := n.linkTo(cloud)
	up := link.upload(bytes.NewReader(payload))
	resp, err := n.callPeer(cctx, peer, req, up)
	up.done()
	if err != nil {
		return 0, nil, sent, 0, err
	}
	defer resp.Body.Close()
	hdr, err := unmarshalSegmentResponse(resp.Header)
	if err != nil {
		return 0, nil, sent, 0, fmt.Errorf("node: answer from %s: %w", cloud, err)
	}
	if hdr.Version != req.Version {
		return 0, nil, sent, 0, fmt.Errorf("node: %s ran version %q, the generation's is %s", cloud, hdr.Version, req.Version)
	}
	limit := int64(16)
	if req.Caches {
		limit += cacheLimit(c, req.Cut, req.Decode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, nil, sent, int64(len(b)), err
	}
	got = int64(len(b))
	if got > limit {
		return 0, nil, sent, got, fmt.Errorf("node: generate answer from %s is over %d bytes", cloud, limit)
	}
	v, k := binary.Uvarint(b)
	if k <= 0 || len(b) < k+4 || v >= lm.VocabSize || !req.Caches && len(b) != k+4 {
		return 0, nil, sent, got, fmt.Errorf("node: generate answer from %s is malformed (% x)", cloud, b[:min(len(b), 16)])
	}
	if req.Caches {
		if kv, err = tensorcodec.Decode(nil, b[k+4:]); err != nil {
			return 0, nil, sent, got, fmt.Errorf("node: caches from %s: %w", cloud, err)
		}
	}
	return int(v), kv, sent, got, nil
}

// endGeneration tells the clouds used to drop the session (best effort).
func (n *Node) endGeneration(m *Model, session string, clouds []string) {
	for _, c := range clouds {
		peer, ok := n.members.Peer(c)
		if !ok || !peer.Alive {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := n.callPeer(ctx, peer, segmentRequest{Op: opGenerateEnd, Model: m.ID, Version: m.Version, Session: session}, nil)
		if err == nil {
			resp.Body.Close()
		}
		cancel()
	}
}

// Generate continues req.Prompt by req.Tokens tokens, greedily, under
// lm.Start's window rule, split at the request's or the planned cut, and
// calls emit with each token as it is decided (an error from emit stops
// the generation). The tokens are those of the unsplit model (lm.Model).
func (n *Node) Generate(ctx context.Context, req GenerateRequest, emit func(GenerateEvent) error) (*GenerateResult, error) {
	start := time.Now()
	if n.edge == nil {
		return nil, ErrNotEdge
	}
	m, err := n.model(req.Model)
	if err != nil {
		return nil, err
	}
	c, err := gptOf(m)
	if err != nil {
		return nil, err
	}
	if req.Tokens < 1 || req.Tokens > MaxGenerateTokens {
		return nil, fmt.Errorf("%w: %d tokens to generate, want 1..%d", ErrBadRequest, req.Tokens, MaxGenerateTokens)
	}
	if req.Prompt == "" || len(req.Prompt) > MaxPromptBytes {
		return nil, fmt.Errorf("%w: prompt of %d bytes, want 1..%d", ErrBadRequest, len(req.Prompt), MaxPromptBytes)
	}
	if req.Cut > c.Depth || req.Cut < -1 {
		return nil, fmt.Errorf("%w: cut %d of a %d-block model, want -1 (plan) or 0..%d", ErrBadRequest, req.Cut, c.Depth, c.Depth)
	}
	if req.DecodeCut > 0 && (req.Cut < 0 || req.DecodeCut < req.Cut || req.DecodeCut > c.Depth) || req.DecodeCut < -1 {
		return nil, fmt.Errorf("%w: decode cut %d with cut %d of a %d-block model, want 0 or -1 (the cut's), or a cut from the prefill's up to %d", ErrBadRequest, req.DecodeCut, req.Cut, c.Depth, c.Depth)
	}
	prompt := lm.Encode(req.Prompt)
	res := &GenerateResult{Model: m.ID, Version: m.Version, Cut: req.Cut, DecodeCut: req.DecodeCut, Blocks: c.Depth}
	if res.DecodeCut <= 0 {
		res.DecodeCut = res.Cut
	}
	cloud := req.Cloud
	if req.Cut < 0 {
		var best scheduler.GenerationPlan
		best, cloud, res.Plans, err = n.planGeneration(m, c, len(prompt), req.Tokens, req.Cloud)
		if err != nil {
			return nil, err
		}
		res.Cut, res.DecodeCut = best.PrefillCut, best.DecodeCut
	} else if res.Cut < c.Depth && cloud == "" {
		cloud = n.nextGenCloud(m, nil)
	}
	if res.Cut < c.Depth && cloud == "" {
		return nil, fmt.Errorf("%w: no cloud serves %s version %s for the cloud's part of cut %d", ErrNoCloud, m.ID, m.Version, res.Cut)
	}
	// The edge's stages: head [0, Cut) runs in prefills and steps, mid
	// [Cut, DecodeCut) in steps only, on the caches the cloud sends.
	var head, mid *partition.GPTStage
	if res.Cut > 0 {
		if head, err = n.gen.stages.get(m, 0, res.Cut); err != nil {
			return nil, err
		}
		defer n.gen.stages.put(m, head)
	}
	if res.DecodeCut > res.Cut {
		if mid, err = n.gen.stages.get(m, res.Cut, res.DecodeCut); err != nil {
			return nil, err
		}
		defer n.gen.stages.put(m, mid)
	}
	sid := make([]byte, 8)
	_, _ = rand.Read(sid)
	g := &genCall{n: n, m: m, session: hex.EncodeToString(sid), cfg: c, cut: res.Cut, decode: res.DecodeCut, cloud: cloud, tried: map[string]bool{}}
	if mid != nil {
		g.load = mid.LoadCaches
	}
	defer func() { n.endGeneration(m, g.session, g.used) }()

	window := make([]float32, c.Context*c.Vocab)
	windowT := tensor.New(tensor.WithShape(1, c.Context, c.Vocab), tensor.WithBacking(window))
	token := make([]float32, c.Vocab)
	tokenT := tensor.New(tensor.WithShape(1, 1, c.Vocab), tensor.WithBacking(token))
	// edgeRun runs x through the edge's stages with f (emulating its
	// device) and returns the result: a hidden state or probabilities, or
	// x itself when there is no stage (a copy: the log keeps it).
	edgeRun := func(x *tensor.Dense, f func(*partition.GPTStage, *tensor.Dense) (*tensor.Dense, error), stages ...*partition.GPTStage) (*tensor.Dense, error) {
		t := time.Now()
		var err error
		ran := false
		for _, st := range stages {
			if st != nil && err == nil {
				x, err = f(st, x)
				ran = true
			}
		}
		if err == nil && ran {
			err = n.cfg.Device.Emulate(ctx, time.Since(t), 0)
		}
		if err != nil {
			return nil, err
		}
		return x.Clone().(*tensor.Dense), nil
	}
	next := func(ids []int, prefill bool, pos int) (int, error) {
		if prefill {
			clear(window)
			for p, id := range ids {
				window[p*c.Vocab+id] = 1
			}
			y, err := edgeRun(windowT, func(st *partition.GPTStage, x *tensor.Dense) (*tensor.Dense, error) {
				return st.Prefill(ctx, x, len(ids))
			}, head)
			if err != nil {
				return 0, err
			}
			res.Prefills++
			if res.Cut == c.Depth {
				row := len(ids) - 1
				return lm.Argmax(y.Data().([]float32)[row*c.Vocab : (row+1)*c.Vocab]), nil
			}
			g.prefillN, g.prefillMsg, g.steps = len(ids), y, g.steps[:0]
			return g.send(ctx, true)
		}
		clear(token)
		token[ids[len(ids)-1]] = 1
		y, err := edgeRun(tokenT, func(st *partition.GPTStage, x *tensor.Dense) (*tensor.Dense, error) { return st.Step(ctx, x, pos) }, head, mid)
		if err != nil {
			return 0, err
		}
		res.Steps++
		if res.DecodeCut == c.Depth {
			return lm.Argmax(y.Data().([]float32)), nil
		}
		g.steps = append(g.steps, y)
		return g.send(ctx, false)
	}
	seq := append(make([]int, 0, len(prompt)+req.Tokens), prompt...)
	wstart := lm.Start(len(seq), c.Context)
	tok, err := next(seq[wstart:], true, 0)
	var first time.Duration
	for err == nil {
		if first == 0 {
			first = time.Since(start)
		}
		seq = append(seq, tok)
		i := len(seq) - len(prompt) - 1
		if emit != nil {
			if err = emit(GenerateEvent{Index: i, Token: tok, Text: lm.Decode([]int{tok}), Cloud: g.cloud}); err != nil {
				break
			}
		}
		if i+1 == req.Tokens {
			break
		}
		if s := lm.Start(len(seq), c.Context); s != wstart {
			wstart = s
			tok, err = next(seq[wstart:], true, 0)
		} else {
			tok, err = next(seq[wstart:], false, len(seq)-1-wstart)
		}
	}
	if err != nil {
		return nil, err
	}
	total := time.Since(start)
	res.Tokens = seq[len(prompt):]
	res.Text = lm.Decode(res.Tokens)
	res.Cloud = g.cloud
	res.Failovers = g.failovers
	res.BytesUp, res.BytesDown = g.bytesUp, g.bytesDown
	res.BytesPerToken = float64(g.bytesUp) / float64(len(res.Tokens))
	if g.stepMsgs > 0 {
		res.BytesPerStep = float64(g.stepBytes) / float64(g.stepMsgs)
	}
	res.FirstTokenMS, res.TotalMS = ms(first), ms(total)
	if len(res.Tokens) > 1 {
		res.TokensPerSec = float64(len(res.Tokens)-1) / (total - first).Seconds()
	}
	return res, nil
}
