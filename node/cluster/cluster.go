package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/transport"
	"github.com/edgesplit/edgesplit/transport/linkem"
	"github.com/edgesplit/edgesplit/transport/pki"
	"github.com/hashicorp/memberlist"
)

// Config describes an in-process cluster on loopback: real
// gossip, real QUIC with mutual TLS from an ephemeral CA, and the edges'
// access links emulated.
type Config struct {
	Edges, Clouds int
	// EdgeServers are nodes of role edge-server (between edges and
	// clouds: three-tier plans), named server-1, server-2, …; Tune sets
	// their device and link.
	EdgeServers int
	// Models are held by every node (shared read-only between them).
	Models []*node.Model
	// EdgeDevice and CloudDevice emulate compute speed.
	EdgeDevice, CloudDevice node.Device
	// Uplink and Downlink are the edges' emulated access link.
	Uplink, Downlink linkem.LinkSettings
	// Policy is the edges' split policy (default auto).
	Policy string
	// Codecs restricts the codec presets (default all).
	Codecs []string
	// GossipKey encrypts gossip when set.
	GossipKey []byte
	// Network, when set, carries the nodes' requests instead of QUIC on
	// loopback (for example a transport.MemNetwork); gossip stays on
	// loopback unless Gossip is set too.
	Network transport.Network
	// Gossip, when set, carries the nodes' gossip on memberlist's in-memory
	// MockNetwork instead of UDP and TCP on loopback.
	Gossip *memberlist.MockNetwork
	// Tune adjusts each node's Config before it starts.
	Tune   func(*node.Config)
	Logger *slog.Logger
}

// Local is a running in-process cluster.
type Local struct {
	CA      *pki.CA
	Edges   []*node.Node
	Clouds  []*node.Node
	Servers []*node.Node // edge servers
	cfg     Config
}

// Start starts the nodes, joins them through the first node and
// waits until every edge sees every cloud.
func Start(ctx context.Context, cfg Config) (*Local, error) {
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		return nil, err
	}
	lc := &Local{CA: ca, cfg: cfg}
	var seed string
	start := func(name string, role node.Role) (*node.Node, error) {
		nc, err := lc.nodeConfig(name, role)
		if err != nil {
			return nil, err
		}
		nd, err := node.New(ctx, nc)
		if err != nil {
			return nil, err
		}
		if seed == "" {
			seed = nd.GossipAddr()
		} else if err := nd.Join(ctx, []string{seed}); err != nil {
			nd.Kill()
			return nil, err
		}
		return nd, nil
	}
	for i := range cfg.Clouds {
		nd, err := start(fmt.Sprintf("cloud-%d", i+1), node.RoleCloud)
		if err != nil {
			lc.Kill()
			return nil, err
		}
		lc.Clouds = append(lc.Clouds, nd)
	}
	for i := range cfg.EdgeServers {
		nd, err := start(fmt.Sprintf("server-%d", i+1), node.RoleEdgeServer)
		if err != nil {
			lc.Kill()
			return nil, err
		}
		lc.Servers = append(lc.Servers, nd)
	}
	for i := range cfg.Edges {
		nd, err := start(fmt.Sprintf("edge-%d", i+1), node.RoleEdge)
		if err != nil {
			lc.Kill()
			return nil, err
		}
		lc.Edges = append(lc.Edges, nd)
	}
	if err := lc.WaitConverged(ctx, 10*time.Second); err != nil {
		lc.Kill()
		return nil, err
	}
	return lc, nil
}

func (lc *Local) nodeConfig(name string, role node.Role) (node.Config, error) {
	id, err := lc.CA.Issue(name, pki.IssueOptions{Role: pki.Role(role)})
	if err != nil {
		return node.Config{}, err
	}
	nc := node.DefaultConfig(name, role)
	nc.Identity = id
	nc.Models = lc.cfg.Models
	nc.Gossip.SecretKey = lc.cfg.GossipKey
	nc.Codecs = lc.cfg.Codecs
	nc.Network = lc.cfg.Network
	if g := lc.cfg.Gossip; g != nil {
		nc.Gossip.Tune = func(mc *memberlist.Config) { mc.Transport = g.NewTransport(name) }
	}
	if lc.cfg.Logger != nil {
		nc.Logger = lc.cfg.Logger
	}
	if role == node.RoleEdge {
		nc.Device = lc.cfg.EdgeDevice
		nc.Uplink, nc.Downlink = lc.cfg.Uplink, lc.cfg.Downlink
		if lc.cfg.Policy != "" {
			nc.Policy = lc.cfg.Policy
		}
	} else {
		nc.Device = lc.cfg.CloudDevice
	}
	if lc.cfg.Tune != nil {
		lc.cfg.Tune(&nc)
	}
	return nc, nil
}

// AddCloud starts one more cloud node and joins it to the cluster.
func (lc *Local) AddCloud(ctx context.Context, name string) (*node.Node, error) {
	nc, err := lc.nodeConfig(name, node.RoleCloud)
	if err != nil {
		return nil, err
	}
	nd, err := node.New(ctx, nc)
	if err != nil {
		return nil, err
	}
	seeds := []string{}
	for _, e := range lc.Edges {
		seeds = append(seeds, e.GossipAddr())
	}
	if err := nd.Join(ctx, seeds); err != nil {
		nd.Kill()
		return nil, err
	}
	lc.Clouds = append(lc.Clouds, nd)
	return nd, nil
}

// WaitConverged waits until every edge sees every running cloud alive.
func (lc *Local) WaitConverged(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ok := true
		for _, e := range lc.Edges {
			alive := map[string]bool{}
			for _, p := range e.Members() {
				alive[p.Name] = p.Alive
			}
			for _, c := range append(slices.Clone(lc.Clouds), lc.Servers...) {
				if !c.Closed() && !alive[c.Name()] {
					ok = false
				}
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("cluster: did not converge in time")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Shutdown stops every node gracefully.
func (lc *Local) Shutdown(ctx context.Context) error {
	var errs []error
	for _, nd := range slices.Concat(lc.Edges, lc.Servers, lc.Clouds) {
		if err := nd.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Kill stops every node abruptly.
func (lc *Local) Kill() {
	for _, nd := range slices.Concat(lc.Edges, lc.Servers, lc.Clouds) {
		nd.Kill()
	}
}
