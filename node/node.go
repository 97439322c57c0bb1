package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/tensorcodec/calib"
	"github.com/edgesplit/edgesplit/transport"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"gorgonia.org/tensor"
)

// Node is one edgesplit daemon: gossip membership, a QUIC endpoint (over an
// emulated link when configured), the models it holds with their measured
// profiles, and — for edges — the scheduler and client API. It is safe for
// concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	ep      transport.Transport
	link    *linkem.Conn // nil when the link is not emulated on a socket
	members *Membership
	models  map[string]*Model
	// profiles are this node's own measured profiles, device slowdown
	// applied, per model id; digests their short hashes for gossip.
	profiles map[string]*partition.Profile
	dags     map[string]*scheduler.DAG
	codecs   []scheduler.CodecModel
	metrics  *metrics
	httpSrv  *http.Server
	httpLn   net.Listener

	// cloud side
	workers  chan struct{}
	waiting  atomic.Int64
	busy     atomic.Int64
	serviceT scheduler.EWMA // mean segment service time, ns (guarded by mu)

	// edge side
	bans      *scheduler.BanList
	autoMu    sync.Mutex
	autos     map[string]*scheduler.Auto // per model, keeps hysteresis
	remoteMu  sync.Mutex
	remote    map[string]remoteProfile // key: peer name + "/" + model id
	reqID     atomic.Uint64
	access    accessLink                   // what the edge learned of its links (scheduler.EdgeLearner), and probes
	tables    map[string]*codecTable       // per model id
	overheads map[string]*overheadEstimate // per model id

	calibMu  sync.Mutex
	calibs   map[string]*scheduler.Calibration // per model id: own or fetched
	calibTry map[string]time.Time              // per peer/model/digest: next fetch attempt

	mu       sync.Mutex
	closed   bool
	stopMeta chan struct{}
	wg       sync.WaitGroup
}

type remoteProfile struct {
	digest  string
	profile *partition.Profile
}

// New starts a node: it profiles its models on this machine (device slowdown
// applied), measures its codecs, opens its QUIC endpoint (through the
// emulated link when one is configured), starts gossip and, for an edge with
// HTTPAddr, the client API. Join the cluster with Join.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:       cfg,
		log:       cfg.Logger.With("node", cfg.Name, "role", string(cfg.Role)),
		models:    make(map[string]*Model),
		profiles:  make(map[string]*partition.Profile),
		dags:      make(map[string]*scheduler.DAG),
		metrics:   newMetrics(cfg.Registry, cfg.Name),
		workers:   make(chan struct{}, cfg.Workers),
		bans:      scheduler.NewBanList(scheduler.BanConfig{Base: cfg.BanBase}),
		autos:     make(map[string]*scheduler.Auto),
		remote:    make(map[string]remoteProfile),
		tables:    make(map[string]*codecTable),
		overheads: make(map[string]*overheadEstimate),
		calibs:    make(map[string]*scheduler.Calibration),
		calibTry:  make(map[string]time.Time),
		stopMeta:  make(chan struct{}),
	}
	n.serviceT.Alpha = 0.2
	meta := Meta{Role: cfg.Role, Device: cfg.Device.Name, Slowdown: cfg.Device.Slowdown}
	for _, m := range cfg.Models {
		n.models[m.ID] = m
		if m.Calibration != nil {
			if err := m.SetCalibration(m.Calibration); err != nil {
				return nil, err
			}
			n.calibs[m.ID] = m.Calibration
		}
		p, err := MeasureProfile(ctx, m, cfg.Device, cfg.ProfileRuns)
		if err != nil {
			return nil, err
		}
		n.profiles[m.ID] = p
		dag, err := scheduler.NewDAG(m.Graph, p)
		if err != nil {
			return nil, fmt.Errorf("node: model %s: %w", m.ID, err)
		}
		n.dags[m.ID] = dag
		meta.Models = append(meta.Models, ModelRef{ID: m.ID, Version: m.Version, Calibration: m.calibrationDigest()})
	}
	meta.ProfileDigest = profileDigest(n.profiles)
	var err error
	if n.codecs, err = MeasureCodecs(ctx, cfg.Codecs); err != nil {
		return nil, err
	}
	if cfg.Role == RoleEdge {
		for _, m := range cfg.Models {
			if n.tables[m.ID], err = newCodecTable(ctx, m, n.codecs); err != nil {
				return nil, fmt.Errorf("node: codec ratios of model %s: %w", m.ID, err)
			}
			if err := n.calibrateOverhead(ctx, m); err != nil {
				return nil, fmt.Errorf("node: calibrate model %s: %w", m.ID, err)
			}
		}
	}

	tcfg := transport.Config{
		Identity: cfg.Identity,
		Handler:  transport.HandlerFunc(n.serveSegment),
		Logger:   n.log,
		// A segment's payload is one tensorcodec message, which the cloud
		// decodes whole: never accept more than the decoder would.
		MaxBodyBytes:         int64(tensorcodec.DefaultLimits().MaxBytes),
		MaxConcurrentStreams: int64(max(16, 4*cfg.Workers)),
	}
	if cfg.Network != nil {
		if n.ep, err = listenOn(cfg.Network, cfg, tcfg); err != nil {
			return nil, err
		}
	} else {
		pc, err := net.ListenPacket("udp", cfg.QUICAddr)
		if err != nil {
			return nil, fmt.Errorf("node: QUIC socket on %s: %w", cfg.QUICAddr, err)
		}
		var conn net.PacketConn = pc
		if !cfg.Uplink.PassThrough() || !cfg.Downlink.PassThrough() || cfg.Role == RoleEdge {
			// Edges always get an emulator so their link can be changed live.
			n.link, err = linkem.New(pc, cfg.Uplink, cfg.Downlink, linkem.Options{ShapeableDownlink: true})
			if err != nil {
				pc.Close()
				return nil, fmt.Errorf("node: link emulation: %w", err)
			}
			conn = n.link
		}
		n.ep, err = transport.Listen(conn, tcfg)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("node: QUIC endpoint: %w", err)
		}
	}
	meta.QUICAddr = n.ep.Addr().String()

	if cfg.HTTPAddr != "" {
		if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			n.ep.Close()
			return nil, fmt.Errorf("node: client API on %s: %w", cfg.HTTPAddr, err)
		}
		meta.HTTPAddr = n.httpLn.Addr().String()
	}
	if n.members, err = NewMembership(cfg.Gossip, meta); err != nil {
		n.ep.Close()
		if n.httpLn != nil {
			n.httpLn.Close()
		}
		return nil, err
	}
	if n.httpLn != nil {
		// Bounded connections: a slow client cannot hold one open (headers
		// 5 s, a whole request 30 s, an answer 60 s, idle keep-alive 60 s).
		n.httpSrv = &http.Server{Handler: n.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelWarn)}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("client API stopped", "err", err)
			}
		}()
	}
	n.wg.Add(1)
	go n.metaLoop()
	if cfg.Role == RoleEdge {
		n.wg.Add(1)
		go n.pingLoop()
	}
	n.log.Info("node started", "quic", meta.QUICAddr, "gossip", n.members.Addr(), "http", meta.HTTPAddr,
		"device", cfg.Device.Name, "models", len(cfg.Models))
	return n, nil
}

// shapeable is an endpoint whose access link can be emulated and changed
// live (*transport.MemEndpoint).
type shapeable interface {
	SetLink(up, down linkem.LinkSettings) error
}

// listenOn opens the node's endpoint on a given network and applies the
// configured access link to it.
func listenOn(nw transport.Network, cfg Config, tcfg transport.Config) (transport.Transport, error) {
	ep, err := nw.Listen(cfg.QUICAddr, tcfg)
	if err != nil {
		return nil, fmt.Errorf("node: endpoint on %s: %w", cfg.QUICAddr, err)
	}
	if sh, ok := ep.(shapeable); ok {
		err = sh.SetLink(cfg.Uplink, cfg.Downlink)
	} else if !cfg.Uplink.PassThrough() || !cfg.Downlink.PassThrough() {
		err = errors.New("this network's endpoints cannot emulate a link")
	}
	if err != nil {
		ep.Close()
		return nil, fmt.Errorf("node: link emulation: %w", err)
	}
	return ep, nil
}

// MeasureProfile profiles m on this machine (median of runs per node) and
// stretches every latency by the device's slowdown: the profile the device
// would have.
func MeasureProfile(ctx context.Context, m *Model, dev Device, runs int) (*partition.Profile, error) {
	p, err := partition.MeasureSynthetic(ctx, m.Graph, partition.ProfileConfig{Runs: runs, Device: dev.Name})
	if err != nil {
		return nil, fmt.Errorf("node: profile model %s: %w", m.ID, err)
	}
	p.Model = m.ID
	if dev.Slowdown > 1 {
		for i := range p.Nodes {
			p.Nodes[i].Latency = time.Duration(float64(p.Nodes[i].Latency) * dev.Slowdown)
		}
	}
	return p, nil
}

// deviceLatency is the device's profiled latency of model m's node set idx,
// or 0 when the node holds no profile of m.
func (n *Node) deviceLatency(m *Model, idx []int) time.Duration {
	p, ok := n.profiles[m.ID]
	if !ok || len(p.Nodes) != m.Nodes() {
		return 0
	}
	var d time.Duration
	for _, i := range idx {
		d += p.Nodes[i].Latency
	}
	return d
}

// MeasureCodecs measures each named preset's (default: all) ratio and speed
// on a synthetic post-ReLU activation, for the scheduler's codec cost, and
// states what each guarantees (its Fidelity). A model's calibration table,
// measured on real inputs, replaces these figures where it has them.
func MeasureCodecs(ctx context.Context, names []string) ([]scheduler.CodecModel, error) {
	presets := tensorcodec.Presets()
	if len(names) > 0 {
		presets = presets[:0:0]
		for _, name := range names {
			p, err := tensorcodec.ParsePreset(name)
			if err != nil {
				return nil, fmt.Errorf("node: %w", err)
			}
			presets = append(presets, p)
		}
	}
	act := tensorcodec.SyntheticActivation(1, 32, 28, 28)
	var out []scheduler.CodecModel
	for _, p := range presets {
		r, err := tensorcodec.Bench(ctx, p, []*tensor.Dense{act}, tensorcodec.BenchOptions{MinTime: 15 * time.Millisecond})
		if err != nil {
			return nil, fmt.Errorf("node: measure codec %s: %w", p, err)
		}
		out = append(out, scheduler.CodecModel{
			Name: p.String(), Ratio: r.Ratio,
			EncodeBps: r.EncodeMBps * 1e6, DecodeBps: r.DecodeMBps * 1e6,
			MaxRelErr: r.RelRMSE, Fidelity: calib.Fidelity(p),
		})
	}
	return out, nil
}

// Join contacts the cluster through seed gossip addresses.
func (n *Node) Join(ctx context.Context, seeds []string) error {
	_, err := n.members.Join(ctx, seeds)
	return err
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Role returns the node's role.
func (n *Node) Role() Role { return n.cfg.Role }

// GossipAddr is the address other nodes join through.
func (n *Node) GossipAddr() string { return n.members.Addr() }

// QUICAddr is the node's QUIC endpoint address.
func (n *Node) QUICAddr() string { return n.ep.Addr().String() }

// HTTPAddr is the client API address ("" when not serving one).
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// Members returns the node's view of the cluster.
func (n *Node) Members() []Peer { return n.members.Peers() }

// Profile returns the node's own profile of model id.
func (n *Node) Profile(id string) (*partition.Profile, bool) {
	p, ok := n.profiles[id]
	return p, ok
}

// Codecs returns the codec cost table the node measured at start (speeds and
// ratios on a synthetic activation).
func (n *Node) Codecs() []scheduler.CodecModel { return slices.Clone(n.codecs) }

// CodecTable returns an edge's codec costs for model id with the ratio at
// every prefix cut, as measured at start and learned from the boundaries it
// sent since; nil on clouds.
func (n *Node) CodecTable(id string) []scheduler.CodecModel {
	t, ok := n.tables[id]
	if !ok {
		return nil
	}
	return t.snapshot()
}

// SetLink changes the node's emulated access link live (both directions).
func (n *Node) SetLink(up, down linkem.LinkSettings) error {
	if n.link == nil {
		if sh, ok := n.ep.(shapeable); ok {
			return sh.SetLink(up, down)
		}
		return errors.New("node: this node has no emulated link")
	}
	if err := n.link.SetLink(linkem.Uplink, up); err != nil {
		return err
	}
	return n.link.SetLink(linkem.Downlink, down)
}

// metaLoop gossips the node's load when it changes.
func (n *Node) metaLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.MetaInterval)
	defer t.Stop()
	life, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		<-n.stopMeta
		stop()
	}()
	var last Meta
	for {
		select {
		case <-n.stopMeta:
			return
		case <-t.C:
		}
		m := n.members.Meta()
		m.Queue = int(n.waiting.Load())
		workers := float64(cap(n.workers))
		m.Load = float64(n.busy.Load()) / workers
		n.mu.Lock()
		m.ServiceMicros = int64(n.serviceT.Value() / 1e3)
		n.mu.Unlock()
		if m.Queue != last.Queue || m.Load != last.Load || m.ServiceMicros != last.ServiceMicros {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if err := n.members.UpdateMeta(ctx, m); err != nil {
				n.log.Warn("gossip load update failed", "err", err)
			}
			cancel()
			last = m
		}
		alive := map[[2]string]float64{}
		for _, p := range n.members.Peers() {
			alive[[2]string{string(p.Meta.Role), fmt.Sprint(p.Alive)}]++
		}
		n.metrics.clusterNodes.Reset()
		for k, v := range alive {
			n.metrics.clusterNodes.WithLabelValues(k[0], k[1]).Set(v)
		}
		if n.cfg.Role == RoleEdge {
			n.fetchCalibrations(life)
		}
	}
}

// Shutdown leaves the cluster, stops the client API, lets in-flight
// requests finish (until ctx ends) and closes everything. Safe to call more
// than once.
func (n *Node) Shutdown(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.stopMeta)
	n.mu.Unlock()
	var errs []error
	if err := n.members.Leave(500 * time.Millisecond); err != nil {
		errs = append(errs, err)
	}
	if n.httpSrv != nil {
		if err := n.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := n.ep.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := n.members.Shutdown(); err != nil {
		errs = append(errs, err)
	}
	n.wg.Wait()
	return errors.Join(errs...)
}

// Kill stops the node abruptly, as a crash would: no leave message, no
// draining. For failure tests and the demo.
func (n *Node) Kill() {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	close(n.stopMeta)
	n.mu.Unlock()
	n.members.Shutdown()
	if n.httpSrv != nil {
		n.httpSrv.Close()
	}
	n.ep.Close()
	n.wg.Wait()
}
