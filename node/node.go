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

	"github.com/edgesplit/edgesplit/node/access"
	"github.com/edgesplit/edgesplit/node/registry"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/transport"
	"github.com/edgesplit/edgesplit/transport/linkem"
)

// Node is one edgesplit daemon: gossip membership, a QUIC endpoint (over an
// emulated link when configured), the models it holds with their measured
// profiles, the segment server every node runs, and — for edges — the
// scheduler and client API. It is safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	ep      transport.Transport
	link    *linkem.Conn // nil when the link is not emulated on a socket
	members *Membership
	// cat is the model versions the node serves with its own measured
	// profiles of them, device slowdown applied (catalog.go).
	cat     catalog
	store   *registry.Store // the node's model store (nil: none; store.go)
	codecs  []scheduler.CodecModel
	metrics *metrics
	httpSrv *http.Server
	httpLn  net.Listener
	metaMu  sync.Mutex // serialises read-modify-write updates of the gossiped meta

	srv   *segmentServer // serves segments, probes, profiles (cloud.go)
	edge  *edgeRole      // what an edge plans and learns with; nil on clouds (edge.go)
	calib calibrations   // own or fetched calibration tables (calibration.go)

	guard       *access.Guard   // who may use the client API (apiaccess.go)
	peerChanges chan peerChange // QUIC addresses of peers that joined or left
	quarantined quarantine      // members whose endpoint is not who they claim (quarantine.go)
	handshakes  reportLimiter   // failed TLS handshakes reported, per peer (quarantine.go)
	reqID       atomic.Uint64   // ids of the node protocol requests this node sends
	statusLog   statusLog       // what the status page shows (statuspage.go)
	rollout     rollouts        // rollouts and canaries this node ran (rollout.go)
	gen         genState        // generation sessions served, LM costs (generate.go)

	mu       sync.Mutex
	closed   bool
	stopMeta chan struct{}
	wg       sync.WaitGroup
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
		cfg:      cfg,
		log:      cfg.Logger.With("node", cfg.Name, "role", string(cfg.Role)),
		cat:      newCatalog(),
		rollout:  rollouts{last: make(map[string]*RolloutStatus), canaries: make(map[string]CanaryReport)},
		store:    cfg.Store,
		metrics:  newMetrics(cfg.Registry, cfg.Name),
		srv:      newSegmentServer(cfg.Workers),
		calib:    calibrations{tables: make(map[string]*scheduler.Calibration), retry: make(map[string]time.Time)},
		stopMeta: make(chan struct{}),
	}
	n.initAPI()
	meta := Meta{Role: cfg.Role, Device: cfg.Device.Name, Slowdown: cfg.Device.Slowdown}
	var err error
	if n.codecs, err = MeasureCodecs(ctx, cfg.Codecs); err != nil {
		return nil, err
	}
	if cfg.Role == RoleEdge || cfg.Role == RoleEdgeServer {
		n.startEdge() // an edge server measures its links to clouds as an edge does
	}
	models, err := n.startModels(cfg.Models)
	if err != nil {
		return nil, err
	}
	for _, m := range models {
		if err := n.load(ctx, m, false); err != nil {
			return nil, err
		}
	}
	meta.Models = n.modelRefs()
	meta.ProfileDigest = profileDigest(n.ownProfiles())
	if err := n.listen(); err != nil {
		return nil, err
	}
	meta.QUICAddr = n.ep.Addr().String()

	if cfg.HTTPAddr != "" {
		if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			n.ep.Close()
			return nil, fmt.Errorf("node: client API on %s: %w", cfg.HTTPAddr, err)
		}
		meta.HTTPAddr = n.httpLn.Addr().String()
	}
	n.peerChanges = make(chan peerChange, 256)
	cfg.Gossip.OnChange = func(p Peer, _ bool) {
		if p.Left {
			// A peer that announced its leave finishes the calls it has
			// (it drains before closing): dropping its connection now
			// would fail them. It closes the connection itself.
			return
		}
		select {
		case n.peerChanges <- peerChange{p.Meta.QUICAddr, p.Since}:
		default: // a flood of changes: the connections die by their idle timeout
		}
	}
	cfg.Gossip.OnRefused = n.refuseGossip
	if n.members, err = NewMembership(cfg.Gossip, meta); err != nil {
		n.ep.Close()
		if n.httpLn != nil {
			n.httpLn.Close()
		}
		return nil, err
	}
	if n.httpLn != nil {
		n.serveAPI()
	}
	n.wg.Add(1)
	go n.forgetLoop()
	n.wg.Add(1)
	go n.metaLoop()
	if n.edge != nil {
		n.wg.Add(1)
		go n.pingLoop()
	}
	n.log.Info("node started", "quic", meta.QUICAddr, "gossip", n.members.Addr(), "http", meta.HTTPAddr,
		"device", cfg.Device.Name, "models", len(meta.Models))
	return n, nil
}

// listen opens the node's endpoint: on cfg.Network when set, else QUIC on
// a UDP socket, through a link emulator when the access link is emulated
// (always on edges, so their link can be changed live).
func (n *Node) listen() error {
	cfg := n.cfg
	tcfg := transport.Config{
		Identity: cfg.Identity,
		Handler:  transport.HandlerFunc(n.serveSegment),
		Logger:   n.log,
		// A segment's payload is one tensorcodec message, which the cloud
		// decodes whole: never accept more than the decoder would.
		MaxBodyBytes:         int64(tensorcodec.DefaultLimits().MaxBytes),
		MaxConcurrentStreams: int64(max(16, 4*cfg.Workers)),
	}
	var err error
	if cfg.Network != nil {
		n.ep, err = listenOn(cfg.Network, cfg, tcfg)
		return err
	}
	pc, err := net.ListenPacket("udp", cfg.QUICAddr)
	if err != nil {
		return fmt.Errorf("node: QUIC socket on %s: %w", cfg.QUICAddr, err)
	}
	var conn net.PacketConn = pc
	if !cfg.Uplink.PassThrough() || !cfg.Downlink.PassThrough() || cfg.Role == RoleEdge {
		n.link, err = linkem.New(pc, cfg.Uplink, cfg.Downlink, linkem.Options{ShapeableDownlink: true})
		if err != nil {
			pc.Close()
			return fmt.Errorf("node: link emulation: %w", err)
		}
		conn = n.link
	}
	n.ep, err = transport.Listen(conn, tcfg)
	if err != nil {
		conn.Close()
		return fmt.Errorf("node: QUIC endpoint: %w", err)
	}
	return nil
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

// metaLoop gossips the node's load when it changes, publishes the cluster
// gauge and, on edges, fetches calibrations peers hold.
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
		n.metaMu.Lock()
		m := n.members.Meta()
		m.Queue, m.Load, m.ServiceMicros = n.srv.load()
		if n.cfg.Role == RoleEdgeServer {
			m.Hops = n.hops()
		}
		if m.Queue != last.Queue || m.Load != last.Load || m.ServiceMicros != last.ServiceMicros || !slices.Equal(m.Hops, last.Hops) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if err := n.members.UpdateMeta(ctx, m); err != nil {
				n.log.Warn("gossip load update failed", "err", err)
			}
			cancel()
			last = m
		}
		n.metaMu.Unlock()
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

// Closed reports whether Shutdown or Kill has been called.
func (n *Node) Closed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
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
	// An edge first stops taking client requests and answers every one it
	// accepted (their offloads still need the cluster); then the node
	// leaves, so edges stop planning on it, and finishes the segments it
	// is running for them.
	if n.httpSrv != nil {
		if err := n.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	// Say it drains first: edges stop planning on it, and keep their
	// connections to it when it leaves, so the calls in flight finish.
	n.metaMu.Lock()
	meta := n.members.Meta()
	meta.Draining = true
	mctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if err := n.members.UpdateMeta(mctx, meta); err != nil {
		n.log.Warn("could not gossip that this node drains", "err", err)
	}
	cancel()
	n.metaMu.Unlock()
	if err := n.members.Leave(500 * time.Millisecond); err != nil {
		// Nodes stopping at the same moment may not hear each other's
		// leave; they will see this one dead instead, so it is no
		// reason to fail the shutdown.
		n.log.Warn("leave not acknowledged; peers will detect this node as dead", "err", err)
	}
	if err := n.ep.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := n.members.Shutdown(); err != nil {
		errs = append(errs, err)
	}
	n.wg.Wait()
	n.gen.closeAll()
	return errors.Join(errs...)
}

// peerChange is a peer that left or came back, at a moment.
type peerChange struct {
	addr string
	at   time.Time
}

// forgetLoop drops the QUIC connection to every peer that left, died or
// (re)joined: a dead peer's connection would stall calls until its idle
// timeout, and a restarted process never answers on its predecessor's.
func (n *Node) forgetLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stopMeta:
			return
		case c := <-n.peerChanges:
			if c.addr != "" {
				n.ep.Forget(c.addr, c.at)
			}
		}
	}
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
	n.gen.closeAll()
}
