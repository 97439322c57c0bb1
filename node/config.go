package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/node/registry"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/transport"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"github.com/edgesplit/edgesplit/transport/pki"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Node. Start from DefaultConfig.
type Config struct {
	// Name is the node's unique name; it must match its certificate.
	Name string
	// Role is edge or cloud.
	Role Role
	// Device is the emulated compute device (default: server, no slowdown).
	Device Device
	// Models are the models the node holds. Edges run heads (and whole
	// models as fallback); clouds run tails. Required: at least one here
	// or in Store.
	Models []*Model
	// Store, when set, is the node's model store (registry.Open): at start
	// the node serves the active version of every model in it and the
	// version before (maxVersions); versions can be pushed to it (Push)
	// and rolled out over the cluster (Rollout), fetched from peers in
	// checked chunks.
	Store *registry.Store
	// Identity is the node's certificate from the cluster CA. Required.
	Identity *pki.Identity
	// QUICAddr is the UDP address of the node's QUIC endpoint. Default
	// "127.0.0.1:0".
	QUICAddr string
	// Uplink and Downlink emulate the node's access link (all its QUIC
	// traffic passes through them). Zero values pass packets through.
	Uplink, Downlink linkem.LinkSettings
	// Network, when set, opens the node's endpoint on it at QUICAddr
	// instead of a QUIC endpoint on a UDP socket: a transport.MemNetwork
	// shared by in-process nodes, for example. Uplink and Downlink then
	// shape the endpoint's own link (it must have a SetLink method, as
	// *transport.MemEndpoint does). Default nil: QUIC with mutual TLS over
	// UDP.
	Network transport.Network
	// Gossip configures membership; Gossip.Name is set from Name.
	Gossip MembershipConfig
	// HTTPAddr, when set, serves the client API (/v1/infer, /v1/cluster,
	// /metrics, the status page) there; API must then be set.
	HTTPAddr string
	// API says who may call which route of the client API, at which rate
	// (access.New from a clients file); access.Open() admits everyone and
	// must be chosen explicitly. Nil is allowed only without HTTPAddr:
	// Handler then serves everyone, for an embedding server that
	// authenticates itself.
	API *access.Guard
	// APITLS, when set, serves the client API over TLS
	// (access.ServerTLS: the node's or the operator's certificate, client
	// certificates from the cluster CA accepted).
	APITLS *tls.Config
	// MaxAPIConns caps the client API's open connections; more wait in
	// the listen queue. Default 256.
	MaxAPIConns int
	// APIHeaderTimeout and APIReadTimeout bound how long a client may take
	// to send a request's headers and the whole request, body included:
	// a connection that dribbles its body is closed when it passes.
	// Defaults 5 s and 30 s.
	APIHeaderTimeout, APIReadTimeout time.Duration
	// Objective is what the edge's plans minimise (latency, the device's
	// energy under Power, or seconds + EnergyWeight × joules); energy and
	// weighted need Power. EnergyWeight 0 means scheduler.DefaultEnergyWeight.
	Objective    scheduler.Objective
	Power        scheduler.PowerModel
	EnergyWeight float64
	// Policy is the default split policy (scheduler.ParsePolicy). Default
	// "auto".
	Policy string
	// Codecs are the tensorcodec presets the scheduler may choose from.
	// Default: all presets.
	Codecs []string
	// Accuracy is the default accuracy budget of the edge's plans (a
	// request may set its own). The zero value is the scheduler's default:
	// top-1 agreement with the unsplit model ≥ 99.9 % at 95 % confidence.
	Accuracy scheduler.AccuracyBudget
	// SLO is the default per-request deadline of models with calibrated
	// early exits (a request may set its own; exits.go). 0: none.
	SLO time.Duration
	// Workers is how many segments a cloud runs at once. Default 1.
	Workers int
	// EdgeWorkers is how many heads (or models finished locally) an edge
	// computes at once, as a device with that many cores would; more wait
	// for one. 0: no limit (every request computes at once).
	EdgeWorkers int
	// Sequential makes each request hold an edge worker from its start to
	// its answer (needs EdgeWorkers): the baseline without pipelining. By
	// default requests pipeline: one holds a worker only while it computes
	// here, so the head of the next runs while its tail is away.
	Sequential bool
	// Tiers is 3 (or 0) when the edge may plan three tiers — edge, edge
	// server, cloud (scheduler.Inputs.ThreeTier) — with the auto,
	// neurosurgeon and dads policies, and 2 to plan two tiers only.
	Tiers int
	// ThroughputQueue is how many requests must wait for an edge worker
	// before the edge's plans minimise their slowest stage
	// (scheduler.ObjectiveThroughput) instead of their latency (only under
	// the latency objective, with EdgeWorkers set). 0 means
	// DefaultThroughputQueue; negative never switches.
	ThroughputQueue int
	// ProfileRuns is the number of timed runs per node when profiling a
	// model at start. Default 7.
	ProfileRuns int
	// Hedge is the multiple of a plan's predicted latency after which an
	// edge sends the same boundary to a second cloud too, when the first
	// has not answered (at least 50 ms in): the first answer wins and the
	// other call is cancelled. 0 means DefaultHedge; negative disables.
	Hedge float64
	// Attempts is how many clouds an edge tries for one request before it
	// finishes the tail itself. Default 2.
	Attempts int
	// BanBase is how long a failed cloud is avoided at first (doubling on
	// repeated failures, as Petals does). Default 15 s.
	BanBase time.Duration
	// MetaInterval is how often a cloud gossips its load. Default 250 ms.
	MetaInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Audit, when set, gets one record per client API request (time,
	// client, model and version, plan, cloud, bytes, outcome) and per
	// security event (refused request), apart from the operational log;
	// see NewAuditLog. Nil: no audit trail.
	Audit *slog.Logger
	// Registry receives the node's Prometheus metrics. Default: a new
	// registry of the node's own (served on /metrics).
	Registry *prometheus.Registry
}

// DefaultConfig returns a configuration for a node on loopback with the
// fast-converging gossip defaults.
func DefaultConfig(name string, role Role) Config {
	return Config{
		Name:         name,
		Role:         role,
		Device:       Device{Name: "server", Slowdown: 1},
		QUICAddr:     "127.0.0.1:0",
		Gossip:       DefaultMembershipConfig(name),
		Policy:       "auto",
		Workers:      1,
		ProfileRuns:  7,
		Attempts:     2,
		BanBase:      15 * time.Second,
		MetaInterval: 250 * time.Millisecond,
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("Name is empty"))
	}
	if _, err := ParseRole(string(c.Role)); err != nil {
		errs = append(errs, err)
	}
	if c.Tiers != 0 && c.Tiers != 2 && c.Tiers != 3 {
		errs = append(errs, fmt.Errorf("Tiers %d: want 2 or 3", c.Tiers))
	}
	if c.EdgeWorkers < 0 {
		errs = append(errs, fmt.Errorf("EdgeWorkers %d is negative", c.EdgeWorkers))
	}
	if c.Sequential && c.EdgeWorkers == 0 {
		errs = append(errs, errors.New("Sequential needs EdgeWorkers (the device's workers a request holds)"))
	}
	if len(c.Models) == 0 && (c.Store == nil || len(c.Store.Entries()) == 0) {
		errs = append(errs, errors.New("no Models (and no model in Store)"))
	}
	seen := make(map[string]bool)
	for _, m := range c.Models {
		if seen[m.ID] {
			errs = append(errs, fmt.Errorf("model %q listed twice", m.ID))
		}
		seen[m.ID] = true
	}
	if c.Identity == nil {
		errs = append(errs, errors.New("no Identity (certificate)"))
	} else if c.Identity.Name != c.Name {
		errs = append(errs, fmt.Errorf("certificate is for %q, node is %q", c.Identity.Name, c.Name))
	} else if c.Identity.Role != pki.Role(c.Role) {
		errs = append(errs, fmt.Errorf("the certificate of %s is for role %q, the node is %s (peers check it: issue one with the node's role)", c.Name, c.Identity.Role, c.Role))
	}
	if c.Device.Slowdown == 0 {
		c.Device = Device{Name: "server", Slowdown: 1}
	}
	if c.Device.Slowdown < 1 {
		errs = append(errs, fmt.Errorf("device slowdown %g < 1", c.Device.Slowdown))
	}
	if err := c.Uplink.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("uplink: %w", err))
	}
	if err := c.Downlink.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("downlink: %w", err))
	}
	if c.QUICAddr == "" {
		c.QUICAddr = "127.0.0.1:0"
	}
	if (c.Objective == scheduler.ObjectiveEnergy || c.Objective == scheduler.ObjectiveWeighted) && c.Power.ComputeW == 0 && c.Power.Radio == (scheduler.Radio{}) {
		errs = append(errs, fmt.Errorf("objective %s without a power model (Power)", c.Objective))
	}
	if c.HTTPAddr != "" && c.API == nil {
		errs = append(errs, errors.New("HTTPAddr without API: the client API needs an access guard (access.New from a clients file, or access.Open() to leave it open on purpose)"))
	}
	if c.MaxAPIConns <= 0 {
		c.MaxAPIConns = 256
	}
	if c.APIHeaderTimeout <= 0 {
		c.APIHeaderTimeout = 5 * time.Second
	}
	if c.APIReadTimeout <= 0 {
		c.APIReadTimeout = 30 * time.Second
	}
	c.APIHeaderTimeout = min(c.APIHeaderTimeout, c.APIReadTimeout)
	if c.Policy == "" {
		c.Policy = "auto"
	}
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.ProfileRuns <= 0 {
		c.ProfileRuns = 7
	}
	if c.Hedge == 0 {
		c.Hedge = DefaultHedge
	}
	if c.Attempts <= 0 {
		c.Attempts = 2
	}
	if c.BanBase <= 0 {
		c.BanBase = 15 * time.Second
	}
	if _, err := scheduler.NewBudget(c.Accuracy.Loss()); err != nil {
		errs = append(errs, err)
	}
	if c.SLO < 0 {
		errs = append(errs, fmt.Errorf("SLO %v is negative", c.SLO))
	}
	if c.MetaInterval <= 0 {
		c.MetaInterval = 250 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	c.Gossip.Name = c.Name
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node: invalid config: %w", err)
	}
	return nil
}
