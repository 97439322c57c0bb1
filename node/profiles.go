package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/partition"
)

// How the edge fetches clouds' profiles: each fetch times out after
// profileFetchTimeout; a failed one is retried in the background after
// profileRetryBase, doubling per failure up to profileRetryMax.
const (
	profileFetchTimeout = 2 * time.Second
	profileRetryBase    = 2 * time.Second
	profileRetryMax     = time.Minute
)

// errProfilePending is remoteProfile's answer for a cloud whose profile is
// not here and not worth waiting for (a failed fetch is backing off, or
// the caller did not want to wait).
var errProfilePending = errors.New("node: cloud profile not fetched yet")

// profileCache holds the clouds' profiles the edge fetched, keyed by peer
// name + "/" + model id, and the fetches under way. A cloud's profile is
// fetched once per gossiped digest, off the request path: the ping loop
// starts fetches for every usable cloud, a request waits only for a
// cloud's first fetch (so a new cloud is planned on at once), and a cloud
// whose fetch failed (a dead or lying address) is left out of plans while
// its retry backs off, never stalling a request again.
type profileCache struct {
	mu      sync.Mutex
	have    map[string]remoteProfile
	fetches map[string]*profileFetch
}

type remoteProfile struct {
	digest  string
	profile *partition.Profile
}

// profileFetch is the latest fetch of one key.
type profileFetch struct {
	digest  string
	done    chan struct{} // closed when it ends
	ended   bool          // done is closed (guarded by profileCache.mu)
	err     error         // set before done closes
	fails   int           // consecutive failures for this digest
	retryAt time.Time     // after a failure: when to try again
}

func newProfileCache() *profileCache {
	return &profileCache{have: make(map[string]remoteProfile), fetches: make(map[string]*profileFetch)}
}

// remoteProfile returns cloud p's profile of m. When it has none for p's
// gossiped digest it starts a fetch (unless a failed one is backing off)
// and, with wait, waits for it if it is p's first (at most
// profileFetchTimeout or ctx); otherwise it returns errProfilePending.
func (n *Node) remoteProfile(ctx context.Context, p Peer, m *Model, wait bool) (*partition.Profile, error) {
	c := n.edge.profiles
	key := p.Name + "/" + m.key()
	c.mu.Lock()
	if rp, ok := c.have[key]; ok && rp.digest == p.Meta.ProfileDigest {
		c.mu.Unlock()
		return rp.profile, nil
	}
	f := c.fetches[key]
	switch {
	case f != nil && f.digest == p.Meta.ProfileDigest && !f.ended:
		// under way
	case f != nil && f.digest == p.Meta.ProfileDigest && time.Now().Before(f.retryAt):
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", errProfilePending, f.err)
	default:
		fails := 0
		if f != nil && f.digest == p.Meta.ProfileDigest {
			fails = f.fails
		}
		f = &profileFetch{digest: p.Meta.ProfileDigest, done: make(chan struct{}), fails: fails}
		c.fetches[key] = f
		n.wg.Add(1)
		go n.fetchProfile(key, p, m, f)
	}
	first := f.fails == 0
	c.mu.Unlock()
	if !wait || !first {
		return nil, errProfilePending
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rp, ok := c.have[key]; ok {
		return rp.profile, nil
	}
	return nil, errProfilePending
}

// fetchProfile fetches p's profile of m over transport and records the
// outcome in f.
func (n *Node) fetchProfile(key string, p Peer, m *Model, f *profileFetch) {
	defer n.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), profileFetchTimeout)
	defer cancel()
	prof, err := n.requestProfile(ctx, p, m)
	c := n.edge.profiles
	c.mu.Lock()
	defer c.mu.Unlock()
	f.err = err
	if err != nil {
		f.fails++
		f.retryAt = time.Now().Add(min(profileRetryBase<<min(f.fails-1, 10), profileRetryMax))
		n.log.Debug("profile fetch failed", "cloud", p.Name, "model", m.ID, "fails", f.fails, "err", err)
	} else {
		f.fails = 0
		c.have[key] = remoteProfile{digest: f.digest, profile: prof}
	}
	f.ended = true
	close(f.done)
}

// requestProfile asks cloud p for its profile of m and checks its shape.
func (n *Node) requestProfile(ctx context.Context, p Peer, m *Model) (*partition.Profile, error) {
	resp, err := n.callPeer(ctx, p, segmentRequest{Op: opProfile, Model: m.ID, Version: m.Version}, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var prof partition.Profile
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&prof); err != nil {
		return nil, fmt.Errorf("node: profile from %s: %w", p.Name, err)
	}
	if len(prof.Nodes) != m.Nodes() || len(prof.Cuts) != m.Nodes()+1 {
		return nil, fmt.Errorf("node: profile from %s has %d nodes, model %s has %d", p.Name, len(prof.Nodes), m.ID, m.Nodes())
	}
	return &prof, nil
}

// prefetchProfiles starts fetching every usable cloud's profiles that are
// missing (the ping loop's tick), so requests find them here.
func (n *Node) prefetchProfiles() {
	for _, p := range n.members.Peers() {
		if !n.usableCloud(p, nil) {
			continue
		}
		for _, m := range n.activeModels() {
			if servesVersion(p.Meta, m) {
				n.remoteProfile(context.Background(), p, m, false)
			}
		}
	}
}
