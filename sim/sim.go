package sim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/internal/cellreplay"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
)

// Config tunes a run; the zero value runs the scenario as written, without
// per-request output.
type Config struct {
	// Seed overrides the scenario's seed when non-zero.
	Seed uint64
	// CSV receives one row per request (see CSVHeader); nil: none.
	CSV io.Writer
	// Resolve supplies models that name neither a synthetic model nor a
	// profile file (the CLI profiles zoo models with the engine).
	Resolve func(name string) (Model, error)
	// Accuracy overrides the scenario's accuracy budget (max_accuracy_loss).
	Accuracy *scheduler.AccuracyBudget
}

// CSVHeader is the first line of the per-request CSV. Times are in
// milliseconds: edge (waiting for the device plus head compute), encode,
// uplink (from ready-to-send to the last byte sent, incl. waiting for or
// sharing the link), prop (one-way delays both ways plus backhaul transfer),
// queue, cloud (tail compute, batched), decode, downlink, total; pred is the
// planner's prediction, oracle the oracle's (Regret on). cut is K or "set"
// (a non-prefix dads plan); exit is the early exit taken or -1; status is
// ok, late (missed the deadline) or done (no deadline).
const CSVHeader = "id,device,class,arrival_ms,cut,codec,cloud,exit,raw_bytes,wire_bytes,edge_ms,encode_ms,uplink_ms,prop_ms,queue_ms,cloud_ms,decode_ms,downlink_ms,total_ms,pred_ms,oracle_ms,deadline_ms,status,energy_mj\n"

const (
	linkFixed uint8 = iota
	linkTrace
	linkCell
	linkCellReplay // burst-aware: CellReplay traces (crUp, crDown)
)

type class struct {
	spec      *EdgeSpec
	idx       int32
	name      []byte
	model     *Model
	exits     []ExitSpec
	cumExit   []float64 // cumulative exit probabilities
	edge      *partition.Profile
	edgePre   []int64 // prefix sums of edge latency
	policy    string
	shared    scheduler.Policy // stateless policies are shared
	perDevice bool             // auto: one instance per device
	oracle    bool
	deadline  int64
	link      uint8
	phases    []linkPhase // fixed-link values over time; one entry otherwise
	traceUp   *Trace
	traceDown *Trace
	// crUp and crDown are a CellReplay link's directions (crDown may be
	// nil: the fixed down rate); upCurve and downCurve the planners'
	// transfer curves (nil under the plain model).
	crUp, crDown       *cellreplay.Link
	upCurve, downCurve *scheduler.TransferCurve
	cell               int32
	arrTrace           *Trace // arrival times (ms) for process trace
	power              scheduler.PowerModel
	objective          scheduler.Objective
	// Stateless policy and device-independent estimates (no noise, no
	// trace phase): every device of the class would plan the same, so the
	// plan is made once per class and estimation sample.
	classPlan bool
	cached    planRT
	cacheTick int64
}

// linkPhase holds a link's values from time at on: rates in bytes per ns.
type linkPhase struct {
	at       int64
	up, down float64
	delay    int64
}

// phase returns the link values in force at time t.
func (c *class) phase(t int64) *linkPhase {
	i := len(c.phases) - 1
	for i > 0 && c.phases[i].at > t {
		i--
	}
	return &c.phases[i]
}

type device struct {
	class    int32
	edgeFree int64
	upFree   int64
	downFree int64
	phase    int64 // trace phase, ns
	arrIdx   int64 // next arrival opportunity (trace arrivals)
	policy   scheduler.Policy
	plan     planRT
	planTick int64
	// Learned estimation: what the device has seen of its link, learned
	// by the rules an edge node learns by (scheduler.EdgeLearner).
	learn    DeviceLearner
	learnVer int64 // bumped by every uplink sample; the plan is remade when it moves
	planVer  int64 // learnVer when the plan was made
}

// planRT is a plan with everything the per-request path needs precomputed.
type planRT struct {
	ok       bool
	edgeOnly bool
	k        int
	head     []int
	codec    int32
	server   int32
	raw      int64
	wire     int64
	enc, dec int64
	edgeNs   int64
	tailNs   int64 // on the server's group
	pred     int64
	lossy    bool    // the codec is lossy (certified by calibration)
	lower    float64 // the plan's agreement lower bound (scheduler.Accuracy.Lower)
}

type group struct {
	spec    *CloudSpec
	profile *partition.Profile
	pre     []int64
}

type server struct {
	group      int32
	id         []byte
	idStr      string
	workers    int
	busy       int
	queue      []int32 // FIFO of request slots
	qhead      int
	queuedWork int64
	busyTime   int64
	waitArmed  bool
	samples    []int64 // backlog ring
}

type request struct {
	id         int64
	dev        int32
	arrival    int64
	exitIdx    int32
	exitAt     int
	edgeNs     int64 // compute on the device (head or up to the exit)
	plan       planRT
	edgeEnd    int64 // head done
	ready      int64 // encoded, ready to send
	upDone     int64
	upStart    int64
	cloudArr   int64
	start      int64 // service start
	service    int64
	cloudEnd   int64
	downEnd    int64
	prop       int64
	oracle     int64 // regret (ns); -1 when not scored
	oraclePred int64
	downStart  int64
	next       int32 // batch list
	probe      bool  // a link probe (learned estimation), not a request
}

type world struct {
	s       *Scenario
	cfg     Config
	rng     *rand.Rand
	q       eventHeap
	now     int64
	end     int64
	classes []class
	devs    []device
	groups  []group
	servers []server
	cells   []cell
	cellSmp [][]int32 // per cell ring of flow counts
	ring    int64
	tickNs  int64
	lagNs   int64
	learned bool // Estimation.Source "learned"
	codecs  []scheduler.CodecModel
	budget  scheduler.AccuracyBudget
	// energyWeight is the weighted objective's seconds per joule.
	energyWeight float64
	codecNm      [][]byte
	srvIdx       map[string]int32
	reqs         []request
	free         []int32
	nextID       int64
	bhDelay      int64
	bhRate       float64 // bytes per ns, 0 infinite
	clouds       []scheduler.CloudInput
	in           scheduler.Inputs
	oracle       *scheduler.Auto
	csv          *bufio.Writer
	line         []byte
	sum          Summary
	hist         hist
	sumLat       float64
	predErr      float64
	regret       float64
	lastEnd      int64
	lastTick     int64
	queueSum     float64
	predN        int64
	regretN      int64
}

// Run simulates s and returns its summary; per-request rows go to
// cfg.CSV. ctx cancels a long run.
func Run(ctx context.Context, s *Scenario, cfg Config) (*Summary, error) {
	w, err := newWorld(s, cfg)
	if err != nil {
		return nil, err
	}
	if err := w.run(ctx); err != nil {
		return nil, err
	}
	return w.summary(), nil
}

func (w *world) path(p string) string {
	if filepath.IsAbs(p) || w.s.dir == "" {
		return p
	}
	return filepath.Join(w.s.dir, p)
}

func (w *world) loadTrace(field, p string) (*Trace, error) {
	f, err := os.Open(w.path(p))
	if err != nil {
		return nil, &ScenarioError{Field: field, Msg: err.Error()}
	}
	defer f.Close()
	t, err := ParseTrace(f)
	if err != nil {
		return nil, &ScenarioError{Field: field, Msg: err.Error()}
	}
	return t, nil
}

func prefix(p *partition.Profile) []int64 {
	pre := make([]int64, len(p.Nodes)+1)
	for i, n := range p.Nodes {
		pre[i+1] = pre[i] + int64(n.Latency)
	}
	return pre
}

func newWorld(s *Scenario, cfg Config) (*world, error) {
	if s == nil {
		return nil, fmt.Errorf("sim: nil scenario")
	}
	seed := s.Seed
	if cfg.Seed != 0 {
		seed = cfg.Seed
	}
	w := &world{s: s, cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), lastTick: -1}
	w.sum = Summary{Scenario: s.Name, Seed: seed, Policy: s.Policy, AgreementLower: 1}
	w.end = int64(s.Duration)
	w.tickNs = int64(s.Estimation.Interval)
	w.lagNs = int64(s.Estimation.Lag)
	w.learned = s.Estimation.Source == SourceLearned
	w.ring = w.lagNs/w.tickNs + 3
	w.bhDelay = int64(s.Backhaul.Delay)
	w.bhRate = s.Backhaul.RateMbps * 1e6 / 8 / 1e9
	if len(s.Codecs) == 0 {
		w.codecs = []scheduler.CodecModel{scheduler.RawCodec}
	}
	for i := range s.Codecs {
		c := &s.Codecs[i]
		fid, _ := c.codecFidelity() // validated
		w.codecs = append(w.codecs, scheduler.CodecModel{Name: c.Name, Ratio: c.Ratio, EncodeBps: c.EncodeMBps * 1e6, DecodeBps: c.DecodeMBps * 1e6,
			MaxRelErr: c.MaxRelErr, CutRatios: c.CutRatios, Fidelity: fid})
	}
	budget, err := s.budget(cfg)
	if err != nil {
		return nil, err
	}
	w.budget = budget
	w.energyWeight = s.EnergyWeight
	for _, c := range w.codecs {
		w.codecNm = append(w.codecNm, []byte(c.Name))
	}
	// Models.
	models := make(map[string]*Model, len(s.Models))
	exits := make(map[string][]ExitSpec)
	for i, ms := range s.Models {
		f := fmt.Sprintf("models[%d]", i)
		var m Model
		var err error
		switch {
		case ms.Synthetic != "":
			m, err = SyntheticModel(ms.Synthetic)
		case ms.Profile != "":
			var fh *os.File
			fh, err = os.Open(w.path(ms.Profile))
			if err == nil {
				m, err = ReadModel(fh)
				fh.Close()
			}
		case cfg.Resolve != nil:
			m, err = cfg.Resolve(ms.Name)
			if err == nil {
				err = m.check()
			}
		default:
			err = fmt.Errorf("no profile: set synthetic or profile (or run through a resolver that knows %q)", ms.Name)
		}
		if err != nil {
			return nil, &ScenarioError{Field: f, Msg: err.Error()}
		}
		for j, x := range ms.Exits {
			if x.After >= len(m.Profile.Nodes) {
				return nil, &ScenarioError{Field: fmt.Sprintf("%s.exits[%d].after", f, j), Msg: fmt.Sprintf("must be < %d (the model's nodes)", len(m.Profile.Nodes))}
			}
		}
		m.codecs = codecsFor(w.codecs, s.Codecs, len(m.Profile.Nodes))
		if ms.Calibration != "" {
			tab, err := scheduler.LoadCalibration(w.path(ms.Calibration))
			if err == nil && tab.Model.Nodes != len(m.Profile.Nodes) {
				err = fmt.Errorf("table of %s has %d nodes, the model's profile %d", tab.Model.ID, tab.Model.Nodes, len(m.Profile.Nodes))
			}
			if err != nil {
				return nil, &ScenarioError{Field: f + ".calibration", Msg: err.Error()}
			}
			m.codecs = tab.Apply(m.codecs)
		}
		models[ms.Name] = &m
		exits[ms.Name] = ms.Exits
	}
	// Cells.
	cellIdx := map[string]int32{}
	for i, c := range s.Cells {
		cellIdx[c.Name] = int32(i)
		w.cells = append(w.cells, cell{rate: c.UpMbps * 1e6 / 8 / 1e9, down: c.DownMbps * 1e6 / 8 / 1e9, delay: int64(c.Delay)})
		w.cellSmp = append(w.cellSmp, make([]int32, w.ring))
	}
	// Clouds: every server is planned against the first model's profile
	// scaled by its group's slowdown; groups keep one profile per model.
	w.srvIdx = map[string]int32{}
	for gi := range s.Clouds {
		g := &s.Clouds[gi]
		w.groups = append(w.groups, group{spec: g})
		for i := 0; i < g.Count; i++ {
			id := fmt.Sprintf("%s/%d", g.Name, i)
			if g.Count == 1 {
				id = g.Name
			}
			w.srvIdx[id] = int32(len(w.servers))
			w.servers = append(w.servers, server{group: int32(gi), id: []byte(id), idStr: id, workers: g.Workers, samples: make([]int64, w.ring)})
		}
	}
	// Classes and devices.
	total := 0
	for i := range s.Edges {
		total += s.Edges[i].Count
	}
	w.devs = make([]device, 0, total)
	for ci := range s.Edges {
		e := &s.Edges[ci]
		f := fmt.Sprintf("edges[%d]", ci)
		m := models[e.Model]
		c := class{spec: e, idx: int32(ci), name: []byte(e.Name), model: m, deadline: int64(e.Deadline), power: e.Power.model(&e.Link, &e.Arrivals)}
		obj := s.Objective
		if e.Objective != "" {
			obj = e.Objective
		}
		c.objective, _ = scheduler.ParseObjective(obj) // validated with the scenario
		sum := 0.0
		c.exits = exits[e.Model]
		for _, x := range c.exits {
			sum += x.Prob
			c.cumExit = append(c.cumExit, sum)
		}
		c.edge = scaled(m.Profile, e.Slowdown, e.Name)
		c.edgePre = prefix(c.edge)
		c.policy = s.Policy
		if e.Policy != "" {
			c.policy = e.Policy
		}
		pol, err := scheduler.ParsePolicy(c.policy)
		if err != nil {
			return nil, &ScenarioError{Field: f + ".policy", Msg: err.Error()}
		}
		if _, ok := pol.(*scheduler.Auto); ok {
			c.perDevice = pol.Name() == "auto"
			c.oracle = pol.Name() == "oracle"
		}
		c.shared = pol
		switch {
		case e.Cell != "":
			c.link, c.cell = linkCell, cellIdx[e.Cell]
			c.phases = []linkPhase{{delay: w.cells[c.cell].delay, down: w.cells[c.cell].down}}
		default:
			bps := func(mbps, loss float64) float64 { return mbps * 1e6 / 8 / 1e9 * (1 - loss) }
			c.phases = []linkPhase{{delay: int64(e.Link.Delay), up: bps(e.Link.UpMbps, e.Link.Loss), down: bps(e.Link.DownMbps, e.Link.Loss)}}
			for _, ph := range e.Link.Schedule {
				lp := linkPhase{at: int64(ph.At), delay: int64(ph.Delay), up: bps(ph.UpMbps, ph.Loss), down: bps(ph.DownMbps, ph.Loss)}
				if lp.at == 0 {
					c.phases[0] = lp
				} else {
					c.phases = append(c.phases, lp)
				}
			}
			if e.Link.TraceUp != "" {
				t, err := w.loadTrace(f+".link.trace_up", e.Link.TraceUp)
				if err != nil {
					return nil, err
				}
				c.link, c.traceUp = linkTrace, t
			}
			if e.Link.TraceDown != "" {
				t, err := w.loadTrace(f+".link.trace_down", e.Link.TraceDown)
				if err != nil {
					return nil, err
				}
				c.traceDown = t
			}
			if cr := e.Link.CellReplay; cr != nil {
				if w.learned {
					return nil, &ScenarioError{Field: f + ".link.cellreplay", Msg: "learned estimation is not modelled on a CellReplay link (use sampled)"}
				}
				l, err := w.loadCellReplay(f+".link.cellreplay", cr.UpLight, cr.UpHeavy)
				if err != nil {
					return nil, err
				}
				c.link, c.crUp = linkCellReplay, l
				if cr.DownLight != "" {
					if c.crDown, err = w.loadCellReplay(f+".link.cellreplay", cr.DownLight, cr.DownHeavy); err != nil {
						return nil, err
					}
				}
				if cr.Model != "plain" {
					c.upCurve = scheduler.CurveFromCellReplay(c.crUp)
					if c.crDown != nil {
						c.downCurve = scheduler.CurveFromCellReplay(c.crDown)
					}
				}
			}
		}
		if e.Arrivals.Process == "trace" {
			t, err := w.loadTrace(f+".arrivals.file", e.Arrivals.File)
			if err != nil {
				return nil, err
			}
			c.arrTrace = t
		}
		if len(w.servers) > 0 {
			if err := w.checkModel(f, m); err != nil {
				return nil, err
			}
		}
		c.classPlan = !c.perDevice && !c.oracle && !w.learned && s.Estimation.Noise == 0 && c.link != linkTrace && c.link != linkCellReplay && c.traceDown == nil
		c.cacheTick = -3
		w.classes = append(w.classes, c)
		if o := c.objective.String(); !slices.Contains(strings.Split(w.sum.Objective, ", "), o) {
			if w.sum.Objective != "" {
				w.sum.Objective += ", "
			}
			w.sum.Objective += o
		}
		for i := 0; i < e.Count; i++ {
			d := device{class: int32(ci), planTick: -1, policy: c.shared}
			if c.perDevice {
				d.policy = scheduler.NewAuto(scheduler.DefaultAutoConfig())
			}
			if c.traceUp != nil {
				d.phase = w.rng.Int64N(c.traceUp.period) * 1_000_000
			}
			if c.crUp != nil {
				d.phase = w.rng.Int64N(int64(c.crUp.Period()))
			}
			w.devs = append(w.devs, d)
		}
	}
	// Per-group cloud profiles: one model per scenario is the common case;
	// the group keeps the profile of the first edge class's model and every
	// class must use a model of the same shape when clouds exist.
	for gi := range w.groups {
		g := &w.groups[gi]
		g.profile = scaled(w.classes[0].model.Profile, g.spec.Slowdown, g.spec.Name)
		g.pre = prefix(g.profile)
	}
	w.clouds = make([]scheduler.CloudInput, len(w.servers))
	w.oracle = scheduler.NewAuto(scheduler.AutoConfig{Threshold: 0, Consecutive: 1, Label: "oracle"})
	if cfg.CSV != nil {
		w.csv = bufio.NewWriterSize(cfg.CSV, 1<<16)
	}
	return w, nil
}

func (w *world) checkModel(f string, m *Model) error {
	first := w.classes
	if len(first) == 0 {
		return nil
	}
	if len(first[0].model.Profile.Nodes) != len(m.Profile.Nodes) {
		return &ScenarioError{Field: f + ".model", Msg: "all edge classes must run the same model when clouds serve them"}
	}
	return nil
}

func (w *world) run(ctx context.Context) error {
	// First arrivals.
	for i := range w.devs {
		if t, ok := w.nextArrival(int32(i), 0, true); ok {
			w.q.push(t, evArrival, int32(i), 0)
		}
	}
	if len(w.cells) > 0 || len(w.servers) > 0 {
		w.q.push(0, evTick, 0, 0)
	}
	if w.csv != nil {
		w.csv.WriteString(CSVHeader)
	}
	for w.q.len() > 0 {
		ev := w.q.pop()
		w.now = ev.at
		w.sum.Events++
		if w.sum.Events&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		switch ev.kind {
		case evArrival:
			w.arrival(ev.a)
		case evUpStart:
			w.upStart(ev.b)
		case evCellDone:
			w.cellDone(ev.a, ev.b)
		case evCloudArr:
			w.cloudArrive(ev.b)
		case evCloudDone:
			w.cloudDone(ev.a, ev.b)
		case evBatchWait:
			w.servers[ev.a].waitArmed = false
			w.tryStart(ev.a)
		case evTick:
			w.tick()
		case evProbeDone:
			w.probeDone(ev.b)
		}
	}
	if w.csv != nil {
		return w.csv.Flush()
	}
	return nil
}

// nextArrival returns the device's next arrival after now (first: the
// first one), false past the end.
func (w *world) nextArrival(d int32, now int64, first bool) (int64, bool) {
	dv := &w.devs[d]
	c := &w.classes[dv.class]
	a := &c.spec.Arrivals
	var t int64
	switch a.Process {
	case "periodic":
		iv := int64(1e9 / a.FPS)
		if first {
			t = w.rng.Int64N(max(iv, 1))
		} else {
			t = now + iv
		}
	case "closed":
		// The next request follows the answer (see done); the first comes
		// at a random point of the first think time.
		if !first {
			return 0, false
		}
		if a.Think > 0 {
			t = w.rng.Int64N(int64(a.Think))
		}
	case "trace":
		if first {
			dv.phase = w.rng.Int64N(c.arrTrace.period) * 1_000_000
			dv.arrIdx = c.arrTrace.count(dv.phase)
		}
		t = c.arrTrace.at(dv.arrIdx) - dv.phase
		dv.arrIdx++
	default:
		t = now + int64(w.rng.ExpFloat64()/a.Rate*1e9)
	}
	return t, t < w.end
}

func (w *world) alloc() int32 {
	if n := len(w.free); n > 0 {
		i := w.free[n-1]
		w.free = w.free[:n-1]
		return i
	}
	w.reqs = append(w.reqs, request{})
	return int32(len(w.reqs) - 1)
}

func (w *world) arrival(d int32) {
	if t, ok := w.nextArrival(d, w.now, false); ok {
		w.q.push(t, evArrival, d, 0)
	}
	dv := &w.devs[d]
	c := &w.classes[dv.class]
	w.ensurePlan(d)
	if w.learned && dv.plan.edgeOnly && len(w.servers) > 0 {
		if dv.learn.Probe(w.now) {
			w.probe(d)
		}
	}
	ri := w.alloc()
	r := &w.reqs[ri]
	*r = request{id: w.nextID, dev: d, arrival: w.now, exitIdx: -1, plan: dv.plan, oracle: -1, next: -1}
	w.nextID++
	w.sum.Requests++
	n := len(c.edge.Nodes)
	r.exitAt = n
	if len(c.cumExit) > 0 {
		u := w.rng.Float64()
		for i, p := range c.cumExit {
			if u < p {
				r.exitIdx = int32(i)
				r.exitAt = c.exits[i].After
				break
			}
		}
	}
	if w.s.Regret {
		w.scoreRegret(d, r)
	}
	start := max(w.now, dv.edgeFree)
	p := &r.plan
	if p.k < 0 && !p.edgeOnly {
		r.exitIdx, r.exitAt = -1, n // exits apply to prefix plans only
	}
	if p.edgeOnly || (p.k >= 0 && r.exitAt <= p.k) {
		// Runs (to the exit) on the device.
		stop := n
		if p.edgeOnly || r.exitAt <= p.k {
			stop = r.exitAt
		}
		r.edgeNs = c.edgePre[stop]
		r.edgeEnd = start + r.edgeNs
		dv.edgeFree = r.edgeEnd
		r.plan.edgeOnly = true
		r.ready, r.upDone, r.cloudEnd, r.downEnd = r.edgeEnd, r.edgeEnd, r.edgeEnd, r.edgeEnd
		w.done(ri, r.edgeEnd)
		return
	}
	if r.exitAt < n && p.k >= 0 {
		g := &w.groups[w.servers[p.server].group]
		p.tailNs = g.pre[r.exitAt] - g.pre[p.k]
	}
	r.edgeNs = p.edgeNs
	r.edgeEnd = start + p.edgeNs
	r.ready = r.edgeEnd + p.enc
	dv.edgeFree = r.ready
	w.send(ri)
}

// send puts request (or probe) ri on its device's uplink once it is ready.
func (w *world) send(ri int32) {
	r := &w.reqs[ri]
	dv := &w.devs[r.dev]
	c := &w.classes[dv.class]
	switch c.link {
	case linkCell:
		w.q.push(r.ready, evUpStart, 0, ri)
		return
	case linkTrace:
		r.upStart = max(r.ready, dv.upFree)
		r.upDone = c.traceUp.finish(r.upStart, dv.phase, r.plan.wire)
	case linkCellReplay:
		// The replay includes the base delay: airtime ends that much
		// before the last byte arrives.
		r.upStart = max(r.ready, dv.upFree)
		at := time.Duration(r.upStart + dv.phase)
		base := int64(c.crUp.BaseDelay(at))
		r.upDone = int64(c.crUp.Transfer(at, r.plan.wire)) - dv.phase - base
		dv.upFree = r.upDone
		w.toCloud(ri, base)
		return
	default:
		r.upStart = max(r.ready, dv.upFree)
		r.upDone = r.upStart + int64(math.Ceil(float64(r.plan.wire)/c.phase(r.upStart).up))
	}
	dv.upFree = r.upDone
	w.toCloud(ri, c.phase(r.upDone).delay)
}

// probe sends a link probe from device d (learned estimation), as an edge
// node does while it computes locally: scheduler.ProbeSize of the current
// estimate, to the first server, which answers at once.
func (w *world) probe(d int32) {
	size := int64(scheduler.ProbeSize(w.linkEstimate(d, false).Up))
	ri := w.alloc()
	w.reqs[ri] = request{id: -1, dev: d, arrival: w.now, ready: w.now, exitIdx: -1, oracle: -1, next: -1, probe: true,
		plan: planRT{ok: true, wire: size}}
	w.sum.Probes++
	w.send(ri)
}

// probeDone learns from a probe whose answer is back.
func (w *world) probeDone(ri int32) {
	r := &w.reqs[ri]
	dv := &w.devs[r.dev]
	air := r.upDone - r.upStart
	w.learnUpload(dv, r.plan.wire, air, r.upStart)
	dv.learn.ProbeDone(w.now, air)
	w.free = append(w.free, ri)
}

// learnUpload feeds device dv's learner what an upload of n bytes that
// left at start with airtime air (ns) measured, as a node learns from the
// cloud's timing of the body's arrival: the uplink rate (with the
// scenario's noise on the sample) and the RTT the packets met.
func (w *world) learnUpload(dv *device, n, air, start int64) {
	c := &w.classes[dv.class]
	rate, _ := w.sampleRate(n, air)
	dv.learnVer++
	dv.learn.Pings(w.now, func(t int64) time.Duration { return w.pathRTT(c, t) })
	dv.learn.Upload(w.now, rate, air, w.pathRTT(c, start))
}

// sampleRate is the rate of n bytes in air ns, with the scenario's noise;
// ok false when there is none to learn.
func (w *world) sampleRate(n, air int64) (float64, bool) {
	if n <= 0 || air <= 0 {
		return 0, false
	}
	rate := float64(n) / time.Duration(air).Seconds() // as a node's learner computes it
	if w.s.Estimation.Noise > 0 {
		rate *= max(0.05, 1+w.s.Estimation.Noise*w.rng.NormFloat64())
	}
	return rate, true
}

// pathRTT is the RTT of class c's path at t: its access link's delay and
// the backhaul's, each way.
func (w *world) pathRTT(c *class, t int64) time.Duration {
	return 2 * time.Duration(c.phase(t).delay+w.bhDelay)
}

func (w *world) toCloud(ri int32, linkDelay int64) {
	r := &w.reqs[ri]
	bh := w.bhDelay
	if w.bhRate > 0 {
		bh += int64(float64(r.plan.wire) / w.bhRate)
	}
	r.prop += linkDelay + bh
	r.cloudArr = r.upDone + linkDelay + bh
	if r.probe {
		// The cloud discards it and answers with one byte.
		c := &w.classes[w.devs[r.dev].class]
		w.q.push(r.cloudArr+w.bhDelay+c.phase(r.cloudArr).delay, evProbeDone, 0, ri)
		return
	}
	w.q.push(r.cloudArr, evCloudArr, 0, ri)
}

func (w *world) upStart(ri int32) {
	r := &w.reqs[ri]
	cl := &w.classes[w.devs[r.dev].class]
	c := &w.cells[cl.cell]
	r.upStart = w.now
	c.advance(w.now)
	c.flows.Push(c.v+float64(r.plan.wire), ri)
	c.gen++
	w.q.push(c.next(w.now), evCellDone, cl.cell, c.gen)
}

func (w *world) cellDone(ci, gen int32) {
	c := &w.cells[ci]
	if gen != c.gen {
		return
	}
	c.advance(w.now)
	for c.due() {
		_, req := c.flows.Pop()
		r := &w.reqs[req]
		r.upDone = w.now
		w.toCloud(req, c.delay)
	}
	if c.flows.Len() > 0 {
		c.gen++
		w.q.push(c.next(w.now), evCellDone, ci, c.gen)
	} else {
		c.v = 0 // idle: restart virtual time, keeping it small and exact
	}
}

func (w *world) cloudArrive(ri int32) {
	r := &w.reqs[ri]
	s := &w.servers[r.plan.server]
	r.service = r.plan.tailNs + r.plan.dec
	if w.groups[s.group].spec.Service == "exponential" {
		r.service = int64(w.rng.ExpFloat64() * float64(r.service))
	}
	s.queue = append(s.queue, ri)
	s.queuedWork += r.service
	w.tryStart(r.plan.server)
}

func (w *world) tryStart(si int32) {
	s := &w.servers[si]
	g := w.groups[s.group].spec
	for s.busy < s.workers && s.qhead < len(s.queue) {
		waiting := len(s.queue) - s.qhead
		b := 1
		if g.Batch.Max > 1 {
			oldest := w.reqs[s.queue[s.qhead]].cloudArr
			if waiting < g.Batch.Max && oldest+int64(g.Batch.Wait) > w.now {
				if !s.waitArmed {
					s.waitArmed = true
					w.q.push(oldest+int64(g.Batch.Wait), evBatchWait, si, 0)
				}
				return
			}
			b = min(waiting, g.Batch.Max)
		}
		var longest, sum int64
		head := int32(-1)
		for j := b - 1; j >= 0; j-- {
			ri := s.queue[s.qhead+j]
			r := &w.reqs[ri]
			longest = max(longest, r.service)
			sum += r.service
			r.next = head
			head = ri
			r.start = w.now
			s.queuedWork -= r.service
		}
		s.qhead += b
		if s.qhead > 1024 && s.qhead*2 > len(s.queue) {
			n := copy(s.queue, s.queue[s.qhead:])
			s.queue = s.queue[:n]
			s.qhead = 0
		}
		svc := longest
		if b > 1 {
			svc = longest + int64(g.Batch.Scale*float64(sum-longest))
		}
		for ri := head; ri >= 0; ri = w.reqs[ri].next {
			w.reqs[ri].service = svc
		}
		s.busy++
		s.busyTime += svc
		w.q.push(w.now+svc, evCloudDone, si, head)
	}
}

func (w *world) cloudDone(si, head int32) {
	s := &w.servers[si]
	s.busy--
	for ri := head; ri >= 0; {
		r := &w.reqs[ri]
		next := r.next
		r.cloudEnd = w.now
		dv := &w.devs[r.dev]
		c := &w.classes[dv.class]
		bh := w.bhDelay
		out := c.edge.OutputBytes
		if w.bhRate > 0 {
			bh += int64(float64(out) / w.bhRate)
		}
		ph := c.phase(w.now)
		delay := ph.delay
		if c.crDown != nil {
			delay = int64(c.crDown.BaseDelay(time.Duration(w.now + bh + dv.phase)))
		} else if c.crUp != nil {
			delay = int64(c.crUp.BaseDelay(time.Duration(w.now + bh + dv.phase)))
		}
		at := w.now + bh + delay
		start := max(at, dv.downFree)
		r.downStart = start
		switch {
		case c.crDown != nil:
			t := time.Duration(start - delay + dv.phase)
			r.downEnd = max(int64(c.crDown.Transfer(t, out))-dv.phase, start)
		case c.traceDown != nil:
			r.downEnd = c.traceDown.finish(start, dv.phase, out)
		default:
			r.downEnd = start + int64(math.Ceil(float64(out)/ph.down))
		}
		dv.downFree = r.downEnd
		r.prop += bh + delay
		w.done(ri, r.downEnd)
		ri = next
	}
	w.tryStart(si)
}

func (w *world) tick() {
	j := w.now / w.tickNs
	w.lastTick = j
	slot := j % w.ring
	for i := range w.cells {
		w.cellSmp[i][slot] = int32(w.cells[i].flows.Len())
	}
	for i := range w.servers {
		s := &w.servers[i]
		w.servers[i].samples[slot] = s.queuedWork / int64(s.workers)
	}
	if w.now+w.tickNs < w.end {
		w.q.push(w.now+w.tickNs, evTick, 0, 0)
	}
}

// done records request ri, which reaches its device at end (rows are
// written when the outcome is known, not in completion order).
func (w *world) done(ri int32, end int64) {
	r := &w.reqs[ri]
	dv := &w.devs[r.dev]
	c := &w.classes[dv.class]
	total := end - r.arrival
	w.lastEnd = max(w.lastEnd, end)
	w.hist.add(total)
	w.sumLat += float64(total)
	p := &r.plan
	edge := r.edgeEnd - r.arrival
	var enc, up, queue, cloud, dec, down, airtime int64
	if !p.edgeOnly {
		enc = p.enc
		up = r.upDone - r.ready
		airtime = r.upDone - r.upStart
		queue = r.start - r.cloudArr
		dec = p.dec
		cloud = r.service - dec
		down = total - edge - enc - up - r.prop - queue - r.service
		w.sum.Offloaded++
		w.queueSum += float64(queue)
		if p.lossy {
			w.sum.LossyRequests++
		}
		w.sum.AgreementLower = min(w.sum.AgreementLower, p.lower)
		if w.learned {
			// The edge learns from what the transfer achieved, and
			// measures the RTT with it.
			w.learnUpload(dv, p.wire, airtime, r.upStart)
			if rate, ok := w.sampleRate(c.edge.OutputBytes, r.downEnd-r.downStart); ok {
				dv.learn.Download(w.now, rate, r.downEnd-r.downStart)
			}
		}
	}
	if r.exitIdx >= 0 {
		w.sum.EarlyExits++
	}
	// Energy by the scheduler's power model, from what the request did:
	// compute, the radio while it sent and received at the rates it got,
	// and while it waited for the result, plus the tail.
	var eb scheduler.EnergyBreakdown
	if p.edgeOnly {
		eb = c.power.Energy(scheduler.Breakdown{EdgeCompute: time.Duration(r.edgeNs)}, 0, 0, false)
	} else {
		downAir := r.downEnd - r.downStart
		b := scheduler.Breakdown{EdgeCompute: time.Duration(r.edgeNs), Encode: time.Duration(enc), Uplink: time.Duration(airtime),
			Queue: time.Duration(queue), CloudCompute: time.Duration(cloud), Decode: time.Duration(dec), Downlink: time.Duration(downAir),
			RTT: time.Duration(max(r.downStart-r.upDone-queue-r.service, 0))}
		eb = c.power.Energy(b, rateOf(p.wire, airtime), rateOf(c.edge.OutputBytes, downAir), true)
	}
	energy := eb.Total * 1e3 // mJ
	w.sum.EdgeEnergyJ += eb.Total
	w.sum.EnergyComputeJ += eb.Compute
	w.sum.EnergyRadioJ += eb.Radio
	w.sum.EnergyTailJ += eb.Tail
	status := "done"
	if c.deadline > 0 {
		w.sum.WithDeadline++
		if total <= c.deadline {
			status = "ok"
			w.sum.SLOHitRate++
		} else {
			status = "late"
		}
	}
	if p.pred > 0 && r.exitIdx < 0 {
		w.predErr += math.Abs(float64(p.pred-total)) / float64(total)
		w.predN++
	}
	if r.oracle >= 0 {
		w.regret += float64(r.oracle)
		w.regretN++
	}
	if w.csv != nil {
		w.writeRow(r, c, edge, enc, up, queue, cloud, dec, down, total, status, energy)
	}
	if a := &c.spec.Arrivals; a.Process == "closed" {
		if t := end + int64(a.Think); t < w.end {
			w.q.push(t, evArrival, r.dev, 0)
		}
	}
	w.free = append(w.free, ri)
}

// sample returns the estimation sample index a planner sees at time t.
func (w *world) sampleAt(t int64, exact bool) int64 {
	if exact {
		return -1
	}
	if t-w.lagNs < 0 || w.lastTick < 0 {
		return -2 // before the first sample: nothing known
	}
	return min((t-w.lagNs)/w.tickNs, w.lastTick)
}

// linkEstimate is what device d believes of its link at now.
func (w *world) linkEstimate(d int32, exact bool) scheduler.LinkEstimate {
	dv := &w.devs[d]
	c := &w.classes[dv.class]
	var up, down float64 // bytes per second
	t := w.now - w.lagNs
	if exact {
		t = w.now
	}
	if w.learned && !exact {
		return w.learnedEstimate(dv, c)
	}
	switch c.link {
	case linkCell:
		cl := &w.cells[c.cell]
		n := int32(cl.flows.Len())
		if !exact {
			if j := w.sampleAt(w.now, false); j >= 0 {
				n = w.cellSmp[c.cell][j%w.ring]
			} else {
				n = 0
			}
		}
		up = cl.rate * 1e9 / float64(n+1)
	case linkTrace:
		win := int64(w.s.Estimation.Window)
		up = c.traceUp.rate(t-win, t, dv.phase)
	case linkCellReplay:
		up = c.crUp.HeavyRate()
	default:
		up = c.phase(t).up * 1e9
	}
	switch {
	case c.crDown != nil:
		down = c.crDown.HeavyRate()
	case c.traceDown != nil:
		win := int64(w.s.Estimation.Window)
		down = c.traceDown.rate(t-win, t, dv.phase)
	default:
		down = c.phase(t).down * 1e9
	}
	if !exact && w.s.Estimation.Noise > 0 {
		up *= max(0.05, 1+w.s.Estimation.Noise*w.rng.NormFloat64())
		down *= max(0.05, 1+w.s.Estimation.Noise*w.rng.NormFloat64())
	}
	if c.link == linkCellReplay {
		// The base delay the planner sees is the trace's at t (it varies
		// over time), and a burst-aware planner prices transfers with the
		// traces' curves.
		at := time.Duration(t + dv.phase)
		delay := c.crUp.BaseDelay(at)
		if c.crDown != nil {
			delay = (delay + c.crDown.BaseDelay(at)) / 2
		}
		e := w.endToEnd(up, down, int64(delay))
		e.UpCurve, e.DownCurve = c.upCurve, c.downCurve
		return e
	}
	return w.endToEnd(up, down, c.phase(t).delay)
}

// endToEnd is the estimate of a path whose access link has rates up and
// down (bytes/s) and one-way delay (ns), through the backhaul.
func (w *world) endToEnd(up, down float64, delay int64) scheduler.LinkEstimate {
	if w.bhRate > 0 {
		bh := w.bhRate * 1e9
		up = 1 / (1/max(up, 1) + 1/bh)
		down = 1 / (1/max(down, 1) + 1/bh)
	}
	rtt := 2 * time.Duration(delay+w.bhDelay)
	return scheduler.LinkEstimate{RTT: rtt, Up: max(up, 1), Down: max(down, 1)}
}

// learnedEstimate is what a device learned of its link (Source "learned"),
// by an edge node's rules (scheduler.EdgeLearner): the rates its transfers
// and probes achieved, or before their first sample the link's rates at the
// start of the run (an edge node starts from its configured link); the RTT
// from its pings and transfers.
func (w *world) learnedEstimate(dv *device, c *class) scheduler.LinkEstimate {
	dv.learn.Pings(w.now, func(t int64) time.Duration { return w.pathRTT(c, t) })
	var prior scheduler.LinkEstimate
	switch c.link {
	case linkCell:
		prior.Up = w.cells[c.cell].rate * 1e9
	case linkTrace:
		prior.Up = c.traceUp.MeanMbps() * 1e6 / 8
	default:
		prior.Up = c.phases[0].up * 1e9
	}
	if c.traceDown != nil {
		prior.Down = c.traceDown.MeanMbps() * 1e6 / 8
	} else {
		prior.Down = c.phases[0].down * 1e9
	}
	le := dv.learn.Estimate(w.now, prior)
	e := w.endToEnd(le.Up, le.Down, 0)
	if le.RTT > 0 {
		e.RTT = le.RTT
	}
	return e
}

// inputs fills w.in for device d, from samples (exact false) or the
// current state.
func (w *world) inputs(d int32, exact bool) *scheduler.Inputs {
	c := &w.classes[w.devs[d].class]
	link := w.linkEstimate(d, exact)
	j := w.sampleAt(w.now, exact)
	for i := range w.servers {
		s := &w.servers[i]
		var q int64
		switch {
		case exact:
			q = s.queuedWork / int64(s.workers)
		case j >= 0:
			q = s.samples[j%w.ring]
		}
		w.clouds[i] = scheduler.CloudInput{ID: s.idStr, Profile: w.groups[s.group].profile, Link: link, Queue: time.Duration(q)}
	}
	w.in = scheduler.Inputs{Edge: c.edge, DAG: c.model.DAG, Codecs: c.model.codecs, Clouds: w.clouds, Accuracy: w.budget,
		Objective: c.objective, Power: c.power, EnergyWeight: w.energyWeight}
	return &w.in
}

// ensurePlan re-plans device d when a newer estimate is available (every
// request for the oracle).
func (w *world) ensurePlan(d int32) {
	dv := &w.devs[d]
	c := &w.classes[dv.class]
	j := w.sampleAt(w.now, false)
	if dv.plan.ok && !c.oracle && j == dv.planTick && dv.planVer == dv.learnVer {
		return
	}
	dv.planTick, dv.planVer = j, dv.learnVer
	if c.classPlan && c.cacheTick == j && c.cached.ok {
		dv.plan = c.cached
		return
	}
	in := w.inputs(d, c.oracle)
	p, err := dv.policy.Plan(in)
	w.sum.Plans++
	if err != nil {
		// No cloud (none configured): run on the device.
		p, _ = scheduler.EdgeOnly{}.Plan(in)
	}
	dv.plan = w.compile(c, p)
	if c.classPlan {
		c.cached, c.cacheTick = dv.plan, j
	}
}

// compile turns a scheduler plan into the per-request numbers.
func (w *world) compile(c *class, p scheduler.Plan) planRT {
	rt := planRT{ok: true, k: p.K, head: p.Head, pred: int64(p.Predicted.Total), lower: p.Accuracy.Lower, lossy: p.Accuracy.Fidelity == scheduler.Lossy}
	if p.EdgeOnly() {
		rt.edgeOnly = true
		return rt
	}
	si, ok := w.srvIdx[p.Cloud]
	if !ok {
		rt.edgeOnly = true
		return rt
	}
	rt.server = si
	for i := range w.codecs {
		if w.codecs[i].Name == p.Codec {
			rt.codec = int32(i)
		}
	}
	rt.raw, rt.wire = p.Bytes, p.WireBytes
	rt.enc, rt.dec = int64(p.Predicted.Encode), int64(p.Predicted.Decode)
	g := &w.groups[w.servers[si].group]
	if p.K >= 0 {
		rt.edgeNs = c.edgePre[p.K]
		rt.tailNs = g.pre[len(g.pre)-1] - g.pre[p.K]
	} else {
		rt.edgeNs = int64(p.Predicted.EdgeCompute)
		rt.tailNs = int64(p.Predicted.CloudCompute)
	}
	return rt
}

// scoreRegret predicts, on the exact current state, the request's plan and
// the oracle's best, and keeps the difference.
func (w *world) scoreRegret(d int32, r *request) {
	in := w.inputs(d, true)
	best, err := w.oracle.Best(in)
	if err != nil {
		return
	}
	var chosen scheduler.Plan
	if r.plan.edgeOnly {
		chosen, err = scheduler.EdgeOnly{}.Plan(in)
	} else {
		codec := w.codecs[r.plan.codec].Name
		chosen, err = in.Evaluate(scheduler.Plan{K: r.plan.k, Head: r.plan.head, Codec: codec, Cloud: w.servers[r.plan.server].idStr})
	}
	if err != nil {
		return
	}
	r.oracle = max(0, int64(chosen.Predicted.Total-best.Predicted.Total))
	r.oraclePred = int64(best.Predicted.Total)
}

// appendMs writes ns as milliseconds with three decimals (rounded to the
// microsecond), without going through floating point.
func appendMs(b []byte, ns int64) []byte {
	if ns < 0 {
		b = append(b, '-')
		ns = -ns
	}
	us := (ns + 500) / 1000
	b = strconv.AppendInt(b, us/1000, 10)
	f := us % 1000
	return append(b, '.', byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

func (w *world) writeRow(r *request, c *class, edge, enc, up, queue, cloud, dec, down, total int64, status string, energy float64) {
	b := w.line[:0]
	b = strconv.AppendInt(b, r.id, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.dev), 10)
	b = append(b, ',')
	b = append(b, c.name...)
	b = append(b, ',')
	b = appendMs(b, r.arrival)
	b = append(b, ',')
	p := &r.plan
	switch {
	case p.edgeOnly && r.plan.k != -1:
		b = strconv.AppendInt(b, int64(len(c.edge.Nodes)), 10)
	case p.k < 0:
		b = append(b, "set"...)
	default:
		b = strconv.AppendInt(b, int64(p.k), 10)
	}
	b = append(b, ',')
	if !p.edgeOnly {
		b = append(b, w.codecNm[p.codec]...)
		b = append(b, ',')
		b = append(b, w.servers[p.server].id...)
	} else {
		b = append(b, ',')
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.exitIdx), 10)
	b = append(b, ',')
	if p.edgeOnly {
		b = append(b, "0,0"...)
	} else {
		b = strconv.AppendInt(b, p.raw, 10)
		b = append(b, ',')
		b = strconv.AppendInt(b, p.wire, 10)
	}
	for _, v := range [...]int64{edge, enc, up, r.prop, queue, cloud, dec, down, total, p.pred} {
		b = append(b, ',')
		b = appendMs(b, v)
	}
	b = append(b, ',')
	if r.oracle >= 0 {
		b = appendMs(b, r.oraclePred)
	}
	b = append(b, ',')
	if c.deadline > 0 {
		b = appendMs(b, c.deadline)
	}
	b = append(b, ',')
	b = append(b, status...)
	b = append(b, ',')
	b = strconv.AppendFloat(b, energy, 'f', 3, 64)
	b = append(b, '\n')
	w.csv.Write(b)
	w.line = b
}

func (w *world) summary() *Summary {
	s := &w.sum
	s.Span = time.Duration(w.lastEnd)
	if n := s.Requests; n > 0 {
		s.Mean = time.Duration(w.sumLat / float64(n))
		s.EnergyPerRequestMJ = s.EdgeEnergyJ * 1e3 / float64(n)
	}
	s.P50, s.P95, s.P99 = w.hist.quantile(0.50), w.hist.quantile(0.95), w.hist.quantile(0.99)
	if s.Span > 0 {
		s.Throughput = float64(s.Requests) / s.Span.Seconds()
		var busy, cap float64
		for i := range w.servers {
			busy += float64(w.servers[i].busyTime)
			cap += float64(w.servers[i].workers) * float64(s.Span)
		}
		if cap > 0 {
			s.CloudUtilisation = busy / cap
		}
		for i := range w.cells {
			s.CellUtilisation += float64(w.cells[i].busy) / float64(s.Span) / float64(len(w.cells))
		}
	}
	if s.WithDeadline > 0 {
		s.SLOHitRate /= float64(s.WithDeadline)
	} else {
		s.SLOHitRate = 1
	}
	if s.Offloaded > 0 {
		s.MeanQueue = time.Duration(w.queueSum / float64(s.Offloaded))
	}
	if w.predN > 0 {
		s.MeanPredErr = w.predErr / float64(w.predN)
	}
	if w.regretN > 0 {
		s.MeanRegret = time.Duration(w.regret / float64(w.regretN))
	}
	return s
}

// rateOf is bytes ÷ ns as bytes per second (0 for no time).
func rateOf(bytes, ns int64) float64 {
	if ns <= 0 {
		return 0
	}
	return float64(bytes) / (float64(ns) / 1e9)
}

// loadCellReplay reads one direction of a CellReplay link.
func (w *world) loadCellReplay(field, light, heavy string) (*cellreplay.Link, error) {
	lf, err := os.Open(w.path(light))
	if err != nil {
		return nil, &ScenarioError{Field: field, Msg: err.Error()}
	}
	defer lf.Close()
	trains, err := cellreplay.ParseLight(lf, cellreplay.Limits{})
	if err != nil {
		return nil, &ScenarioError{Field: field, Msg: light + ": " + err.Error()}
	}
	h, err := w.loadTrace(field, heavy)
	if err != nil {
		return nil, err
	}
	l, err := cellreplay.NewLink(trains, h.ops)
	if err != nil {
		return nil, &ScenarioError{Field: field, Msg: err.Error()}
	}
	return l, nil
}
