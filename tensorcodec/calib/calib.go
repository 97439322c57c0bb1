package calib

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

// Source is a set of calibration inputs. Input may be called from several
// goroutines only if the implementation says so; Run calls it from one.
type Source interface {
	// Len is the number of inputs.
	Len() int
	// Input returns input i: one tensor per graph input. Run does not keep
	// or modify the tensors.
	Input(i int) ([]*tensor.Dense, error)
}

// Slice is a Source over inputs held in memory.
type Slice [][]*tensor.Dense

// Len implements Source.
func (s Slice) Len() int { return len(s) }

// Input implements Source.
func (s Slice) Input(i int) ([]*tensor.Dense, error) { return s[i], nil }

// Config selects what Run measures. Graph is required (simplified, as nodes
// hold it) and so is Inputs.
type Config struct {
	Graph *model.Graph
	// ModelID and ModelVersion identify the model in the table.
	ModelID, ModelVersion string
	// Inputs are the calibration inputs.
	Inputs Source
	// SourceName describes Inputs in the table ("mnist:test[0:3000]").
	SourceName string
	// Cuts lists the prefix cuts K to measure; nil means every cut whose
	// boundary is a single tensor, except edge-only (AllCuts: every cut).
	Cuts    []int
	AllCuts bool
	// Presets to measure; nil means all.
	Presets []tensorcodec.Preset
	// SpeedTime is how long each preset's encode and decode loops run on
	// the first input's boundaries. Default 200 ms.
	SpeedTime time.Duration
	// SpeedPerCut also measures speeds at every cut (for Row; slower).
	SpeedPerCut bool
	// StopBelow: a preset stops being run at a cut once it has changed an
	// answer and, even if every remaining input agreed, its agreement's
	// lower bound (95 %) could not reach StopBelow. Default 0.99; a
	// negative value never stops.
	StopBelow float64
	// Workers is the number of cuts measured at once. Default GOMAXPROCS.
	Workers int
	// Progress, when set, is called after each input with the inputs done.
	Progress func(done, total int)
	// Now is the clock for the table's timestamp (default time.Now).
	Now func() time.Time
}

// Row is one cut × preset in detail.
type Row struct {
	K        int
	Boundary []string
	Preset   tensorcodec.Preset
	// RawBytes and Bytes are per input, averaged over the inputs encoded.
	RawBytes, Bytes float64
	Ratio           float64 // RawBytes / Bytes
	// Speeds in 10⁶ raw bytes per second of one core (the preset's overall
	// speed unless Config.SpeedPerCut), with memmove for scale.
	EncodeMBps, DecodeMBps, MemmoveMBps float64
	MaxAbsErr, RelRMSE                  float64
	// Agreement counts the inputs whose split answer equals the unsplit
	// one (top-1 of the last output), with the largest probability change.
	scheduler.Agreement
	// Exact is set when agreement holds by construction (not run).
	Exact bool
	// Stopped is set when measuring stopped early (see Config.StopBelow).
	Stopped bool
}

// Result is a calibration: the table nodes store and load, and the rows.
type Result struct {
	Table *scheduler.Calibration
	Rows  []Row
}

// Fidelity is what preset p guarantees, in the scheduler's terms.
func Fidelity(p tensorcodec.Preset) scheduler.Fidelity {
	switch p {
	case tensorcodec.PresetLossless:
		return scheduler.Exact
	case tensorcodec.PresetFast:
		return scheduler.Bounded
	}
	return scheduler.Lossy
}

// ErrConfig is wrapped by Run for a bad configuration.
var ErrConfig = errors.New("calib: bad configuration")

// cutState is the measurement of one cut, owned by one worker.
type cutState struct {
	k        int
	boundary []string
	tail     *partition.Piece
	tailEx   *model.Extractor
	outIdx   int // index of the graph's last output among the tail's outputs
	presets  []presetState
	buf      []byte
	dec      []*tensor.Dense
	bnd      []*tensor.Dense
}

type presetState struct {
	p       tensorcodec.Preset
	exact   bool
	stats   tensorcodec.Stats
	encoded int
	agr     scheduler.Agreement
	stopped bool
	enc, dc float64 // per-cut speeds (SpeedPerCut)
	mm      float64
}

// Run calibrates cfg.Graph on cfg.Inputs.
func Run(ctx context.Context, cfg Config) (*Result, error) {
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
	presets := cfg.Presets
	if presets == nil {
		presets = tensorcodec.Presets()
	}
	cuts, err := partition.Cuts(g)
	if err != nil {
		return nil, err
	}
	n := len(g.Nodes)
	ks := cfg.Cuts
	if ks == nil {
		for k := 0; k < n; k++ {
			if cfg.AllCuts || len(cuts[k].Boundary) == 1 {
				ks = append(ks, k)
			}
		}
	}
	ks = slices.Clone(ks)
	slices.Sort(ks)
	ks = slices.Compact(ks)
	for _, k := range ks {
		if k < 0 || k >= n {
			return nil, fmt.Errorf("%w: cut %d outside [0,%d) (edge-only sends nothing)", ErrConfig, k, n)
		}
	}

	// One run of the whole model per input yields every boundary tensor and
	// the unsplit answer: compile it with all of them as outputs.
	capture := *g
	capture.Outputs = slices.Clone(g.Outputs)
	slot := make(map[string]int)
	for i, o := range g.Outputs {
		slot[o.Name] = i
	}
	inputSlot := make(map[string]int)
	for i, in := range g.Inputs {
		inputSlot[in.Name] = i
	}
	for _, k := range ks {
		for _, name := range cuts[k].Boundary {
			if _, ok := slot[name]; ok {
				continue
			}
			if _, ok := inputSlot[name]; ok {
				continue
			}
			slot[name] = len(capture.Outputs)
			capture.Outputs = append(capture.Outputs, model.ValueInfo{Name: name, Shape: g.Shapes[name]})
		}
	}
	net, err := model.Compile(&capture, model.Options{})
	if err != nil {
		return nil, fmt.Errorf("calib: compile: %w", err)
	}
	ex := net.NewExtractor()
	last := g.Outputs[len(g.Outputs)-1].Name
	probsOut := lastIsSoftmax(g, last)

	states := make([]*cutState, len(ks))
	for i, k := range ks {
		r, err := partition.NewRunner(g, k, model.Options{})
		if err != nil {
			return nil, err
		}
		st := &cutState{k: k, boundary: cuts[k].Boundary, tail: r.Tail(), outIdx: -1}
		if st.tail.Net == nil {
			return nil, fmt.Errorf("calib: cut %d has no tail", k)
		}
		st.tailEx = st.tail.Net.NewExtractor()
		for j, o := range st.tail.Graph.Outputs {
			if o.Name == last {
				st.outIdx = j
			}
		}
		if st.outIdx < 0 {
			return nil, fmt.Errorf("calib: the tail of cut %d does not produce %q", k, last)
		}
		for _, p := range presets {
			st.presets = append(st.presets, presetState{p: p, exact: Fidelity(p) == scheduler.Exact})
		}
		states[i] = st
	}

	total := cfg.Inputs.Len()
	digest := sha256.New()
	var refProbs []float64
	var speeds map[tensorcodec.Preset]tensorcodec.BenchResult
	for i := 0; i < total; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in, err := cfg.Inputs.Input(i)
		if err != nil {
			return nil, fmt.Errorf("calib: input %d: %w", i, err)
		}
		if len(in) != len(g.Inputs) {
			return nil, fmt.Errorf("calib: input %d has %d tensors, model %s takes %d", i, len(in), g.Name, len(g.Inputs))
		}
		for _, t := range in {
			hashTensor(digest, t)
		}
		outs, err := ex.Run(ctx, in...)
		if err != nil {
			return nil, fmt.Errorf("calib: input %d: %w", i, err)
		}
		ref := outs[slot[last]]
		refClass := argmax(ref)
		refProbs = probabilities(refProbs[:0], ref, probsOut)
		value := func(name string) *tensor.Dense {
			if j, ok := inputSlot[name]; ok {
				return in[j]
			}
			return outs[slot[name]]
		}
		for _, st := range states {
			st.bnd = st.bnd[:0]
			for _, name := range st.boundary {
				st.bnd = append(st.bnd, value(name))
			}
		}
		if i == 0 {
			if speeds, err = measureSpeeds(ctx, states, presets, cfg); err != nil {
				return nil, err
			}
		}
		if err := measureCuts(ctx, states, cfg, i, total, refClass, refProbs, probsOut); err != nil {
			return nil, err
		}
		if cfg.Progress != nil {
			cfg.Progress(i+1, total)
		}
	}

	tab := scheduler.NewCalibration(cfg.ModelID, cfg.ModelVersion, n, scheduler.CalibrationData{
		Source: cfg.SourceName, Samples: total, Digest: hex.EncodeToString(digest.Sum(nil)[:6])}, cfg.Now())
	res := &Result{Table: tab}
	maxRel := make(map[tensorcodec.Preset]float64)
	for _, st := range states {
		cut := scheduler.CalibratedCut{K: st.k, Boundary: st.boundary, Codecs: make(map[string]scheduler.CutMeasure)}
		for _, ps := range st.presets {
			row := Row{K: st.k, Boundary: st.boundary, Preset: ps.p, Exact: ps.exact, Stopped: ps.stopped,
				Agreement: ps.agr, MaxAbsErr: ps.stats.MaxAbsErr, RelRMSE: ps.stats.RelRMSE}
			if ps.encoded > 0 {
				row.RawBytes = float64(ps.stats.RawBytes) / float64(ps.encoded)
				row.Bytes = float64(ps.stats.Bytes) / float64(ps.encoded)
				row.Ratio = row.RawBytes / row.Bytes
			}
			sp := speeds[ps.p]
			row.EncodeMBps, row.DecodeMBps, row.MemmoveMBps = sp.EncodeMBps, sp.DecodeMBps, sp.MemmoveMBps
			if cfg.SpeedPerCut {
				row.EncodeMBps, row.DecodeMBps, row.MemmoveMBps = ps.enc, ps.dc, ps.mm
			}
			res.Rows = append(res.Rows, row)
			cut.RawBytes = int64(math.Round(row.RawBytes))
			if row.Ratio > 0 {
				cut.Codecs[ps.p.String()] = scheduler.CutMeasure{Ratio: row.Ratio, Agreement: ps.agr}
			}
			maxRel[ps.p] = max(maxRel[ps.p], ps.stats.RelRMSE)
		}
		tab.Cuts = append(tab.Cuts, cut)
	}
	for _, p := range presets {
		sp := speeds[p]
		tab.Codecs = append(tab.Codecs, scheduler.CalibratedCodec{Name: p.String(), Fidelity: Fidelity(p).String(),
			EncodeMBps: sp.EncodeMBps, DecodeMBps: sp.DecodeMBps, MaxRelErr: maxRel[p]})
	}
	if err := tab.Validate(); err != nil {
		return nil, fmt.Errorf("calib: produced an invalid table: %w", err)
	}
	return res, nil
}

// measureSpeeds times each preset on all boundaries of the first input as
// one message (and per cut when asked).
func measureSpeeds(ctx context.Context, states []*cutState, presets []tensorcodec.Preset, cfg Config) (map[tensorcodec.Preset]tensorcodec.BenchResult, error) {
	var all []*tensor.Dense
	for _, st := range states {
		all = append(all, st.bnd...)
	}
	out := make(map[tensorcodec.Preset]tensorcodec.BenchResult, len(presets))
	for _, p := range presets {
		r, err := tensorcodec.Bench(ctx, p, all, tensorcodec.BenchOptions{MinTime: cfg.SpeedTime})
		if err != nil {
			return nil, fmt.Errorf("calib: speed of %s: %w", p, err)
		}
		r.Decoded = nil
		out[p] = r
	}
	if cfg.SpeedPerCut {
		per := max(cfg.SpeedTime/time.Duration(max(len(states), 1)), 5*time.Millisecond)
		for _, st := range states {
			for j := range st.presets {
				ps := &st.presets[j]
				r, err := tensorcodec.Bench(ctx, ps.p, st.bnd, tensorcodec.BenchOptions{MinTime: per})
				if err != nil {
					return nil, fmt.Errorf("calib: cut %d %s: %w", st.k, ps.p, err)
				}
				ps.enc, ps.dc, ps.mm = r.EncodeMBps, r.DecodeMBps, r.MemmoveMBps
			}
		}
	}
	return out, nil
}

// measureCuts runs input i's boundary of every cut through every preset
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
				for j := range st.presets {
					ps := &st.presets[j]
					if ps.stopped {
						continue
					}
					var s tensorcodec.Stats
					var err error
					st.buf, s, err = tensorcodec.EncodePreset(st.buf[:0], ps.p, st.bnd...)
					if err != nil {
						errs[wi] = fmt.Errorf("calib: cut %d %s input %d: %w", st.k, ps.p, i, err)
						return
					}
					ps.stats.Add(s)
					ps.encoded++
					ps.agr.Samples++
					if ps.exact {
						ps.agr.Agree++
						continue
					}
					if st.dec, err = tensorcodec.Decode(st.dec, st.buf); err != nil {
						errs[wi] = fmt.Errorf("calib: cut %d %s input %d: decode: %w", st.k, ps.p, i, err)
						return
					}
					outs, err := st.tailEx.Run(ctx, st.dec...)
					if err != nil {
						errs[wi] = fmt.Errorf("calib: cut %d %s input %d: tail: %w", st.k, ps.p, i, err)
						return
					}
					y := outs[st.outIdx]
					if argmax(y) == refClass {
						ps.agr.Agree++
					}
					probs = probabilities(probs[:0], y, probsOut)
					for c := range probs {
						if c < len(refProbs) {
							ps.agr.MaxProbDelta = max(ps.agr.MaxProbDelta, math.Abs(probs[c]-refProbs[c]))
						}
					}
					if cfg.StopBelow > 0 && ps.agr.Agree < ps.agr.Samples {
						best := scheduler.Agreement{Agree: ps.agr.Agree + total - i - 1, Samples: total}
						ps.stopped = best.Lower(scheduler.DefaultConfidence) < cfg.StopBelow
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
		for i := range dst {
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

func hashTensor(h interface{ Write([]byte) (int, error) }, t *tensor.Dense) {
	var b [4]byte
	for _, d := range t.Shape() {
		binary.LittleEndian.PutUint32(b[:], uint32(d))
		h.Write(b[:])
	}
	for _, v := range t.Data().([]float32) {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		h.Write(b[:])
	}
}
