package model

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/edgesplit/edgesplit/model/internal/kern"
	"gorgonia.org/tensor"
)

// Options configures Compile. The zero value is valid: single-threaded, with
// bias+activation fusion.
type Options struct {
	// Threads is the number of intra-op threads; 0 or 1 runs every kernel on
	// the calling goroutine. With more, Compile starts a [Pool] of that many
	// threads that the Net owns (stopped by Net.Close, or when the Net is
	// garbage collected). Ignored when Pool is set.
	Threads int
	// Pool, when set, is a caller-owned worker pool the Net runs its
	// parallel kernels on (several Nets may share one; the caller closes it
	// after the last Run). Threads is then Pool.Threads().
	Pool *Pool
	// NoFusion keeps every node a separate step (for per-node profiling);
	// by default an activation following a Conv, ConvTranspose or Gemm is
	// fused into that node's epilogue.
	NoFusion bool

	// noReuse gives every tensor its own memory (tests compare it with the
	// liveness-based plan).
	noReuse bool
}

// arg is one input of a step: an arena slot, or constant data.
type arg struct {
	slot  int       // -1 when not in the arena
	konst []float32 // constant float32 data (read-only), when slot < 0
}

// step is one prepared kernel invocation.
type step struct {
	node int // index in Graph.Nodes
	l    layer
	in   []arg
	out  []int // arena slots
}

// slot is a tensor living in the arena.
type slot struct {
	name  string
	shape []int
	off   int
	size  int
}

// Net is a compiled graph: a simplified Graph, prepared layers (weights
// packed once) and an arena plan. A Net is read-only and safe for concurrent
// use by many Extractors.
type Net struct {
	g          *Graph
	opts       Options
	inputs     []ValueInfo
	outputs    []ValueInfo
	steps      []step
	slots      []slot
	inSlots    []int
	outSlots   []int // per output: arena slot
	outConst   [][]float32
	arenaLen   int
	scratchLen int
	fusedInto  []int // per node: the node it was fused into, or -1
	pool       *kern.Pool
	ownPool    bool
}

// Close stops the worker pool the Net started for Options.Threads > 1 (a
// caller-owned Options.Pool is left alone). After Close the Net still runs,
// on the calling goroutine only. Close is safe to call twice, but not
// concurrently with a Run that should stay parallel.
func (n *Net) Close() error {
	if n.ownPool {
		n.pool.Close()
	}
	return nil
}

// Compile simplifies g (a copy; g is not modified) and prepares kernels and
// an arena plan with liveness-based buffer reuse. The Net keeps references
// to g's initializer data (it never writes them): do not modify those
// tensors while the Net is in use.
func Compile(g *Graph, opts Options) (*Net, error) {
	sg, err := Simplify(g, nil)
	if err != nil {
		return nil, err
	}
	if opts.Pool != nil {
		opts.Threads = opts.Pool.Threads()
	}
	if opts.Threads < 1 {
		opts.Threads = 1
	}
	a, err := analyze(sg, nil)
	if err != nil {
		return nil, err
	}
	n := &Net{g: sg, opts: opts}
	switch {
	case opts.Pool != nil:
		n.pool = opts.Pool.p
	case opts.Threads > 1:
		n.pool = kern.NewPool(opts.Threads)
		n.ownPool = true
		// A Net dropped without Close still stops its workers (they
		// reference only the pool's internals, never the Net).
		runtime.AddCleanup(n, func(p *kern.Pool) { p.Close() }, n.pool)
	}
	for _, in := range sg.Inputs {
		n.inputs = append(n.inputs, ValueInfo{Name: in.Name, Shape: cloneInts(a.vals[in.Name].shape)})
	}
	for _, o := range sg.Outputs {
		n.outputs = append(n.outputs, ValueInfo{Name: o.Name, Shape: cloneInts(a.vals[o.Name].shape)})
	}
	if err := n.plan(a); err != nil {
		return nil, err
	}
	return n, nil
}

// fusable reports whether node n's activation can be fused into producer p.
func fusableProducer(op string) bool {
	return op == "Conv" || op == "Gemm" || op == "ConvTranspose"
}

func (n *Net) plan(a *analysis) error {
	g := n.g
	opset := opsetOf(g)
	isOutput := map[string]bool{}
	for _, o := range g.Outputs {
		isOutput[o.Name] = true
	}
	consumers := map[string][]int{}
	for i, nd := range g.Nodes {
		for _, in := range nd.Inputs {
			if in != "" {
				consumers[in] = append(consumers[in], i)
			}
		}
	}
	// Fusion decisions.
	n.fusedInto = make([]int, len(g.Nodes))
	for i := range n.fusedInto {
		n.fusedInto[i] = -1
	}
	fusedAct := make(map[int]kern.Activation)
	fusedChain := make(map[int]*chainOp)
	fusedOut := make(map[int]string) // producer -> output name it writes
	type override struct {
		l       layer
		in, out string
	}
	overrides := map[int]override{}
	if !n.opts.NoFusion {
		producers := g.Producers()
		f := &fusionCtx{g: g, a: a, opset: opset, consumers: consumers, isOutput: isOutput}
		for _, ch := range f.findChains() {
			skip := false
			for _, k := range ch.nodes {
				if n.fusedInto[k] >= 0 || overrides[k].l != nil {
					skip = true
				}
			}
			if skip {
				continue
			}
			head := ch.nodes[0]
			// x feeds only the chain: run the chain right after x's
			// producing Conv, on its cache-hot output.
			if p, ok := producers[ch.x]; ok && g.Nodes[p].Op == "Conv" && len(g.Nodes[p].Outputs) == 1 &&
				n.fusedInto[p] < 0 && f.consumersAre(ch.x, ch.nodes...) {
				if _, done := fusedChain[p]; !done {
					fusedChain[p] = ch.op
					fusedOut[p] = ch.y
					for _, k := range ch.nodes {
						n.fusedInto[k] = p
					}
					continue
				}
			}
			overrides[head] = override{l: &chainLayer{op: ch.op}, in: ch.x, out: ch.y}
			for _, k := range ch.nodes[1:] {
				n.fusedInto[k] = head
			}
		}
		for i, nd := range g.Nodes {
			if !fusableProducer(nd.Op) || len(nd.Outputs) != 1 || n.fusedInto[i] >= 0 {
				continue
			}
			if _, done := fusedChain[i]; done {
				continue
			}
			o := nd.Outputs[0]
			cs := consumers[o]
			if len(cs) != 1 || isOutput[o] {
				continue
			}
			j := cs[0]
			m := g.Nodes[j]
			def := registry[m.Op]
			if def.act == nil || m.Input(0) != o || len(m.Outputs) != 1 || n.fusedInto[j] >= 0 || overrides[j].l != nil {
				continue
			}
			act, ok := def.act(f.ctxOf(m))
			if !ok {
				continue
			}
			fusedAct[i] = act
			fusedOut[i] = m.Outputs[0]
			n.fusedInto[j] = i
		}
	}
	// Slots for graph inputs and every runtime tensor.
	slotOf := map[string]int{}
	newSlot := func(name string, shape []int) int {
		n.slots = append(n.slots, slot{name: name, shape: cloneInts(shape), size: prod(shape)})
		slotOf[name] = len(n.slots) - 1
		return len(n.slots) - 1
	}
	for _, in := range n.inputs {
		n.inSlots = append(n.inSlots, newSlot(in.Name, in.Shape))
	}
	for i, nd := range g.Nodes {
		if n.fusedInto[i] >= 0 {
			continue
		}
		def := registry[nd.Op]
		if ov, ok := overrides[i]; ok {
			s, ok := slotOf[ov.in]
			if !ok {
				return nodeErr(nd, fmt.Errorf("input %q has no buffer", ov.in))
			}
			st := step{node: i, l: ov.l, in: []arg{{slot: s}}, out: []int{newSlot(ov.out, a.vals[ov.out].shape)}}
			n.steps = append(n.steps, st)
			continue
		}
		c := &nodeCtx{n: nd, opset: opset, in: make([]*tval, len(nd.Inputs)), out: make([]*tval, len(nd.Outputs)), threads: n.opts.Threads, pool: n.pool}
		st := step{node: i, in: make([]arg, len(nd.Inputs))}
		for k, name := range nd.Inputs {
			st.in[k].slot = -1
			if name == "" {
				continue
			}
			v := promoteInput(def, k, a.vals[name])
			c.in[k] = v
			if v.konst {
				if v.dt == dtFloat {
					st.in[k].konst = v.f
				}
				continue
			}
			s, ok := slotOf[name]
			if !ok {
				return nodeErr(nd, fmt.Errorf("input %q has no buffer", name))
			}
			st.in[k].slot = s
		}
		outs := nd.Outputs
		if o, ok := fusedOut[i]; ok {
			outs = []string{o}
			c.act = fusedAct[i]
			c.chain = fusedChain[i]
		}
		for k, name := range nd.Outputs {
			if name == "" {
				// An omitted optional output: it still gets a buffer of
				// the shape inference gave it.
				c.out[k] = a.anon[nd][k]
				continue
			}
			c.out[k] = a.vals[name]
		}
		for k, name := range outs {
			v := c.out[k]
			if name == "" && v.dt != dtFloat {
				// An omitted integer output (MaxPool Indices, Dropout
				// mask): nobody reads it; give the layer an empty buffer.
				st.out = append(st.out, newSlot(fmt.Sprintf("%s:out%d", nd.Name, k), []int{0}))
				continue
			}
			if v.dt != dtFloat {
				return nodeErr(nd, unsupportedf("output %q is %v at run time; only float32 tensors run", name, v.dt))
			}
			if name == "" {
				name = fmt.Sprintf("%s:out%d", nd.Name, k)
			}
			st.out = append(st.out, newSlot(name, v.shape))
		}
		if def.build == nil {
			return nodeErr(nd, unsupportedf("op %s only folds on constant inputs, but input %q is computed at run time", nd.Op, nd.Input(0)))
		}
		for k, v := range c.in {
			if v != nil && !v.konst && v.dt != dtFloat {
				return nodeErr(nd, unsupportedf("input %q is %v at run time", nd.Inputs[k], v.dt))
			}
		}
		l, err := def.build(c)
		if err != nil {
			return nodeErr(nd, err)
		}
		st.l = l
		if s, ok := l.(scratchUser); ok && s.scratchLen() > n.scratchLen {
			n.scratchLen = s.scratchLen()
		}
		n.steps = append(n.steps, st)
	}
	// Graph outputs.
	for _, o := range n.outputs {
		if s, ok := slotOf[o.Name]; ok {
			n.outSlots = append(n.outSlots, s)
			n.outConst = append(n.outConst, nil)
			continue
		}
		v := a.vals[o.Name]
		if v == nil || !v.konst || v.dt != dtFloat {
			return fmt.Errorf("model: graph output %q is not a float32 tensor", o.Name)
		}
		s := newSlot(o.Name, v.shape)
		n.outSlots = append(n.outSlots, s)
		n.outConst = append(n.outConst, v.f)
	}
	return n.assignArena()
}

// assignArena gives every slot an offset in one buffer: a slot's memory is
// reused once its last reader has run; element-wise steps write in place
// over an input that dies at that step.
func (n *Net) assignArena() error {
	const never = -1
	ns := len(n.steps)
	last := make([]int, len(n.slots))
	for i := range last {
		last[i] = never
	}
	for si, st := range n.steps {
		for _, a := range st.in {
			if a.slot >= 0 {
				last[a.slot] = si
			}
		}
		for _, o := range st.out {
			if last[o] < si {
				last[o] = si
			}
		}
	}
	pinned := make([]bool, len(n.slots))
	for _, s := range n.outSlots {
		pinned[s] = true
		last[s] = ns
	}
	for _, s := range n.inSlots {
		if last[s] == never {
			last[s] = -1
		}
	}
	al := &allocator{noReuse: n.opts.noReuse}
	assigned := make([]bool, len(n.slots))
	place := func(s int) error {
		sz := n.slots[s].size
		if sz > MaxTensorElements {
			return fmt.Errorf("model: tensor %q: %w", n.slots[s].name, ErrTooLarge)
		}
		n.slots[s].off = al.alloc(sz)
		assigned[s] = true
		return nil
	}
	for _, s := range n.inSlots {
		if !assigned[s] {
			if err := place(s); err != nil {
				return err
			}
		}
	}
	release := func(si int, st *step) {
		for _, a := range st.in {
			if a.slot >= 0 && last[a.slot] == si && !pinned[a.slot] {
				al.free(n.slots[a.slot].off, n.slots[a.slot].size)
				last[a.slot] = never - 1 // freed once
			}
		}
	}
	// Free graph inputs that nobody reads.
	for _, s := range n.inSlots {
		if last[s] == -1 && !pinned[s] {
			al.free(n.slots[s].off, n.slots[s].size)
		}
	}
	for si := range n.steps {
		st := &n.steps[si]
		def := registry[n.g.Nodes[st.node].Op]
		for k, o := range st.out {
			if assigned[o] {
				continue
			}
			// In place over input 0 when it dies here and sizes match.
			if k == 0 && def.inplace && len(st.in) > 0 && !n.opts.noReuse {
				in0 := st.in[0].slot
				if in0 >= 0 && last[in0] == si && !pinned[in0] && n.slots[in0].size == n.slots[o].size && !usedTwice(st, in0) {
					n.slots[o].off = n.slots[in0].off
					assigned[o] = true
					last[in0] = never - 1 // ownership moves to o
					continue
				}
			}
			if err := place(o); err != nil {
				return err
			}
		}
		release(si, st)
		// Outputs nobody reads die immediately.
		for _, o := range st.out {
			if last[o] == si && !pinned[o] {
				al.free(n.slots[o].off, n.slots[o].size)
				last[o] = never - 1
			}
		}
	}
	for s := range n.slots {
		if !assigned[s] {
			if err := place(s); err != nil {
				return err
			}
		}
	}
	n.arenaLen = al.high
	if n.arenaLen > maxArenaElements {
		return fmt.Errorf("model: arena needs %d elements: %w", n.arenaLen, ErrTooLarge)
	}
	return nil
}

// usedTwice reports whether slot s feeds more than input 0 of st; an
// in-place write could then clobber a value still to be read (only safe for
// purely element-wise reads of identical shapes, which we do not assume).
func usedTwice(st *step, s int) bool {
	for k, a := range st.in {
		if k > 0 && a.slot == s {
			return true
		}
	}
	return false
}

// allocator hands out offsets in an arena; freed ranges are reused
// first-fit. Offsets are aligned to 16 floats (64 bytes).
type allocator struct {
	noReuse bool
	free_   []span
	high    int
}

type span struct{ off, size int }

func alignUp(x int) int { return (x + 15) &^ 15 }

func (a *allocator) alloc(size int) int {
	size = alignUp(size)
	if size == 0 {
		return 0
	}
	best := -1
	for i, s := range a.free_ {
		if s.size >= size && (best < 0 || s.size < a.free_[best].size) {
			best = i
		}
	}
	if best >= 0 {
		s := a.free_[best]
		if s.size == size {
			a.free_ = append(a.free_[:best], a.free_[best+1:]...)
		} else {
			a.free_[best] = span{s.off + size, s.size - size}
		}
		return s.off
	}
	// Extend: if the last free span ends at high, grow it.
	for i, s := range a.free_ {
		if s.off+s.size == a.high {
			a.free_ = append(a.free_[:i], a.free_[i+1:]...)
			a.high = s.off + size
			return s.off
		}
	}
	off := a.high
	a.high += size
	return off
}

func (a *allocator) free(off, size int) {
	size = alignUp(size)
	if size == 0 || a.noReuse {
		return
	}
	a.free_ = append(a.free_, span{off, size})
	// Coalesce neighbours (the list is small).
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(a.free_) && !merged; i++ {
			for j := 0; j < len(a.free_); j++ {
				if i != j && a.free_[i].off+a.free_[i].size == a.free_[j].off {
					a.free_[i].size += a.free_[j].size
					a.free_ = append(a.free_[:j], a.free_[j+1:]...)
					merged = true
					break
				}
			}
		}
	}
}

// Graph returns the simplified graph the Net runs (do not modify it).
func (n *Net) Graph() *Graph { return n.g }

// Inputs returns the Net's inputs, in the order Run binds them.
func (n *Net) Inputs() []ValueInfo { return n.inputs }

// Outputs returns the Net's outputs, in the order Run returns them.
func (n *Net) Outputs() []ValueInfo { return n.outputs }

// ArenaBytes is the size of one Extractor's arena in bytes.
func (n *Net) ArenaBytes() int64 { return int64(n.arenaLen+n.scratchLen) * 4 }

// Extractor runs a Net. It owns an arena and is not safe for concurrent use:
// use one per goroutine or request stream.
type Extractor struct {
	n       *Net
	arena   []float32
	scratch []float32
	ins     [][][]float32 // per step
	outs    [][][]float32
	results []*tensor.Dense
	resBufs [][]float32
}

// NewExtractor returns an Extractor with its own arena.
func (n *Net) NewExtractor() *Extractor {
	e := &Extractor{n: n, arena: make([]float32, n.arenaLen), scratch: make([]float32, n.scratchLen)}
	view := func(s int) []float32 {
		sl := n.slots[s]
		return e.arena[sl.off : sl.off+sl.size : sl.off+sl.size]
	}
	e.ins = make([][][]float32, len(n.steps))
	e.outs = make([][][]float32, len(n.steps))
	for i, st := range n.steps {
		e.ins[i] = make([][]float32, len(st.in))
		for k, a := range st.in {
			if a.slot >= 0 {
				e.ins[i][k] = view(a.slot)
			} else {
				e.ins[i][k] = a.konst
			}
		}
		e.outs[i] = make([][]float32, len(st.out))
		for k, s := range st.out {
			e.outs[i][k] = view(s)
		}
	}
	for k, s := range n.outSlots {
		buf := view(s)
		e.resBufs = append(e.resBufs, buf)
		shape := n.slots[s].shape
		var t *tensor.Dense
		if len(shape) == 0 {
			t = tensor.New(tensor.WithShape(), tensor.WithBacking(buf))
		} else {
			t = tensor.New(tensor.WithShape(cloneInts(shape)...), tensor.WithBacking(buf))
		}
		e.results = append(e.results, t)
		if c := n.outConst[k]; c != nil {
			copy(buf, c)
		}
	}
	return e
}

// Run binds inputs in the order of Net.Inputs (each must be a float32 tensor
// of exactly the input's shape), runs every node and returns the outputs in
// the order of Net.Outputs. The returned tensors are owned by the Extractor
// and valid until its next Run: copy them to keep them. A steady-state Run
// allocates nothing, at any thread count. ctx is checked between nodes.
func (e *Extractor) Run(ctx context.Context, inputs ...*tensor.Dense) ([]*tensor.Dense, error) {
	return e.run(ctx, nil, inputs)
}

// RunProfile is Run that also records each node's wall time into times
// (len(times) must equal len(Net.Graph().Nodes)); nodes fused into a
// predecessor record 0.
func (e *Extractor) RunProfile(ctx context.Context, times []time.Duration, inputs ...*tensor.Dense) ([]*tensor.Dense, error) {
	if len(times) != len(e.n.g.Nodes) {
		return nil, fmt.Errorf("model: RunProfile needs %d time slots, got %d", len(e.n.g.Nodes), len(times))
	}
	for i := range times {
		times[i] = 0
	}
	return e.run(ctx, times, inputs)
}

// ErrInput reports an input bound to Run that does not fit the Net.
var ErrInput = errors.New("model: bad input")

func (e *Extractor) run(ctx context.Context, times []time.Duration, inputs []*tensor.Dense) ([]*tensor.Dense, error) {
	n := e.n
	if len(inputs) != len(n.inputs) {
		return nil, fmt.Errorf("%w: got %d inputs, want %d", ErrInput, len(inputs), len(n.inputs))
	}
	for i, t := range inputs {
		vi := n.inputs[i]
		if t == nil {
			return nil, fmt.Errorf("%w: input %q is nil", ErrInput, vi.Name)
		}
		if t.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("%w: input %q has type %v, want float32", ErrInput, vi.Name, t.Dtype())
		}
		if !shapeMatches(t.Shape(), vi.Shape) {
			return nil, fmt.Errorf("%w: input %q has shape %v, want %v: %w", ErrInput, vi.Name, t.Shape(), vi.Shape, ErrShape)
		}
		if n.slots[n.inSlots[i]].size > 0 && t.RequiresIterator() {
			return nil, fmt.Errorf("%w: input %q is a non-contiguous view; materialize it first", ErrInput, vi.Name)
		}
		data := t.Float32s()
		dst := e.arena[n.slots[n.inSlots[i]].off:][:n.slots[n.inSlots[i]].size]
		if len(data) < len(dst) {
			return nil, fmt.Errorf("%w: input %q holds %d values, want %d", ErrInput, vi.Name, len(data), len(dst))
		}
		copy(dst, data)
	}
	for i := range n.steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st := &n.steps[i]
		if times != nil {
			t0 := time.Now()
			st.l.forward(e.ins[i], e.outs[i], e.scratch)
			times[st.node] = time.Since(t0)
		} else {
			st.l.forward(e.ins[i], e.outs[i], e.scratch)
		}
	}
	for k := range n.outSlots {
		if c := n.outConst[k]; c != nil {
			copy(e.resBufs[k], c)
		}
	}
	return e.results, nil
}

func shapeMatches(got tensor.Shape, want []int) bool {
	if len(got) != len(want) {
		// A scalar may be given as shape () or (1).
		return prod(got) == 1 && prod(want) == 1 && len(want) <= 1 && len(got) <= 1
	}
	for i := range want {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
