package calib

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"gorgonia.org/tensor"
)

// codecState is the measurement of one codec at one cut: a preset, or a
// variant when v is set. It is owned by the cut's worker.
type codecState struct {
	p       tensorcodec.Preset
	v       *tensorcodec.Variant
	e       *tensorcodec.Encoder // v's encoder
	exact   bool                 // agreement holds by construction: the tail is not run
	na      bool                 // v cannot encode this cut's boundary
	stats   tensorcodec.Stats
	encoded int
	agr     scheduler.Agreement
	stopped bool
	enc, dc float64 // per-cut speeds
	mm      float64
}

func (cs *codecState) name() string {
	if cs.v != nil {
		return cs.v.Name
	}
	return cs.p.String()
}

func (cs *codecState) encode(dst []byte, ts []*tensor.Dense) ([]byte, tensorcodec.Stats, error) {
	if cs.e != nil {
		return cs.e.Encode(dst, ts...)
	}
	return tensorcodec.EncodePreset(dst, cs.p, ts...)
}

func (cs *codecState) bench(ctx context.Context, ts []*tensor.Dense, o tensorcodec.BenchOptions) (tensorcodec.BenchResult, error) {
	if cs.v != nil {
		return tensorcodec.BenchVariant(ctx, *cs.v, ts, o)
	}
	return tensorcodec.Bench(ctx, cs.p, ts, o)
}

// notApplicable reports whether err means that cs, a variant, cannot encode
// a boundary (e.g. a channel axis beyond its rank) rather than a failure.
func (cs *codecState) notApplicable(err error) bool {
	return cs.v != nil && errors.Is(err, tensorcodec.ErrShape)
}

// row is the measurement at cut st, with its per-cut speeds.
func (cs *codecState) row(st *cutState) Row {
	r := Row{K: st.k, Boundary: st.boundary, Preset: cs.p, Exact: cs.exact, Stopped: cs.stopped, Agreement: cs.agr,
		MaxAbsErr: cs.stats.MaxAbsErr, RelRMSE: cs.stats.RelRMSE, EncodeMBps: cs.enc, DecodeMBps: cs.dc, MemmoveMBps: cs.mm}
	if cs.encoded > 0 {
		r.RawBytes = float64(cs.stats.RawBytes) / float64(cs.encoded)
		r.Bytes = float64(cs.stats.Bytes) / float64(cs.encoded)
		r.Ratio = r.RawBytes / r.Bytes
	}
	return r
}

// cutState is the measurement of one cut, owned by one worker.
type cutState struct {
	k        int
	boundary []string
	tail     *partition.Piece
	tailEx   *model.Extractor
	outIdx   int // index of the graph's last output among the tail's outputs
	codecs   []codecState
	buf      []byte
	dec      []*tensor.Dense
	bnd      []*tensor.Dense
}

// session is what Run and Variants share: cfg (checked, defaults filled
// in), the selected cuts, each with its tail and codec states, and the
// whole model compiled with every boundary as an output, so that one run
// per input yields all boundaries and the unsplit answer.
type session struct {
	cfg             Config
	n               int // nodes of the graph
	net             *model.Net
	ex              *model.Extractor
	slot, inputSlot map[string]int // value name → index among net's outputs, the graph's inputs
	last            string         // the graph's last output, whose top-1 is compared
	probsOut        bool           // last holds probabilities already
	states          []*cutState
}

// newSession checks cfg and prepares the cuts it selects, giving each the
// codec states that codecs returns.
func newSession(cfg Config, codecs func() ([]codecState, error)) (*session, error) {
	g := cfg.Graph
	if g == nil || cfg.Inputs == nil || cfg.Inputs.Len() == 0 {
		return nil, fmt.Errorf("%w: need a graph and at least one input", ErrConfig)
	}
	if len(g.Outputs) == 0 {
		return nil, fmt.Errorf("%w: graph %s has no outputs", ErrConfig, g.Name)
	}
	if cfg.SpeedTime <= 0 {
		cfg.SpeedTime = 200 * time.Millisecond
	}
	if cfg.StopBelow == 0 {
		cfg.StopBelow = 0.99
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cuts, err := partition.Cuts(g)
	if err != nil {
		return nil, err
	}
	s := &session{cfg: cfg, n: len(g.Nodes), slot: map[string]int{}, inputSlot: map[string]int{}}
	ks := cfg.Cuts
	if ks == nil {
		for k := 0; k < s.n; k++ {
			if cfg.AllCuts || cuts[k].Single() {
				ks = append(ks, k)
			}
		}
	}
	ks = slices.Clone(ks)
	slices.Sort(ks)
	ks = slices.Compact(ks)
	for _, k := range ks {
		if k < 0 || k >= s.n {
			return nil, fmt.Errorf("%w: cut %d outside [0,%d) (edge-only sends nothing)", ErrConfig, k, s.n)
		}
	}

	capture := *g
	capture.Outputs = slices.Clone(g.Outputs)
	for i, o := range g.Outputs {
		s.slot[o.Name] = i
	}
	for i, in := range g.Inputs {
		s.inputSlot[in.Name] = i
	}
	for _, k := range ks {
		for _, name := range cuts[k].Boundary {
			if _, ok := s.slot[name]; ok {
				continue
			}
			if _, ok := s.inputSlot[name]; ok {
				continue
			}
			s.slot[name] = len(capture.Outputs)
			capture.Outputs = append(capture.Outputs, model.ValueInfo{Name: name, Shape: g.Shapes[name]})
		}
	}
	if s.net, err = model.Compile(&capture, model.Options{}); err != nil {
		return nil, fmt.Errorf("calib: compile: %w", err)
	}
	s.ex = s.net.NewExtractor()
	s.last = g.Outputs[len(g.Outputs)-1].Name
	s.probsOut = lastIsSoftmax(g, s.last)

	for _, k := range ks {
		tail, err := partition.CompilePiece(g, k, s.n, model.Options{})
		if err != nil {
			s.close()
			return nil, err
		}
		st := &cutState{k: k, boundary: cuts[k].Boundary, tail: tail, outIdx: -1}
		s.states = append(s.states, st)
		if tail.Net == nil {
			s.close()
			return nil, fmt.Errorf("calib: cut %d has no tail", k)
		}
		st.tailEx = tail.Net.NewExtractor()
		for j, o := range tail.Graph.Outputs {
			if o.Name == s.last {
				st.outIdx = j
			}
		}
		if st.outIdx < 0 {
			s.close()
			return nil, fmt.Errorf("calib: the tail of cut %d does not produce %q", k, s.last)
		}
		if st.codecs, err = codecs(); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

// close releases the compiled nets and the variants' encoders.
func (s *session) close() {
	for _, st := range s.states {
		for _, cs := range st.codecs {
			if cs.e != nil {
				cs.e.Close()
			}
		}
		if st.tail.Net != nil {
			st.tail.Net.Close()
		}
	}
	s.net.Close()
}

// run measures every input: seen (optional) is shown each input first,
// first is called once the first input's boundaries are in the cut states
// (to time the codecs on them), and then every cut's codecs are run.
func (s *session) run(ctx context.Context, seen func(in []*tensor.Dense), first func() error) error {
	g := s.cfg.Graph
	total := s.cfg.Inputs.Len()
	var refProbs []float64
	for i := 0; i < total; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		in, err := s.cfg.Inputs.Input(i)
		if err != nil {
			return fmt.Errorf("calib: input %d: %w", i, err)
		}
		if len(in) != len(g.Inputs) {
			return fmt.Errorf("calib: input %d has %d tensors, model %s takes %d", i, len(in), g.Name, len(g.Inputs))
		}
		if seen != nil {
			seen(in)
		}
		outs, err := s.ex.Run(ctx, in...)
		if err != nil {
			return fmt.Errorf("calib: input %d: %w", i, err)
		}
		ref := outs[s.slot[s.last]]
		refClass := argmax(ref)
		refProbs = probabilities(refProbs[:0], ref, s.probsOut)
		for _, st := range s.states {
			st.bnd = st.bnd[:0]
			for _, name := range st.boundary {
				if j, ok := s.inputSlot[name]; ok {
					st.bnd = append(st.bnd, in[j])
				} else {
					st.bnd = append(st.bnd, outs[s.slot[name]])
				}
			}
		}
		if i == 0 {
			if err := first(); err != nil {
				return err
			}
		}
		if err := measureCuts(ctx, s.states, s.cfg, i, total, refClass, refProbs, s.probsOut); err != nil {
			return err
		}
		if s.cfg.Progress != nil {
			s.cfg.Progress(i+1, total)
		}
	}
	return nil
}

// cutSpeeds times every codec at every cut on the boundary held (the first
// input's), sharing cfg.SpeedTime among the cuts (at least 5 ms each). A
// variant that does not apply to a boundary is left at zero.
func (s *session) cutSpeeds(ctx context.Context) error {
	per := max(s.cfg.SpeedTime/time.Duration(max(len(s.states), 1)), 5*time.Millisecond)
	for _, st := range s.states {
		for j := range st.codecs {
			cs := &st.codecs[j]
			r, err := cs.bench(ctx, st.bnd, tensorcodec.BenchOptions{MinTime: per})
			if cs.notApplicable(err) {
				continue // measureCuts marks it
			}
			if err != nil {
				return fmt.Errorf("calib: cut %d %s: %w", st.k, cs.name(), err)
			}
			cs.enc, cs.dc, cs.mm = r.EncodeMBps, r.DecodeMBps, r.MemmoveMBps
		}
	}
	return nil
}

// measureCuts runs input i's boundary of every cut through every codec
// still measured and the tail, spreading cuts over cfg.Workers goroutines
// (each cut's state is touched by one goroutine only).
func measureCuts(ctx context.Context, states []*cutState, cfg Config, i, total, refClass int, refProbs []float64, probsOut bool) error {
	w := min(cfg.Workers, len(states))
	errs := make([]error, w)
	var wg sync.WaitGroup
	for wi := 0; wi < w; wi++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var probs []float64
			for si := wi; si < len(states); si += w {
				st := states[si]
				for j := range st.codecs {
					cs := &st.codecs[j]
					if cs.stopped || cs.na {
						continue
					}
					var s tensorcodec.Stats
					var err error
					st.buf, s, err = cs.encode(st.buf[:0], st.bnd)
					if cs.notApplicable(err) {
						cs.na = true
						continue
					}
					if err != nil {
						errs[wi] = fmt.Errorf("calib: cut %d %s input %d: %w", st.k, cs.name(), i, err)
						return
					}
					cs.stats.Add(s)
					cs.encoded++
					cs.agr.Samples++
					if cs.exact {
						cs.agr.Agree++
						continue
					}
					if st.dec, err = tensorcodec.Decode(st.dec, st.buf); err != nil {
						errs[wi] = fmt.Errorf("calib: cut %d %s input %d: decode: %w", st.k, cs.name(), i, err)
						return
					}
					outs, err := st.tailEx.Run(ctx, st.dec...)
					if err != nil {
						errs[wi] = fmt.Errorf("calib: cut %d %s input %d: tail: %w", st.k, cs.name(), i, err)
						return
					}
					y := outs[st.outIdx]
					if argmax(y) == refClass {
						cs.agr.Agree++
					}
					probs = probabilities(probs[:0], y, probsOut)
					for c := range probs {
						if c < len(refProbs) {
							cs.agr.MaxProbDelta = max(cs.agr.MaxProbDelta, math.Abs(probs[c]-refProbs[c]))
						}
					}
					if cfg.StopBelow > 0 && cs.agr.Agree < cs.agr.Samples {
						best := scheduler.Agreement{Agree: cs.agr.Agree + total - i - 1, Samples: total}
						cs.stopped = best.Lower(scheduler.DefaultConfidence) < cfg.StopBelow
					}
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// lastIsSoftmax reports whether the output named last is made by a Softmax
// node (so it holds probabilities already).
func lastIsSoftmax(g *model.Graph, last string) bool {
	for _, nd := range g.Nodes {
		for _, o := range nd.Outputs {
			if o == last {
				return nd.Op == "Softmax"
			}
		}
	}
	return false
}

// probabilities appends the softmax of t (or t itself when it already holds
// probabilities) to dst.
func probabilities(dst []float64, t *tensor.Dense, already bool) []float64 {
	d := t.Data().([]float32)
	if already {
		for _, v := range d {
			dst = append(dst, float64(v))
		}
		return dst
	}
	start := len(dst)
	m := math.Inf(-1)
	for _, v := range d {
		m = math.Max(m, float64(v))
	}
	var sum float64
	for _, v := range d {
		e := math.Exp(float64(v) - m)
		dst = append(dst, e)
		sum += e
	}
	if sum > 0 && !math.IsInf(sum, 0) && !math.IsNaN(sum) {
		for i := start; i < len(dst); i++ {
			dst[i] /= sum
		}
	}
	return dst
}

func argmax(t *tensor.Dense) int {
	d := t.Data().([]float32)
	best := 0
	for i := range d {
		if d[i] > d[best] {
			best = i
		}
	}
	return best
}
