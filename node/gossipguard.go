package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/memberlist"
	"golang.org/x/time/rate"
)

// ErrNameTaken is returned by Join when another live member already has
// this node's name: the cluster ignores the newcomer, so running on would
// only look like membership.
var ErrNameTaken = errors.New("node: name already taken by a live member")

// GossipRefusal is gossip traffic this node refused: a peer without the
// cluster's key (or with another one), or a member claiming a name another
// member already has.
type GossipRefusal struct {
	// Reason is "gossip_key" (traffic that does not decrypt with the
	// cluster's keys, or is not encrypted at all) or "name_conflict".
	Reason string
	// Remote is the sender's address as memberlist saw it (host:port);
	// Peer the name claimed, when known.
	Remote, Peer string
	// Detail is memberlist's own words.
	Detail string
}

// gossipGuard turns what memberlist refuses into GossipRefusals: the
// conflicts its ConflictDelegate is told of, and the decryption failures it
// only logs (memberlist has no hook for those, so its log lines are read;
// TestGossipRefusalsAudited fails if a memberlist release rewords them).
// Reports are rate limited, so a flood of garbage packets cannot flood the
// audit trail; what was dropped is counted into the next report.
type gossipGuard struct {
	local   string
	report  func(GossipRefusal)
	logger  *slog.Logger
	limiter *rate.Limiter

	mu         sync.Mutex
	suppressed int
	joining    int    // Joins in progress: a conflict on our name then means we are the newcomer
	taken      string // remote address of the live member with our name met while joining; "" when none
}

func newGossipGuard(local string, report func(GossipRefusal), logger *slog.Logger) *gossipGuard {
	return &gossipGuard{local: local, report: report, logger: logger, limiter: rate.NewLimiter(5, 20)}
}

// refusalPatterns are the memberlist (v0.7) log texts of refused gossip.
var refusalPatterns = []string{
	"no installed keys could decrypt",
	"encryption is configured but remote state is not encrypted",
	"remote state is encrypted and encryption is not configured",
	"decrypt packet failed",
	"unsupported encryption version",
	"payload is too small to decrypt",
}

var fromRe = regexp.MustCompile(`from=(\S+)`)

// Write receives memberlist's log lines: each goes to the logger at debug
// level, and refused traffic is reported.
func (g *gossipGuard) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	g.logger.Debug(line)
	lower := strings.ToLower(line)
	for _, pat := range refusalPatterns {
		if strings.Contains(lower, pat) {
			r := GossipRefusal{Reason: "gossip_key", Detail: line}
			if m := fromRe.FindStringSubmatch(line); m != nil {
				r.Remote = m[1]
			}
			g.emit(r)
			break
		}
	}
	return len(p), nil
}

// NotifyConflict is memberlist's ConflictDelegate: other claims existing's
// name from another address. Memberlist keeps the member it knew. When the
// name is ours and we are joining, we are the newcomer and Join fails with
// ErrNameTaken; when we are running, someone claims our name.
func (g *gossipGuard) NotifyConflict(existing, other *memberlist.Node) {
	r := GossipRefusal{Reason: "name_conflict", Peer: other.Name,
		Remote: net.JoinHostPort(other.Addr.String(), strconv.Itoa(int(other.Port))),
		Detail: fmt.Sprintf("member %q is at %s; another process claims the name from %s", existing.Name,
			net.JoinHostPort(existing.Addr.String(), strconv.Itoa(int(existing.Port))),
			net.JoinHostPort(other.Addr.String(), strconv.Itoa(int(other.Port))))}
	if existing.Name == g.local {
		g.mu.Lock()
		if g.joining > 0 {
			g.taken = r.Remote
			r.Detail = fmt.Sprintf("this node's name %q is already taken by the live member at %s", g.local, r.Remote)
		} else {
			r.Detail = fmt.Sprintf("the process at %s claims this node's name %q", r.Remote, g.local)
		}
		g.mu.Unlock()
	}
	g.emit(r)
}

func (g *gossipGuard) emit(r GossipRefusal) {
	g.mu.Lock()
	if !g.limiter.Allow() {
		g.suppressed++
		g.mu.Unlock()
		return
	}
	n := g.suppressed
	g.suppressed = 0
	g.mu.Unlock()
	if n > 0 {
		r.Detail += fmt.Sprintf(" (and %d refusals not reported, rate limit)", n)
	}
	if g.report != nil {
		g.report(r)
	}
}

// joinStarted and joinEnded bracket a Join; joinEnded returns the address
// of the live member with this node's name met meanwhile ("" when none).
func (g *gossipGuard) joinStarted() {
	g.mu.Lock()
	g.joining++
	g.taken = ""
	g.mu.Unlock()
}

func (g *gossipGuard) joinEnded() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.joining--
	return g.taken
}

// newLogger is the *log.Logger memberlist writes to.
func (g *gossipGuard) newLogger() *log.Logger { return log.New(g, "", 0) }

var _ memberlist.ConflictDelegate = (*gossipGuard)(nil)

// refuseGossip records refused gossip traffic as a security event.
func (n *Node) refuseGossip(r GossipRefusal) {
	n.metrics.refusals.WithLabelValues(r.Reason).Inc()
	n.log.Warn("gossip refused", "reason", r.Reason, "remote", r.Remote, "peer", r.Peer, "detail", r.Detail)
	if a := n.cfg.Audit; a != nil {
		a.LogAttrs(context.Background(), slog.LevelWarn, "refused", slog.String("peer", r.Peer),
			slog.String("remote", r.Remote), slog.String("event", r.Reason), slog.String("reason", r.Detail))
	}
}
