package scheduler

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CalibrationFormat and CalibrationVersion identify a calibration file.
const (
	CalibrationFormat  = "edgesplit-calibration"
	CalibrationVersion = 1
	// MaxCalibrationBytes bounds a calibration file or message read.
	MaxCalibrationBytes = 32 << 20
)

// ErrCalibration is wrapped by every error about a calibration table that is
// malformed or does not belong to the model it is used with.
var ErrCalibration = errors.New("scheduler: calibration")

// Calibration is what calibrating a model on real inputs measured, per
// prefix cut and codec preset: top-1 agreement with the unsplit model, the
// largest output probability change, and the real compression ratio, plus
// each preset's speed on those activations. It is stored beside the model
// (see CalibrationPath) as versioned JSON, so nodes load it instead of
// recalibrating, and identified by its Digest in gossip.
type Calibration struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Model identifies the model: its id, content version and node count.
	Model CalibrationModel `json:"model"`
	// Data says what the calibration ran on.
	Data CalibrationData `json:"data"`
	// Created is when the table was measured (RFC 3339).
	Created string `json:"created"`
	// Codecs lists the presets measured, with their speed.
	Codecs []CalibratedCodec `json:"codecs"`
	// Cuts holds one entry per measured prefix cut, ascending K.
	Cuts []CalibratedCut `json:"cuts"`
	// Exits is the early-exit calibration of a multi-exit model (nil for
	// others): each exit's and each threshold policy's accuracy on
	// labelled held-out data (see ExitCalibration).
	Exits *ExitCalibration `json:"exits,omitempty"`
}

// CalibrationModel identifies the model a table belongs to.
type CalibrationModel struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Nodes   int    `json:"nodes"`
}

// CalibrationData describes the calibration inputs.
type CalibrationData struct {
	// Source is what the inputs came from ("mnist:test[0:3000]", a folder).
	Source string `json:"source"`
	// Samples is the number of inputs run.
	Samples int `json:"samples"`
	// Digest is a SHA-256 prefix of the input tensors' bytes.
	Digest string `json:"digest"`
}

// CalibratedCodec is one preset's overall figures.
type CalibratedCodec struct {
	Name     string `json:"name"`
	Fidelity string `json:"fidelity"`
	// EncodeMBps and DecodeMBps are raw (float32) MB per second on one core,
	// measured on the calibration activations.
	EncodeMBps float64 `json:"encode_mbps"`
	DecodeMBps float64 `json:"decode_mbps"`
	// MaxRelErr is the largest relative RMS error seen at any cut.
	MaxRelErr float64 `json:"max_rel_err"`
}

// CalibratedCut is one prefix cut's measurements.
type CalibratedCut struct {
	K        int      `json:"k"`
	Boundary []string `json:"boundary"`
	// RawBytes is the boundary's float32 size per sample.
	RawBytes int64 `json:"raw_bytes"`
	// Codecs maps a preset name to its measurements at this cut.
	Codecs map[string]CutMeasure `json:"codecs"`
}

// CutMeasure is one codec at one cut. Samples may be below the table's when
// measuring stopped early (the codec had already changed too many answers to
// be certified); Ratio is the mean raw ÷ wire bytes over the samples encoded.
type CutMeasure struct {
	Ratio float64 `json:"ratio"`
	Agreement
}

// CalibrationPath is where the calibration of the model file at modelPath is
// stored: model.onnx → model.calib.json.
func CalibrationPath(modelPath string) string {
	return strings.TrimSuffix(modelPath, filepath.Ext(modelPath)) + ".calib.json"
}

// Validate checks the table's structure and numbers.
func (c *Calibration) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrCalibration, fmt.Sprintf(f, a...))
	}
	if c.Format != CalibrationFormat {
		return bad("format %q, want %q", c.Format, CalibrationFormat)
	}
	if c.Version != CalibrationVersion {
		return bad("version %d, this build reads %d", c.Version, CalibrationVersion)
	}
	if c.Model.Nodes <= 0 || c.Data.Samples <= 0 {
		return bad("model nodes %d, samples %d: must be positive", c.Model.Nodes, c.Data.Samples)
	}
	names := make(map[string]bool, len(c.Codecs))
	for i, cc := range c.Codecs {
		if cc.Name == "" || names[cc.Name] {
			return bad("codecs[%d]: empty or repeated name %q", i, cc.Name)
		}
		names[cc.Name] = true
		if _, err := ParseFidelity(cc.Fidelity); err != nil {
			return bad("codecs[%d]: %v", i, err)
		}
		for _, v := range []float64{cc.EncodeMBps, cc.DecodeMBps, cc.MaxRelErr} {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return bad("codecs[%d] %s: speed or error %v", i, cc.Name, v)
			}
		}
	}
	if c.Exits != nil {
		if err := c.Exits.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrCalibration, err)
		}
		if last := c.Exits.Exits[len(c.Exits.Exits)-1].End; last > c.Model.Nodes {
			return bad("exits: an exit ends at node %d of %d", last, c.Model.Nodes)
		}
	}
	prev := -1
	for i, cut := range c.Cuts {
		if cut.K <= prev || cut.K >= c.Model.Nodes {
			return bad("cuts[%d]: K %d not ascending within 0..%d", i, cut.K, c.Model.Nodes-1)
		}
		prev = cut.K
		if cut.RawBytes < 0 {
			return bad("cuts[%d]: negative raw bytes", i)
		}
		for name, m := range cut.Codecs {
			if !names[name] {
				return bad("cuts[%d]: codec %q not listed in codecs", i, name)
			}
			if m.Samples < 0 || m.Agree < 0 || m.Agree > m.Samples || m.Samples > c.Data.Samples {
				return bad("cuts[%d] %s: %d of %d samples agree (table has %d)", i, name, m.Agree, m.Samples, c.Data.Samples)
			}
			if !(m.Ratio > 0) || math.IsInf(m.Ratio, 0) || math.IsNaN(m.MaxProbDelta) || m.MaxProbDelta < 0 {
				return bad("cuts[%d] %s: ratio %v, max probability change %v", i, name, m.Ratio, m.MaxProbDelta)
			}
		}
	}
	return nil
}

// Check reports whether the table belongs to the model with this version
// and node count.
func (c *Calibration) Check(version string, nodes int) error {
	if c.Model.Version != version || c.Model.Nodes != nodes {
		return fmt.Errorf("%w: table is for model version %s (%d nodes), not %s (%d nodes)",
			ErrCalibration, c.Model.Version, c.Model.Nodes, version, nodes)
	}
	return nil
}

// Marshal returns the table's canonical JSON (indented, keys in order).
func (c *Calibration) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(c, "", " ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Digest is a short content digest of the table (hex SHA-256 prefix of its
// canonical JSON), gossiped so nodes know whether they hold the same one.
func (c *Calibration) Digest() string {
	b, err := c.Marshal()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// ReadCalibration decodes and validates a table from r (at most
// MaxCalibrationBytes).
func ReadCalibration(r io.Reader) (*Calibration, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxCalibrationBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %w", ErrCalibration, err)
	}
	if len(b) > MaxCalibrationBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrCalibration, MaxCalibrationBytes)
	}
	var c Calibration
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: decode: %w", ErrCalibration, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadCalibration reads the table at path.
func LoadCalibration(path string) (*Calibration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := ReadCalibration(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Save writes the table to path atomically (a temporary file renamed over
// it, synced first).
func (c *Calibration) Save(path string) error {
	b, err := c.Marshal()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".calib-*.json")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Apply returns base with each codec's calibration filled in from the table:
// CutAgreement and CutRatios at every calibrated cut, the ratio averaged
// over cuts, the measured speeds and error (nodes is the model's node count;
// a cut not in the table keeps base's ratio and no agreement). Codecs the
// table does not list are returned as they are. The codecs' Fidelity is
// kept: what a codec guarantees is the codec's, not the table's.
func (c *Calibration) Apply(base []CodecModel) []CodecModel {
	out := make([]CodecModel, len(base))
	n := c.Model.Nodes
	for i, cm := range base {
		out[i] = cm
		var cc *CalibratedCodec
		for j := range c.Codecs {
			if c.Codecs[j].Name == cm.Name {
				cc = &c.Codecs[j]
			}
		}
		if cc == nil {
			continue
		}
		o := &out[i]
		if cc.EncodeMBps > 0 {
			o.EncodeBps = cc.EncodeMBps * 1e6
		}
		if cc.DecodeMBps > 0 {
			o.DecodeBps = cc.DecodeMBps * 1e6
		}
		o.MaxRelErr = cc.MaxRelErr
		o.CutAgreement = make([]Agreement, n+1)
		ratios := make([]float64, n+1)
		copy(ratios, cm.CutRatios)
		var sum float64
		var cnt int
		for _, cut := range c.Cuts {
			m, ok := cut.Codecs[cm.Name]
			if !ok || cut.K > n {
				continue
			}
			o.CutAgreement[cut.K] = m.Agreement
			ratios[cut.K] = m.Ratio
			sum += m.Ratio
			cnt++
		}
		o.CutRatios = ratios
		if cnt > 0 {
			o.Ratio = sum / float64(cnt)
		}
	}
	return out
}

// calibrationTime formats Created.
func calibrationTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// NewCalibration starts an empty table for a model.
func NewCalibration(id, version string, nodes int, data CalibrationData, now time.Time) *Calibration {
	return &Calibration{Format: CalibrationFormat, Version: CalibrationVersion,
		Model: CalibrationModel{ID: id, Version: version, Nodes: nodes}, Data: data, Created: calibrationTime(now)}
}
