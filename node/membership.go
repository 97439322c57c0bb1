package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MembershipConfig configures gossip membership. Start from
// DefaultMembershipConfig.
type MembershipConfig struct {
	// Name is the node's unique name in the cluster.
	Name string
	// BindAddr and BindPort are where gossip listens (UDP and TCP). Port 0
	// picks a free port.
	BindAddr string
	BindPort int
	// SecretKey, when set (16, 24 or 32 bytes), encrypts all gossip with
	// AES-GCM. Nodes with another key cannot join or read the traffic.
	SecretKey []byte
	// Logger receives memberlist's logs at debug level. Default: discarded.
	Logger *slog.Logger
	// Tune is applied to the memberlist configuration last, for callers
	// that need a knob this struct does not name.
	Tune func(*memberlist.Config)
	// OnChange, when set, is told of every peer that came back (alive
	// again after it was gone: a restarted process) or left (gone: left or
	// declared dead), with Peer.Since the moment it was seen. It runs
	// under memberlist's lock and must not block.
	OnChange func(p Peer, gone bool)
	// OnRefused, when set, is told of gossip this node refused: traffic
	// that does not decrypt with its keys (a process without the cluster's
	// gossip key trying to join) and members claiming a name another live
	// member has. Reports are rate limited (5/s, bursts of 20); it must not
	// block.
	OnRefused func(GossipRefusal)

	// The fields below are memberlist's timing knobs; DefaultMembershipConfig
	// sets values measured to spread a change to 10 nodes in < 1 s on one
	// machine and to detect a crash in ≈ 1 s.
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	SuspicionMult    int
	RetransmitMult   int
	PushPullInterval time.Duration
	GossipInterval   time.Duration
	GossipNodes      int
	// DeadNodeReclaim is how long a member must have been dead before a
	// process at another address may take its name (a crashed node
	// restarted on new ports); until then, and always for a live member,
	// the newcomer is a name conflict. 0 keeps memberlist's default: never
	// (the name is free only once the dead member is reaped).
	DeadNodeReclaim time.Duration
}

// DefaultMembershipConfig returns a configuration tuned for fast convergence
// on a local network: memberlist's DefaultLocalConfig with RetransmitMult 4,
// a 2 s push-pull interval, a 250 ms probe interval and a 100 ms probe timeout
// (see shared facts: DefaultLocalConfig alone sometimes took 5–16 s to spread
// a metadata change), and a dead member's name free for a restarted process
// on other ports 100 ms after its death (memberlist's default keeps it
// until the dead member is reaped, 15 s later: a crashed cloud restarted on
// new ports stayed out of the cluster that long, refused as a conflict).
func DefaultMembershipConfig(name string) MembershipConfig {
	return MembershipConfig{
		Name:             name,
		BindAddr:         "127.0.0.1",
		ProbeInterval:    250 * time.Millisecond,
		ProbeTimeout:     100 * time.Millisecond,
		SuspicionMult:    2,
		RetransmitMult:   4,
		PushPullInterval: 2 * time.Second,
		GossipInterval:   50 * time.Millisecond,
		GossipNodes:      4,
		DeadNodeReclaim:  100 * time.Millisecond,
	}
}

// Peer is one cluster member as this node sees it.
type Peer struct {
	Name  string
	Addr  string // gossip address host:port
	Meta  Meta
	Alive bool
	Since time.Time // when this node last saw it change
	// Joined is when this node last saw it join: first contact, or alive
	// again after it left or was declared dead (a restarted process).
	Joined time.Time
	// Left is set on a peer that is gone after it announced that it
	// drains (Meta.Draining: a graceful shutdown, finishing what it runs),
	// not because it was declared dead. (memberlist does not tell a leave
	// from a death in its callbacks, so the node says it in its metadata.)
	Left bool
}

// peerEvent says what happened to a peer.
type peerEvent uint8

// The membership events.
const (
	peerJoined peerEvent = iota + 1
	peerUpdated
	peerLeft // left or declared dead
)

func (k peerEvent) String() string {
	switch k {
	case peerJoined:
		return "joined"
	case peerUpdated:
		return "updated"
	case peerLeft:
		return "left"
	}
	return fmt.Sprintf("peerEvent(%d)", uint8(k))
}

// Membership is a node's gossip membership: memberlist underneath, a
// race-free copy of the view (memberlist's own Node structs are updated
// under its lock, so reading them is a data race), and the local metadata.
// Its methods are safe for concurrent use.
type Membership struct {
	ml     *memberlist.Memberlist
	cfg    MembershipConfig
	keys   *memberlist.Keyring
	logger *slog.Logger
	guard  *gossipGuard

	mu       sync.Mutex
	meta     Meta
	metaB    []byte
	view     map[string]Peer
	reap     time.Duration // how long a gone peer stays in the view (memberlist's GossipToTheDeadTime)
	shutdown bool
	rotation keyRotation // guarded by mu (gossipkey.go)
}

// NewMembership starts gossip for the local node with metadata meta. Call
// Join to contact the cluster and Shutdown when done.
func NewMembership(cfg MembershipConfig, meta Meta) (*Membership, error) {
	if cfg.Name == "" {
		return nil, errors.New("node: membership needs a node name")
	}
	metaB, err := meta.Encode()
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := &Membership{cfg: cfg, logger: logger, meta: meta, metaB: metaB, view: make(map[string]Peer)}
	mc := memberlist.DefaultLocalConfig()
	mc.Name = cfg.Name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertisePort = cfg.BindPort
	if cfg.ProbeInterval > 0 {
		mc.ProbeInterval = cfg.ProbeInterval
	}
	if cfg.ProbeTimeout > 0 {
		mc.ProbeTimeout = cfg.ProbeTimeout
	}
	if cfg.SuspicionMult > 0 {
		mc.SuspicionMult = cfg.SuspicionMult
	}
	if cfg.RetransmitMult > 0 {
		mc.RetransmitMult = cfg.RetransmitMult
	}
	if cfg.PushPullInterval > 0 {
		mc.PushPullInterval = cfg.PushPullInterval
	}
	if cfg.GossipInterval > 0 {
		mc.GossipInterval = cfg.GossipInterval
	}
	if cfg.GossipNodes > 0 {
		mc.GossipNodes = cfg.GossipNodes
	}
	if cfg.DeadNodeReclaim > 0 {
		mc.DeadNodeReclaimTime = cfg.DeadNodeReclaim
	}
	if len(cfg.SecretKey) > 0 {
		kr, err := memberlist.NewKeyring(nil, cfg.SecretKey)
		if err != nil {
			return nil, fmt.Errorf("node: gossip key: %w", err)
		}
		mc.Keyring = kr
		m.keys = kr
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	m.guard = newGossipGuard(cfg.Name, cfg.OnRefused, logger)
	mc.Logger = m.guard.newLogger()
	mc.Conflict = m.guard
	mc.Delegate = (*metaDelegate)(m)
	mc.Events = (*eventDelegate)(m)
	if cfg.Tune != nil {
		cfg.Tune(mc)
	}
	m.reap = max(mc.GossipToTheDeadTime, time.Second)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("node: start gossip on %s:%d: %w", cfg.BindAddr, cfg.BindPort, err)
	}
	m.ml = ml
	return m, nil
}

// Addr returns the gossip address other nodes join through.
func (m *Membership) Addr() string {
	n := m.ml.LocalNode()
	return n.Address()
}

// Join contacts seed addresses (host:port). It returns the number of seeds
// reached; an error only when none was.
func (m *Membership) Join(ctx context.Context, seeds []string) (int, error) {
	if len(seeds) == 0 {
		return 0, nil
	}
	type result struct {
		n   int
		err error
	}
	ch := make(chan result, 1)
	m.guard.joinStarted()
	go func() {
		n, err := m.ml.Join(seeds)
		ch <- result{n, err}
	}()
	select {
	case r := <-ch:
		if addr := m.guard.joinEnded(); addr != "" {
			return 0, fmt.Errorf("%w: %q is the member at %s; give this node another name", ErrNameTaken, m.cfg.Name, addr)
		}
		if r.n == 0 && r.err != nil {
			return 0, fmt.Errorf("node: join %v: no seed accepted this node (check the addresses, and that this node has the cluster's gossip key): %w", seeds, r.err)
		}
		return r.n, nil
	case <-ctx.Done():
		go func() { <-ch; m.guard.joinEnded() }()
		return 0, fmt.Errorf("node: join %v: %w", seeds, ctx.Err())
	}
}

// Meta returns the local node's current metadata.
func (m *Membership) Meta() Meta {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.meta
}

// UpdateMeta replaces the local metadata and gossips it. It blocks until the
// change has been sent to some peers or ctx ends (memberlist's UpdateNode).
func (m *Membership) UpdateMeta(ctx context.Context, meta Meta) error {
	m.mu.Lock()
	meta.Seq = m.meta.Seq + 1
	b, err := meta.Encode()
	if err != nil {
		m.mu.Unlock()
		return err
	}
	m.meta, m.metaB = meta, b
	m.mu.Unlock()
	timeout := time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if err := m.ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("node: gossip metadata: %w", err)
	}
	return nil
}

// Peers returns a copy of the view: every other node seen, alive or gone
// for less than memberlist's GossipToTheDeadTime (a gone peer is then
// reaped, as memberlist reaps it), sorted by name.
func (m *Membership) Peers() []Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Peer, 0, len(m.view))
	now := time.Now()
	for name, p := range m.view {
		if !p.Alive && now.Sub(p.Since) > m.reap {
			delete(m.view, name)
			continue
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Peer) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Peer returns the named peer.
func (m *Membership) Peer(name string) (Peer, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.view[name]
	return p, ok
}

// Leave announces departure and waits up to timeout for it to spread.
func (m *Membership) Leave(timeout time.Duration) error {
	return m.ml.Leave(timeout)
}

// Shutdown stops gossip without announcing. Safe to call more than once.
func (m *Membership) Shutdown() error {
	m.mu.Lock()
	if m.shutdown {
		m.mu.Unlock()
		return nil
	}
	m.shutdown = true
	m.rotation.stop()
	m.mu.Unlock()
	return m.ml.Shutdown()
}

// observe records a memberlist node event; it runs under memberlist's lock,
// so it copies what it needs and never blocks.
func (m *Membership) observe(kind peerEvent, n *memberlist.Node) {
	if n.Name == m.cfg.Name {
		return
	}
	meta, err := DecodeMeta(n.Meta)
	if err != nil {
		m.logger.Warn("ignoring peer with bad metadata", "peer", n.Name, "err", err)
		return
	}
	now := time.Now()
	p := Peer{Name: n.Name, Addr: n.Address(), Meta: meta, Alive: kind != peerLeft, Since: now,
		Left: kind == peerLeft && meta.Draining}
	m.mu.Lock()
	old, known := m.view[n.Name]
	if known && kind != peerJoined {
		p.Joined = old.Joined
	} else {
		p.Joined = now
	}
	m.view[n.Name] = p
	m.mu.Unlock()
	if f := m.cfg.OnChange; f != nil && (kind == peerLeft || kind == peerJoined && known) {
		f(p, kind == peerLeft)
	}
}

type metaDelegate Membership

func (d *metaDelegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.metaB) > limit {
		return nil // cannot happen: Encode enforces MaxMetaSize
	}
	return slices.Clone(d.metaB)
}
func (d *metaDelegate) NotifyMsg([]byte)                           {}
func (d *metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *metaDelegate) LocalState(join bool) []byte                { return nil }
func (d *metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

type eventDelegate Membership

func (d *eventDelegate) NotifyJoin(n *memberlist.Node) {
	(*Membership)(d).observe(peerJoined, n)
}
func (d *eventDelegate) NotifyLeave(n *memberlist.Node) {
	(*Membership)(d).observe(peerLeft, n)
}
func (d *eventDelegate) NotifyUpdate(n *memberlist.Node) {
	(*Membership)(d).observe(peerUpdated, n)
}

var (
	_ memberlist.Delegate      = (*metaDelegate)(nil)
	_ memberlist.EventDelegate = (*eventDelegate)(nil)
)
