package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/edgesplit/edgesplit/scheduler"
)

// Duration is a time.Duration written in YAML as "250ms", "1h".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 250ms, 1h)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Scenario is a simulation run, as read from YAML. Field names are the YAML
// keys; unknown keys are errors.
type Scenario struct {
	Name     string   `yaml:"name"`
	Seed     uint64   `yaml:"seed"`     // default 1
	Duration Duration `yaml:"duration"` // arrivals stop then; in-flight requests finish. Required.
	Policy   string   `yaml:"policy"`   // scheduler policy; default auto
	// Regret scores every request against the oracle's choice.
	Regret bool `yaml:"regret"`
	// MaxAccuracyLoss is the accuracy budget every planner obeys (see
	// scheduler.AccuracyBudget): the largest loss of top-1 agreement with
	// the unsplit model a codec may cost, judged by the lower confidence
	// bound of its calibration. Nil: scheduler.DefaultMaxLoss; 0: exact
	// codecs only.
	MaxAccuracyLoss *float64 `yaml:"max_accuracy_loss"`
	// Objective is what every planner minimises (scheduler.Objective):
	// latency (default), energy or weighted; an edge class may override
	// it. EnergyWeight is the weighted objective's seconds per joule
	// (default scheduler.DefaultEnergyWeight).
	Objective    string         `yaml:"objective"`
	EnergyWeight float64        `yaml:"energy_weight"`
	Estimation   EstimationSpec `yaml:"estimation"`
	Codecs       []CodecSpec    `yaml:"codecs"` // default: raw only
	Models       []ModelSpec    `yaml:"models"`
	Edges        []EdgeSpec     `yaml:"edges"`
	Cells        []CellSpec     `yaml:"cells"`
	Backhaul     BackhaulSpec   `yaml:"backhaul"`
	Clouds       []CloudSpec    `yaml:"clouds"`

	dir string // for relative paths
}

// EstimationSpec says where the planners' view comes from and how stale
// and noisy it is.
type EstimationSpec struct {
	// Source is "sampled" (default): every device sees the world's link
	// and cloud state as sampled every Interval, Lag old; or "learned":
	// each device learns its own link from its transfers and probes as an
	// edge node does (scheduler.EdgeLearner, through DeviceLearner), and
	// only cloud backlogs are sampled.
	Source   string   `yaml:"source"`
	Interval Duration `yaml:"interval"` // sampling period; default 1s
	Lag      Duration `yaml:"lag"`      // age of what a planner sees; default 0
	Noise    float64  `yaml:"noise"`    // relative std dev of link estimates (learned: of each sample); default 0
	Window   Duration `yaml:"window"`   // trace rate averaging window; default interval
}

// Estimation sources.
const (
	SourceSampled = "sampled"
	SourceLearned = "learned"
)

// CodecSpec is a codec preset's cost and accuracy (see
// scheduler.CodecModel); throughputs in MB/s of raw data (0: free).
//
// A lossy codec is planned only where its calibrated agreement certifies
// the scenario's accuracy budget, as on a node: give Agreement (every cut)
// or CutAgreement (per cut), or a model's calibration table.
type CodecSpec struct {
	Name  string  `yaml:"name"`
	Ratio float64 `yaml:"ratio"`
	// Fidelity is exact, bounded or lossy (scheduler.Fidelity). Default:
	// exact for raw and lossless, bounded for fast (fp16), lossy for
	// anything else. Only exact codecs are planned without Agreement.
	Fidelity string `yaml:"fidelity"`
	// Agreement is the codec's calibrated top-1 agreement with the unsplit
	// model at every cut; CutAgreement[K], when given, overrides it at cut K.
	Agreement    *AgreementSpec  `yaml:"agreement,omitempty"`
	CutAgreement []AgreementSpec `yaml:"cut_agreement,omitempty"`
	// CutRatios optionally gives the ratio at each prefix cut K (index K;
	// 0 = use Ratio), as an edge node measures and learns them.
	CutRatios  []float64 `yaml:"cut_ratios,omitempty"`
	EncodeMBps float64   `yaml:"encode_mbps"`
	DecodeMBps float64   `yaml:"decode_mbps"`
	MaxRelErr  float64   `yaml:"max_rel_err"`
}

// AgreementSpec is a calibration count: of Samples calibration inputs, Agree
// kept the unsplit model's top-1 class (scheduler.Agreement).
type AgreementSpec struct {
	Agree        int     `yaml:"agree"`
	Samples      int     `yaml:"samples"`
	MaxProbDelta float64 `yaml:"max_prob_delta,omitempty"`
}

func (a AgreementSpec) agreement() scheduler.Agreement {
	return scheduler.Agreement{Agree: a.Agree, Samples: a.Samples, MaxProbDelta: a.MaxProbDelta}
}

func (a AgreementSpec) validate(f string) error {
	if a.Samples < 0 || a.Agree < 0 || a.Agree > a.Samples {
		return bad(f, "want 0 ≤ agree ≤ samples, got %d of %d", a.Agree, a.Samples)
	}
	if math.IsNaN(a.MaxProbDelta) || a.MaxProbDelta < 0 || a.MaxProbDelta > 1 {
		return bad(f+".max_prob_delta", "must be in [0, 1], got %v", a.MaxProbDelta)
	}
	return nil
}

// codecFidelity is the fidelity a codec spec declares, or its name's default.
func (c *CodecSpec) codecFidelity() (scheduler.Fidelity, error) {
	if c.Fidelity != "" {
		return scheduler.ParseFidelity(c.Fidelity)
	}
	switch c.Name {
	case "raw", "lossless":
		return scheduler.Exact, nil
	case "fast":
		return scheduler.Bounded, nil
	}
	return scheduler.Lossy, nil
}

// ModelSpec names a model and where its profile comes from: synthetic, a zoo
// model name profiled on the analytic reference device (see
// SyntheticModel), a JSON file (ModelFile, relative to the scenario), or,
// when neither is set, Config.Resolve.
type ModelSpec struct {
	Name      string     `yaml:"name"`
	Synthetic string     `yaml:"synthetic"`
	Profile   string     `yaml:"profile"`
	Exits     []ExitSpec `yaml:"exits"`
	// Calibration is the model's calibration table (scheduler.Calibration,
	// as `edgesplit codec bench --write-calibration` or a node writes it;
	// relative to the scenario): its per-cut agreement, ratios and speeds
	// replace the codecs' for this model.
	Calibration string `yaml:"calibration"`
}

// ExitSpec is an early exit of a multi-exit model: after node After (that
// is, once nodes [0,After) ran) a request leaves with probability Prob.
type ExitSpec struct {
	After int     `yaml:"after"`
	Prob  float64 `yaml:"prob"`
}

// EdgeSpec is a class of identical edge devices.
type EdgeSpec struct {
	Name     string   `yaml:"name"`
	Count    int      `yaml:"count"` // default 1
	Model    string   `yaml:"model"` // required
	Slowdown float64  `yaml:"slowdown"`
	Policy   string   `yaml:"policy"` // overrides the scenario's
	Link     LinkSpec `yaml:"link"`
	Cell     string   `yaml:"cell"` // uplink through this shared cell instead of Link
	Arrivals Arrivals `yaml:"arrivals"`
	Deadline Duration `yaml:"deadline"` // SLO; 0 none
	Power    Power    `yaml:"power"`
	// Objective overrides the scenario's for this class.
	Objective string `yaml:"objective"`
}

// LinkSpec is a device's own radio link: a named profile (LinkProfileNamed), with
// any explicit field overriding it, or a Mahimahi trace for the uplink.
type LinkSpec struct {
	Profile   string   `yaml:"profile"`
	UpMbps    float64  `yaml:"up_mbps"`
	DownMbps  float64  `yaml:"down_mbps"`
	Delay     Duration `yaml:"delay"` // one-way
	Loss      float64  `yaml:"loss"`
	TraceUp   string   `yaml:"trace_up"`   // Mahimahi file, relative to the scenario
	TraceDown string   `yaml:"trace_down"` // optional
	// Schedule changes a fixed link over time (e.g. Wi-Fi, then LTE): from
	// each phase's At on, its values hold (unset ones from its profile, or
	// else from the link above). A transfer runs at the rate of the phase it
	// starts in.
	Schedule []LinkPhase `yaml:"schedule"`
	// CellReplay, when set, makes the link burst-aware (CellReplay, NSDI
	// 2025): each direction given replays a light (packet-train) trace and
	// a heavy PDO trace (internal/cellreplay's format), so a short burst
	// follows the light trains' delivery opportunities, a long one the
	// heavy trace, and the base delay varies over time (it replaces Delay
	// for that direction).
	CellReplay *CellReplaySpec `yaml:"cellreplay"`
}

// CellReplaySpec names a burst-aware link's CellReplay traces (files
// relative to the scenario; the down pair is optional) and the model the
// planners price transfers with: "burst" (default: the traces' mean
// transfer curve, scheduler.CurveFromCellReplay) or "plain" (bytes ÷ the
// heavy trace's mean rate, as for a Mahimahi trace).
type CellReplaySpec struct {
	UpLight   string `yaml:"up_light"`
	UpHeavy   string `yaml:"up_heavy"`
	DownLight string `yaml:"down_light"`
	DownHeavy string `yaml:"down_heavy"`
	Model     string `yaml:"model"`
}

// LinkPhase is one step of a link schedule.
type LinkPhase struct {
	At       Duration `yaml:"at"`
	Profile  string   `yaml:"profile"`
	UpMbps   float64  `yaml:"up_mbps"`
	DownMbps float64  `yaml:"down_mbps"`
	Delay    Duration `yaml:"delay"`
	Loss     float64  `yaml:"loss"`
}

// Arrivals is a request process per device.
type Arrivals struct {
	Process string  `yaml:"process"` // poisson (default), periodic, trace, closed
	Rate    float64 `yaml:"rate"`    // poisson: requests per second per device
	FPS     float64 `yaml:"fps"`     // periodic: frames per second
	File    string  `yaml:"file"`    // trace: arrival times in ms, one per line; loops
	// Think is the closed process's pause between a request's answer and
	// the device's next request (0: back to back, like a benchmark client
	// or `edgesplit demo`). A closed device has one request at a time.
	Think Duration `yaml:"think"`
}

// Power is a device class's power model, the scheduler's
// (scheduler.PowerModel; see the package documentation): the device's
// compute power, its radio's, and the time between its requests that cuts
// the radio's tail short. Unset fields take defaults: compute_w from the
// device profile named by device (scheduler.DeviceComputeW), else 2 W; the
// radio of the link profile named by radio ("none": no radio energy), else
// of the class's link profile, else LTE's; the explicit radio fields
// override that radio's; interval the class's mean time between arrivals
// (poisson 1/rate, periodic 1/fps, closed its think time; 0, the full
// tail, for trace arrivals).
type Power struct {
	Device        string   `yaml:"device"`
	ComputeW      float64  `yaml:"compute_w"`
	Radio         string   `yaml:"radio"`
	TxAlphaMWMbps float64  `yaml:"tx_alpha_mw_per_mbps"`
	RxAlphaMWMbps float64  `yaml:"rx_alpha_mw_per_mbps"`
	TxBetaMW      float64  `yaml:"tx_beta_mw"`
	TailMW        float64  `yaml:"tail_mw"`
	Tail          Duration `yaml:"tail"`
	Interval      Duration `yaml:"interval"`
}

// model resolves p into the scheduler's power model for a class with link
// l and arrivals a.
func (p *Power) model(l *LinkSpec, a *Arrivals) scheduler.PowerModel {
	var m scheduler.PowerModel
	m.ComputeW = p.ComputeW
	if m.ComputeW == 0 {
		if w, ok := scheduler.DeviceComputeW(p.Device); ok {
			m.ComputeW = w
		} else {
			m.ComputeW, _ = scheduler.DeviceComputeW("phone")
		}
	}
	switch {
	case p.Radio == "none":
	case p.Radio != "":
		m.Radio, _ = scheduler.RadioFor(p.Radio)
	default:
		r, ok := scheduler.RadioFor(l.Profile)
		if !ok {
			r, _ = scheduler.RadioFor("lte")
		}
		m.Radio = r
	}
	for _, x := range []struct {
		v   float64
		dst *float64
	}{{p.TxAlphaMWMbps, &m.Radio.UpAlphaMW}, {p.RxAlphaMWMbps, &m.Radio.DownAlphaMW}, {p.TxBetaMW, &m.Radio.BetaMW}, {p.TailMW, &m.Radio.TailMW}} {
		if x.v > 0 {
			*x.dst = x.v
		}
	}
	if p.Tail > 0 {
		m.Radio.Tail = time.Duration(p.Tail)
	}
	m.Interval = time.Duration(p.Interval)
	if m.Interval == 0 {
		switch a.Process {
		case "", "poisson":
			m.Interval = time.Duration(float64(time.Second) / a.Rate)
		case "periodic":
			m.Interval = time.Duration(float64(time.Second) / a.FPS)
		case "closed":
			m.Interval = time.Duration(a.Think)
		}
	}
	return m
}

// CellSpec is a shared radio cell.
type CellSpec struct {
	Name     string   `yaml:"name"`
	UpMbps   float64  `yaml:"up_mbps"`
	DownMbps float64  `yaml:"down_mbps"`
	Delay    Duration `yaml:"delay"`
}

// BackhaulSpec is the path from the radio network to the clouds.
type BackhaulSpec struct {
	Delay    Duration `yaml:"delay"`
	RateMbps float64  `yaml:"rate_mbps"` // 0: infinite
}

// CloudSpec is a group of identical cloud servers.
type CloudSpec struct {
	Name     string    `yaml:"name"`
	Count    int       `yaml:"count"`   // default 1
	Workers  int       `yaml:"workers"` // default 1
	Slowdown float64   `yaml:"slowdown"`
	Batch    BatchSpec `yaml:"batch"`
	// Service is the service-time distribution: fixed (default: the
	// profile's latency) or exponential (same mean; for queueing checks).
	Service string `yaml:"service"`
}

// BatchSpec turns batching on when Max > 1.
type BatchSpec struct {
	Max   int      `yaml:"max"`
	Wait  Duration `yaml:"wait"`  // longest a worker waits to fill a batch
	Scale float64  `yaml:"scale"` // marginal cost of each extra request; default 0.3
}

// ScenarioError is a bad scenario: Field is the YAML path ("edges[1].link.up_mbps").
type ScenarioError struct {
	File  string
	Field string
	Msg   string
}

func (e *ScenarioError) Error() string {
	s := "scenario"
	if e.File != "" {
		s += " " + e.File
	}
	if e.Field != "" {
		return s + ": " + e.Field + ": " + e.Msg
	}
	return s + ": " + e.Msg
}

// ErrScenario is matched (errors.Is) by every *ScenarioError.
var ErrScenario = errors.New("sim: bad scenario")

// Is makes errors.Is(err, ErrScenario) true.
func (e *ScenarioError) Is(t error) bool { return t == ErrScenario }

// maxScenarioBytes bounds a scenario file.
const maxScenarioBytes = 4 << 20

// LoadScenario reads and validates a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := ParseScenario(f, path)
	if err != nil {
		return nil, err
	}
	s.dir = filepath.Dir(path)
	return s, nil
}

var yamlField = regexp.MustCompile(`line (\d+): field (\S+) not found in type sim\.(\w+)`)

// ParseScenario reads and validates a scenario; name labels errors.
// Relative file paths in it are resolved from the current directory (use
// LoadScenario for paths relative to the file).
func ParseScenario(r io.Reader, name string) (*Scenario, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxScenarioBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxScenarioBytes {
		return nil, &ScenarioError{File: name, Msg: fmt.Sprintf("larger than %d bytes", maxScenarioBytes)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ScenarioError{File: name, Msg: "empty"}
		}
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg := te.Errors[0]
			if m := yamlField.FindStringSubmatch(msg); m != nil {
				return nil, &ScenarioError{File: name, Field: m[2], Msg: fmt.Sprintf("unknown key (line %s, in %s)", m[1], strings.ToLower(m[3]))}
			}
			return nil, &ScenarioError{File: name, Msg: strings.ReplaceAll(msg, "\n", " ")}
		}
		return nil, &ScenarioError{File: name, Msg: strings.ReplaceAll(strings.TrimPrefix(err.Error(), "yaml: "), "\n", " ")}
	}
	if err := s.validate(); err != nil {
		var se *ScenarioError
		if errors.As(err, &se) {
			se.File = name
		}
		return nil, err
	}
	return &s, nil
}

func bad(field, format string, a ...any) error {
	return &ScenarioError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

func positive(field string, v float64) error {
	if !(v > 0) {
		return bad(field, "must be > 0, got %v", v)
	}
	return nil
}

func nonNeg(field string, v float64) error {
	if v < 0 || v != v {
		return bad(field, "must be ≥ 0, got %v", v)
	}
	return nil
}

// maxEntities bounds devices and servers so a typo cannot exhaust memory.
const maxEntities = 10_000_000

// validate checks values and fills defaults.
func (s *Scenario) validate() error {
	if s.Seed == 0 {
		s.Seed = 1
	}
	if s.Duration <= 0 {
		return bad("duration", "required and > 0 (e.g. 10m)")
	}
	if s.Policy == "" {
		s.Policy = "auto"
	}
	if _, err := scheduler.ParsePolicy(s.Policy); err != nil {
		return bad("policy", "%v", err)
	}
	e := &s.Estimation
	switch e.Source {
	case "":
		e.Source = SourceSampled
	case SourceSampled, SourceLearned:
	default:
		return bad("estimation.source", "must be %q or %q, got %q", SourceSampled, SourceLearned, e.Source)
	}
	if e.Interval == 0 {
		e.Interval = Duration(time.Second)
	}
	if e.Interval < Duration(time.Millisecond) {
		return bad("estimation.interval", "must be ≥ 1ms, got %v", e.Interval.D())
	}
	if e.Lag < 0 {
		return bad("estimation.lag", "must be ≥ 0")
	}
	if err := nonNeg("estimation.noise", e.Noise); err != nil {
		return err
	}
	if e.Window <= 0 {
		e.Window = e.Interval
	}
	names := map[string]bool{}
	for i := range s.Codecs {
		c := &s.Codecs[i]
		f := fmt.Sprintf("codecs[%d]", i)
		if c.Name == "" {
			return bad(f+".name", "required")
		}
		if names[c.Name] {
			return bad(f+".name", "duplicate %q", c.Name)
		}
		names[c.Name] = true
		for k, r := range c.CutRatios {
			if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
				return bad(fmt.Sprintf("%s.cut_ratios[%d]", f, k), "must be ≥ 0 and finite, got %v", r)
			}
		}
		if err := positive(f+".ratio", c.Ratio); err != nil {
			return err
		}
		if err := nonNeg(f+".encode_mbps", c.EncodeMBps); err != nil {
			return err
		}
		if err := nonNeg(f+".decode_mbps", c.DecodeMBps); err != nil {
			return err
		}
		if _, err := c.codecFidelity(); err != nil {
			return bad(f+".fidelity", "%v", err)
		}
		if c.Agreement != nil {
			if err := c.Agreement.validate(f + ".agreement"); err != nil {
				return err
			}
		}
		for k, a := range c.CutAgreement {
			if err := a.validate(fmt.Sprintf("%s.cut_agreement[%d]", f, k)); err != nil {
				return err
			}
		}
	}
	if l := s.MaxAccuracyLoss; l != nil {
		if _, err := scheduler.NewBudget(*l); err != nil {
			return bad("max_accuracy_loss", "%v", err)
		}
	}
	if _, err := scheduler.ParseObjective(s.Objective); err != nil {
		return bad("objective", "%v", err)
	}
	if w := s.EnergyWeight; w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
		return bad("energy_weight", "must be ≥ 0 and finite, got %v", w)
	}
	if len(s.Models) == 0 {
		return bad("models", "at least one model is required")
	}
	models := map[string]bool{}
	for i := range s.Models {
		m := &s.Models[i]
		f := fmt.Sprintf("models[%d]", i)
		if m.Name == "" {
			return bad(f+".name", "required")
		}
		if models[m.Name] {
			return bad(f+".name", "duplicate %q", m.Name)
		}
		models[m.Name] = true
		if m.Synthetic != "" && m.Profile != "" {
			return bad(f, "set synthetic or profile, not both")
		}
		if m.Synthetic != "" {
			if !isSynthetic(m.Synthetic) {
				return bad(f+".synthetic", "unknown %q (have %s)", m.Synthetic, strings.Join(SyntheticModels(), ", "))
			}
		}
		sum := 0.0
		for j, x := range m.Exits {
			if x.After <= 0 {
				return bad(fmt.Sprintf("%s.exits[%d].after", f, j), "must be > 0, got %d", x.After)
			}
			if x.Prob < 0 || x.Prob > 1 {
				return bad(fmt.Sprintf("%s.exits[%d].prob", f, j), "must be in [0,1], got %v", x.Prob)
			}
			if j > 0 && x.After <= m.Exits[j-1].After {
				return bad(fmt.Sprintf("%s.exits[%d].after", f, j), "exits must be in increasing order")
			}
			sum += x.Prob
		}
		if sum > 1+1e-9 {
			return bad(f+".exits", "probabilities sum to %v > 1", sum)
		}
	}
	cells := map[string]bool{}
	for i := range s.Cells {
		c := &s.Cells[i]
		f := fmt.Sprintf("cells[%d]", i)
		if c.Name == "" {
			return bad(f+".name", "required")
		}
		if cells[c.Name] {
			return bad(f+".name", "duplicate %q", c.Name)
		}
		cells[c.Name] = true
		if err := positive(f+".up_mbps", c.UpMbps); err != nil {
			return err
		}
		if err := positive(f+".down_mbps", c.DownMbps); err != nil {
			return err
		}
		if c.Delay < 0 {
			return bad(f+".delay", "must be ≥ 0")
		}
	}
	if len(s.Edges) == 0 {
		return bad("edges", "at least one edge device class is required")
	}
	total := 0
	for i := range s.Edges {
		d := &s.Edges[i]
		f := fmt.Sprintf("edges[%d]", i)
		if d.Name == "" {
			d.Name = fmt.Sprintf("edge%d", i)
		}
		if d.Count == 0 {
			d.Count = 1
		}
		if d.Count < 0 || d.Count > maxEntities {
			return bad(f+".count", "must be in 1..%d, got %d", maxEntities, d.Count)
		}
		total += d.Count
		if d.Model == "" {
			return bad(f+".model", "required (one of the models' names)")
		}
		if !models[d.Model] {
			return bad(f+".model", "unknown model %q (defined: %s)", d.Model, strings.Join(sortedKeys(models), ", "))
		}
		if d.Slowdown == 0 {
			d.Slowdown = 1
		}
		if err := positive(f+".slowdown", d.Slowdown); err != nil {
			return err
		}
		if d.Policy != "" {
			if _, err := scheduler.ParsePolicy(d.Policy); err != nil {
				return bad(f+".policy", "%v", err)
			}
		}
		if err := d.Link.validate(f+".link", d.Cell != ""); err != nil {
			return err
		}
		if d.Cell != "" && !cells[d.Cell] {
			return bad(f+".cell", "unknown cell %q", d.Cell)
		}
		a := &d.Arrivals
		switch a.Process {
		case "", "poisson":
			a.Process = "poisson"
			if err := positive(f+".arrivals.rate", a.Rate); err != nil {
				return err
			}
		case "periodic":
			if err := positive(f+".arrivals.fps", a.FPS); err != nil {
				return err
			}
		case "trace":
			if a.File == "" {
				return bad(f+".arrivals.file", "required for process trace")
			}
		case "closed":
			if a.Think < 0 {
				return bad(f+".arrivals.think", "must be ≥ 0")
			}
		default:
			return bad(f+".arrivals.process", "unknown %q (poisson, periodic, trace or closed)", a.Process)
		}
		if d.Deadline < 0 {
			return bad(f+".deadline", "must be ≥ 0")
		}
		p := &d.Power
		for _, x := range []struct {
			k string
			v float64
		}{{"compute_w", p.ComputeW}, {"tx_alpha_mw_per_mbps", p.TxAlphaMWMbps}, {"rx_alpha_mw_per_mbps", p.RxAlphaMWMbps},
			{"tx_beta_mw", p.TxBetaMW}, {"tail_mw", p.TailMW}} {
			if err := nonNeg(f+".power."+x.k, x.v); err != nil {
				return err
			}
		}
		if p.Tail < 0 || p.Interval < 0 {
			return bad(f+".power", "tail and interval must be ≥ 0")
		}
		if _, ok := scheduler.DeviceComputeW(p.Device); p.Device != "" && !ok {
			return bad(f+".power.device", "unknown device profile %q", p.Device)
		}
		if _, ok := scheduler.RadioFor(p.Radio); p.Radio != "" && p.Radio != "none" && !ok {
			return bad(f+".power.radio", "unknown link profile %q (or none)", p.Radio)
		}
		if _, err := scheduler.ParseObjective(d.Objective); err != nil {
			return bad(f+".objective", "%v", err)
		}
	}
	if total > maxEntities {
		return bad("edges", "%d devices in all, more than %d", total, maxEntities)
	}
	if s.Backhaul.Delay < 0 {
		return bad("backhaul.delay", "must be ≥ 0")
	}
	if err := nonNeg("backhaul.rate_mbps", s.Backhaul.RateMbps); err != nil {
		return err
	}
	servers := 0
	for i := range s.Clouds {
		c := &s.Clouds[i]
		f := fmt.Sprintf("clouds[%d]", i)
		if c.Name == "" {
			c.Name = fmt.Sprintf("cloud%d", i)
		}
		if c.Count == 0 {
			c.Count = 1
		}
		if c.Workers == 0 {
			c.Workers = 1
		}
		if c.Count < 0 || c.Count > 100_000 {
			return bad(f+".count", "must be in 1..100000, got %d", c.Count)
		}
		if c.Workers < 0 || c.Workers > 100_000 {
			return bad(f+".workers", "must be in 1..100000, got %d", c.Workers)
		}
		servers += c.Count
		if c.Slowdown == 0 {
			c.Slowdown = 1
		}
		if err := positive(f+".slowdown", c.Slowdown); err != nil {
			return err
		}
		switch c.Service {
		case "":
			c.Service = "fixed"
		case "fixed", "exponential":
		default:
			return bad(f+".service", "unknown %q (fixed or exponential)", c.Service)
		}
		if c.Batch.Max < 0 || c.Batch.Max > 4096 {
			return bad(f+".batch.max", "must be in 0..4096, got %d", c.Batch.Max)
		}
		if c.Batch.Wait < 0 {
			return bad(f+".batch.wait", "must be ≥ 0")
		}
		if c.Batch.Scale == 0 {
			c.Batch.Scale = 0.3
		}
		if c.Batch.Scale < 0 || c.Batch.Scale > 1 {
			return bad(f+".batch.scale", "must be in (0,1], got %v", c.Batch.Scale)
		}
	}
	if servers > 1000 {
		return bad("clouds", "%d servers in all; at most 1000 (each is a planning candidate)", servers)
	}
	return nil
}

func (l *LinkSpec) validate(f string, inCell bool) error {
	if inCell {
		if l.Profile != "" || l.UpMbps != 0 || l.DownMbps != 0 || l.Delay != 0 || l.Loss != 0 || l.TraceUp != "" || l.TraceDown != "" || len(l.Schedule) > 0 || l.CellReplay != nil {
			return bad(f, "a device in a cell takes the cell's link; remove link")
		}
		return nil
	}
	if l.Profile != "" {
		p, ok := LinkProfileNamed(l.Profile)
		if !ok {
			return bad(f+".profile", "unknown %q (have %s)", l.Profile, strings.Join(LinkProfileNames(), ", "))
		}
		if l.UpMbps == 0 {
			l.UpMbps = p.UpMbps
		}
		if l.DownMbps == 0 {
			l.DownMbps = p.DownMbps
		}
		if l.Delay == 0 {
			l.Delay = Duration(p.DelayMs * float64(time.Millisecond))
		}
		if l.Loss == 0 {
			l.Loss = p.Loss
		}
	}
	cr := l.CellReplay
	if cr != nil {
		switch {
		case cr.UpLight == "" || cr.UpHeavy == "":
			return bad(f+".cellreplay", "up_light and up_heavy are required")
		case (cr.DownLight == "") != (cr.DownHeavy == ""):
			return bad(f+".cellreplay", "down_light and down_heavy go together")
		case cr.Model != "" && cr.Model != "burst" && cr.Model != "plain":
			return bad(f+".cellreplay.model", "unknown %q (burst or plain)", cr.Model)
		case l.TraceUp != "" || l.TraceDown != "" || len(l.Schedule) > 0:
			return bad(f+".cellreplay", "a CellReplay link has no Mahimahi trace or schedule")
		}
	}
	if l.TraceUp == "" && cr == nil {
		if err := positive(f+".up_mbps", l.UpMbps); err != nil {
			return err
		}
	} else if l.UpMbps < 0 {
		return bad(f+".up_mbps", "must be ≥ 0, got %v", l.UpMbps)
	}
	if l.TraceDown == "" && (cr == nil || cr.DownLight == "") {
		if err := positive(f+".down_mbps", l.DownMbps); err != nil {
			return err
		}
	}
	if l.Delay < 0 {
		return bad(f+".delay", "must be ≥ 0")
	}
	if l.Loss < 0 || l.Loss >= 1 {
		return bad(f+".loss", "must be in [0,1), got %v", l.Loss)
	}
	if len(l.Schedule) > 0 && l.TraceUp != "" {
		return bad(f+".schedule", "a trace link cannot have a schedule")
	}
	for i := range l.Schedule {
		ph := &l.Schedule[i]
		pf := fmt.Sprintf("%s.schedule[%d]", f, i)
		if ph.At < 0 || (i > 0 && ph.At <= l.Schedule[i-1].At) {
			return bad(pf+".at", "must be ≥ 0 and increasing")
		}
		sub := LinkSpec{Profile: ph.Profile, UpMbps: ph.UpMbps, DownMbps: ph.DownMbps, Delay: ph.Delay, Loss: ph.Loss}
		if ph.Profile == "" {
			if sub.UpMbps == 0 {
				sub.UpMbps = l.UpMbps
			}
			if sub.DownMbps == 0 {
				sub.DownMbps = l.DownMbps
			}
			if sub.Delay == 0 {
				sub.Delay = l.Delay
			}
		}
		if err := sub.validate(pf, false); err != nil {
			return err
		}
		ph.UpMbps, ph.DownMbps, ph.Delay, ph.Loss = sub.UpMbps, sub.DownMbps, sub.Delay, sub.Loss
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// budget is the accuracy budget of the run: Config.Accuracy, else the
// scenario's max_accuracy_loss, else the default.
func (s *Scenario) budget(cfg Config) (scheduler.AccuracyBudget, error) {
	if cfg.Accuracy != nil {
		return *cfg.Accuracy, nil
	}
	if s.MaxAccuracyLoss == nil {
		return scheduler.AccuracyBudget{}, nil
	}
	return scheduler.NewBudget(*s.MaxAccuracyLoss)
}

// codecsFor returns the scenario's codecs with their declared agreement
// laid out over the prefix cuts 0..nodes of a model.
func codecsFor(base []scheduler.CodecModel, specs []CodecSpec, nodes int) []scheduler.CodecModel {
	out := append([]scheduler.CodecModel(nil), base...)
	for i := range specs {
		sp := &specs[i]
		if sp.Agreement == nil && len(sp.CutAgreement) == 0 {
			continue
		}
		cut := make([]scheduler.Agreement, nodes+1)
		for k := range cut {
			switch {
			case k < len(sp.CutAgreement) && sp.CutAgreement[k].Samples > 0:
				cut[k] = sp.CutAgreement[k].agreement()
			case sp.Agreement != nil:
				cut[k] = sp.Agreement.agreement()
			}
		}
		for j := range out {
			if out[j].Name == sp.Name {
				out[j].CutAgreement = cut
			}
		}
	}
	return out
}
