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
// new position's hidden state goes up and the next token comes down. The
// edge keeps what it sent since the window's last prefill, so when its
// cloud is lost it replays that to another, which rebuilds the same cache
// by the same computations: the generation goes on with the same tokens.

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
	// the model's depth: edge-only); -1 lets the edge plan it.
	Cut int
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
	Cut       int    `json:"cut"`
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
	FirstTokenMS  float64 `json:"first_token_ms"`
	TokensPerSec  float64 `json:"tokens_per_s"`
	TotalMS       float64 `json:"total_ms"`
	// Plans are the predictions for every cut (when the edge planned).
	Plans []GenerationPlanReport `json:"plans,omitempty"`
}

// GenerationPlanReport is one cut's prediction.
type GenerationPlanReport struct {
	Cut          int     `json:"cut"`
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
}

// genSession is one caller's cache on this node.
type genSession struct {
	mu    sync.Mutex
	model *Model
	cut   int
	stage *partition.GPTStage
	last  time.Time
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
				if s.stage != nil {
					s.stage.Close()
				}
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
		if s.stage != nil {
			s.stage.Close()
		}
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
	if s.stage != nil {
		s.stage.Close()
		s.stage = nil
	}
}

// closeAll releases every session (the node is stopping).
func (g *genState) closeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, s := range g.sessions {
		if s.stage != nil {
			s.stage.Close()
		}
		delete(g.sessions, k)
	}
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
	if req.Cut >= c.Depth {
		return transport.Errorf(transport.CodeBadRequest, "cut %d of a %d-block model leaves the cloud nothing", req.Cut, c.Depth)
	}
	if req.Prefill > c.Context || req.Pos >= c.Context {
		return transport.Errorf(transport.CodeBadRequest, "prefill %d, position %d: the context is %d", req.Prefill, req.Pos, c.Context)
	}
	width := c.Dim
	if req.Cut == 0 {
		width = c.Vocab
	}
	// At most a window and a step per position: the body's bound.
	limit := maxSegmentBody([]model.ValueInfo{{Shape: []int{2 * c.Context, width}}, {Shape: []int{c.Context, 1}}})
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
		if len(xs) == 0 || !slices.Equal([]int(xs[0].Shape()), []int{1, c.Context, width}) {
			return transport.Errorf(transport.CodeBadRequest, "generate payload: want a 1×%d×%d prefill window first", c.Context, width)
		}
		steps = xs[1:]
	}
	if len(xs) == 0 || req.Pos+len(steps) > c.Context {
		return transport.Errorf(transport.CodeBadRequest, "generate payload: %d steps from position %d in a context of %d", len(steps), req.Pos, c.Context)
	}
	for i, x := range steps {
		if !slices.Equal([]int(x.Shape()), []int{1, 1, width}) {
			return transport.Errorf(transport.CodeBadRequest, "generate payload: step %d is %v, want 1×1×%d", i, []int(x.Shape()), width)
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
	if req.Prefill == 0 && s.stage == nil {
		return transport.Errorf(transport.CodeNotFound, "generation %s was dropped here: replay from the prefill", req.Session)
	}
	if req.Prefill > 0 && (s.stage == nil || s.model != m || s.cut != req.Cut) {
		if s.stage != nil {
			s.stage.Close()
		}
		if s.stage, err = partition.NewGPTStage(m.Graph, req.Cut, c.Depth, model.Options{}); err != nil {
			n.gen.dropHeld(key, s)
			return transport.Errorf(transport.CodeInternal, "generation stage: %v", err)
		}
		s.model, s.cut = m, req.Cut
	}
	if s.model != m || s.cut != req.Cut {
		return transport.Errorf(transport.CodeBadRequest, "generation %s runs version %s from block %d, not %s from %d", req.Session, s.model.Version, s.cut, m.Version, req.Cut)
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
	row := 0
	if req.Prefill > 0 {
		p, err = s.stage.Prefill(ctx, xs[0], req.Prefill)
		row = req.Prefill - 1
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
	_, err = w.Write(ans)
	return err
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

// planGeneration predicts every cut on every usable cloud and returns the
// best cut and cloud ("" for edge-only) and the predictions of the best
// cloud per cut.
func (n *Node) planGeneration(m *Model, c zoo.GPTConfig, promptLen, tokens int, only string) (int, string, []GenerationPlanReport, error) {
	gc, err := n.costsOf(m, c)
	if err != nil {
		return 0, "", nil, err
	}
	rows := min(promptLen, c.Context)
	costs := scheduler.GenerationCosts{Blocks: c.Depth, AnswerBytes: 6}
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
	best, cloud := scheduler.GenerationPlan{PrefillCut: -1, DecodeCut: -1}, ""
	reports := make([]GenerationPlanReport, c.Depth+1)
	for i := range reports {
		reports[i].Cut = i
		reports[i].FirstTokenMS = -1
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
		// One cut serves both phases here: the single-cut plans.
		all := make([]scheduler.GenerationPlan, c.Depth+1)
		for k := range all {
			all[k] = pairs[k*(c.Depth+2)]
		}
		b := all[c.Depth]
		for _, pl := range all {
			if pl.Total < b.Total {
				b = pl
			}
		}
		for k, pl := range all {
			if p.Name == "" && k < c.Depth {
				continue
			}
			if r := &reports[k]; r.FirstTokenMS < 0 || ms(pl.Total) < r.FirstTokenMS+float64(tokens-1)*r.PerTokenMS {
				*r = GenerationPlanReport{Cut: k, FirstTokenMS: ms(pl.FirstToken), PerTokenMS: ms(pl.PerToken)}
				if k < c.Depth {
					r.Cloud = p.Name
				}
			}
		}
		if p.Name == "" {
			b = all[c.Depth]
		}
		if best.DecodeCut < 0 || b.Total < best.Total {
			best = b
			cloud = p.Name
			if b.DecodeCut == c.Depth {
				cloud = ""
			}
		}
		return nil
	}
	if err := consider(Peer{}, 1); err != nil { // edge-only
		return 0, "", nil, err
	}
	for _, p := range n.members.Peers() {
		if !n.usableCloud(p, m) || (only != "" && p.Name != only) {
			continue
		}
		if err := consider(p, max(p.Meta.Slowdown, 1)); err != nil {
			return 0, "", nil, err
		}
	}
	return best.DecodeCut, cloud, reports, nil
}

// genCall is the edge's side of one split generation: the cloud it talks
// to and what it sent since the window's last prefill (for a replay).
type genCall struct {
	n       *Node
	m       *Model
	session string
	cut     int
	cloud   string
	tried   map[string]bool
	// log: the current window's prefill (tokens, encoded window) and the
	// steps after it (each encoded on its own), for a replay.
	prefillN   int
	prefillMsg *tensor.Dense
	steps      []*tensor.Dense
	bytesUp    int64
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
		req := segmentRequest{Op: opGenerate, Model: g.m.ID, Version: g.m.Version, Codec: generationPreset.String(), Session: g.session, Cut: g.cut}
		var xs []*tensor.Dense
		if prefill {
			req.Prefill, req.Pos = g.prefillN, g.prefillN
			xs = append([]*tensor.Dense{g.prefillMsg}, g.steps...)
		} else {
			req.Pos = g.prefillN + len(g.steps) - 1
			xs = g.steps[len(g.steps)-1:]
		}
		tok, sent, err := g.n.callGenerate(ctx, g.cloud, req, xs)
		g.bytesUp += sent
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
// and decodes the answer: the next token.
func (n *Node) callGenerate(ctx context.Context, cloud string, req segmentRequest, xs []*tensor.Dense) (tok int, sent int64, err error) {
	peer, ok := n.members.Peer(cloud)
	if !ok || !peer.Alive {
		return 0, 0, transport.Errorf(transport.CodeUnavailable, "cloud %s is gone", cloud)
	}
	payload, _, err := tensorcodec.EncodePreset(nil, generationPreset, xs...)
	if err != nil {
		return 0, 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	link := n.linkTo(cloud)
	up := link.upload(bytes.NewReader(payload))
	resp, err := n.callPeer(cctx, peer, req, up)
	up.done()
	if err != nil {
		return 0, int64(len(payload)), err
	}
	defer resp.Body.Close()
	hdr, err := unmarshalSegmentResponse(resp.Header)
	if err != nil {
		return 0, int64(len(payload)), fmt.Errorf("node: answer from %s: %w", cloud, err)
	}
	if hdr.Version != req.Version {
		return 0, int64(len(payload)), fmt.Errorf("node: %s ran version %q, the generation's is %s", cloud, hdr.Version, req.Version)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16))
	if err != nil {
		return 0, int64(len(payload)), err
	}
	v, k := binary.Uvarint(b)
	if k <= 0 || len(b) != k+4 || v >= lm.VocabSize {
		return 0, int64(len(payload)), fmt.Errorf("node: generate answer from %s is malformed (% x)", cloud, b)
	}
	return int(v), int64(len(payload)), nil
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
	prompt := lm.Encode(req.Prompt)
	res := &GenerateResult{Model: m.ID, Version: m.Version, Cut: req.Cut, Blocks: c.Depth}
	cloud := req.Cloud
	if req.Cut < 0 {
		res.Cut, cloud, res.Plans, err = n.planGeneration(m, c, len(prompt), req.Tokens, req.Cloud)
		if err != nil {
			return nil, err
		}
	} else if res.Cut < c.Depth && cloud == "" {
		cloud = n.nextGenCloud(m, nil)
	}
	if res.Cut < c.Depth && cloud == "" {
		return nil, fmt.Errorf("%w: no cloud serves %s version %s for the cloud's part of cut %d", ErrNoCloud, m.ID, m.Version, res.Cut)
	}
	var edge *partition.GPTStage
	if res.Cut > 0 {
		if edge, err = partition.NewGPTStage(m.Graph, 0, res.Cut, model.Options{}); err != nil {
			return nil, err
		}
		defer edge.Close()
	}
	sid := make([]byte, 8)
	_, _ = rand.Read(sid)
	g := &genCall{n: n, m: m, session: hex.EncodeToString(sid), cut: res.Cut, cloud: cloud, tried: map[string]bool{}}
	defer func() { n.endGeneration(m, g.session, g.used) }()

	window := make([]float32, c.Context*c.Vocab)
	windowT := tensor.New(tensor.WithShape(1, c.Context, c.Vocab), tensor.WithBacking(window))
	token := make([]float32, c.Vocab)
	tokenT := tensor.New(tensor.WithShape(1, 1, c.Vocab), tensor.WithBacking(token))
	// edgeRun runs the edge's blocks (emulating its device) and returns
	// what goes up: a hidden state, or for cut 0 the one-hot input.
	edgeRun := func(f func() (*tensor.Dense, error), x *tensor.Dense) (*tensor.Dense, error) {
		if edge == nil {
			return x.Clone().(*tensor.Dense), nil
		}
		t := time.Now()
		y, err := f()
		if err == nil {
			err = n.cfg.Device.Emulate(ctx, time.Since(t), 0)
		}
		if err != nil {
			return nil, err
		}
		return y.Clone().(*tensor.Dense), nil
	}
	next := func(ids []int, prefill bool, pos int) (int, error) {
		if prefill {
			clear(window)
			for p, id := range ids {
				window[p*c.Vocab+id] = 1
			}
			y, err := edgeRun(func() (*tensor.Dense, error) { return edge.Prefill(ctx, windowT, len(ids)) }, windowT)
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
		y, err := edgeRun(func() (*tensor.Dense, error) { return edge.Step(ctx, tokenT, pos) }, tokenT)
		if err != nil {
			return 0, err
		}
		res.Steps++
		if res.Cut == c.Depth {
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
	res.BytesUp = g.bytesUp
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
