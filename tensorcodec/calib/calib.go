package calib

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/edgesplit/edgesplit/model"
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

// Config selects what Run (and Variants) measures. Graph is required
// (simplified, as nodes hold it) and so is Inputs.
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

// Run calibrates cfg.Graph on cfg.Inputs.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	presets := cfg.Presets
	if presets == nil {
		presets = tensorcodec.Presets()
	}
	s, err := newSession(cfg, func() ([]codecState, error) {
		cs := make([]codecState, len(presets))
		for i, p := range presets {
			cs[i] = codecState{p: p, exact: Fidelity(p) == scheduler.Exact}
		}
		return cs, nil
	})
	if err != nil {
		return nil, err
	}
	defer s.close()
	cfg = s.cfg
	digest := sha256.New()
	var speeds map[tensorcodec.Preset]tensorcodec.BenchResult
	err = s.run(ctx, func(in []*tensor.Dense) {
		for _, t := range in {
			hashTensor(digest, t)
		}
	}, func() (err error) {
		if speeds, err = measureSpeeds(ctx, s.states, presets, cfg); err == nil && cfg.SpeedPerCut {
			err = s.cutSpeeds(ctx)
		}
		return err
	})
	if err != nil {
		return nil, err
	}

	tab := scheduler.NewCalibration(cfg.ModelID, cfg.ModelVersion, s.n, scheduler.CalibrationData{
		Source: cfg.SourceName, Samples: cfg.Inputs.Len(), Digest: hex.EncodeToString(digest.Sum(nil)[:6])}, cfg.Now())
	res := &Result{Table: tab}
	maxRel := make(map[tensorcodec.Preset]float64)
	for _, st := range s.states {
		cut := scheduler.CalibratedCut{K: st.k, Boundary: st.boundary, Codecs: make(map[string]scheduler.CutMeasure)}
		for j := range st.codecs {
			cs := &st.codecs[j]
			row := cs.row(st)
			if !cfg.SpeedPerCut {
				sp := speeds[cs.p]
				row.EncodeMBps, row.DecodeMBps, row.MemmoveMBps = sp.EncodeMBps, sp.DecodeMBps, sp.MemmoveMBps
			}
			res.Rows = append(res.Rows, row)
			cut.RawBytes = int64(math.Round(row.RawBytes))
			if row.Ratio > 0 {
				cut.Codecs[cs.p.String()] = scheduler.CutMeasure{Ratio: row.Ratio, Agreement: cs.agr}
			}
			maxRel[cs.p] = max(maxRel[cs.p], cs.stats.RelRMSE)
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
// one message.
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
	return out, nil
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
