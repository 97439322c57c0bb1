package node

import (
	"context"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
)

// DefaultHedge hedges an offload that took twice its prediction.
const DefaultHedge = 2.0

// minHedgeAfter is the earliest a hedge is sent: below it a plan's
// prediction is within scheduling noise, and hedging a loaded machine's
// every request would double its load.
const minHedgeAfter = 50 * time.Millisecond

// hedgeSuspicion is how long a cloud a hedge overtook stays out of new
// plans (scheduler.BanList.Suspect): about twice the time gossip takes to
// declare a crashed node dead (≈ 1 s, DefaultMembershipConfig). Without
// it, every request planned on a cloud that died a moment ago waits the
// hedge delay until gossip or the connection's end says so; a cloud that
// was only slow is planned on again after it, never banned.
const hedgeSuspicion = 2 * time.Second

type hedgeResult struct {
	x   exchange
	p   scheduler.Plan
	err error
}

// callHedged calls p's cloud and, when it has not answered by the hedge
// point (Config.Hedge × the plan's predicted latency, at least 50 ms),
// sends the same boundary to the best other usable cloud too: the first
// answer wins and the other call is cancelled; a primary the backup
// overtook is suspected for hedgeSuspicion. It returns the exchange and
// the plan that answered (the backup's when it won), or the primary's
// error when every call failed.
func (n *Node) callHedged(ctx context.Context, m *Model, p scheduler.Plan, tail []int, b boundary, maxResult int64) (exchange, scheduler.Plan, error) {
	if n.cfg.Hedge < 0 || p.Via != "" {
		// Three-tier plans are not hedged: their second hop has its own
		// fallback (the edge server finishes the piece).
		x, err := n.callCloud(ctx, m, p, tail, b, maxResult)
		return x, p, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the loser's call ends here
	results := make(chan hedgeResult, 2)
	call := func(q scheduler.Plan) {
		x, err := n.callCloud(ctx, m, q, tail, b, maxResult)
		results <- hedgeResult{x, q, err}
	}
	go call(p)
	timer := time.NewTimer(max(time.Duration(n.cfg.Hedge*float64(p.Predicted.Total)), minHedgeAfter))
	defer timer.Stop()
	pending, hedged := 1, false
	var first *hedgeResult
	for {
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				if hedged {
					winner := "primary"
					if r.p.Cloud != p.Cloud {
						winner = "backup"
						// The primary has not answered, or failed.
						n.edge.bans.Suspect(p.Cloud, hedgeSuspicion)
						n.log.Info("hedge overtook a cloud; suspected", "cloud", p.Cloud, "backup", r.p.Cloud, "for", hedgeSuspicion)
					}
					n.metrics.hedges.WithLabelValues(winner).Inc()
				}
				return r.x, r.p, nil
			}
			if first == nil || r.p.Cloud == p.Cloud {
				first = &r
			}
			if pending == 0 {
				return exchange{}, p, first.err
			}
		case <-timer.C:
			backup, ok := n.hedgeTarget(m, p.Cloud)
			if !ok || hedged {
				continue
			}
			hedged = true
			pending++
			q := p
			q.Cloud = backup
			n.log.Debug("hedging a slow offload", "cloud", p.Cloud, "backup", backup, "predicted", p.Predicted.Total)
			go call(q)
		}
	}
}

// hedgeTarget picks the usable cloud other than primary, neither banned
// nor suspected, with the shortest advertised queue for a hedge.
func (n *Node) hedgeTarget(m *Model, primary string) (string, bool) {
	best, found, bestQ := "", false, 0
	for _, p := range n.members.Peers() {
		if p.Name == primary || !n.usableCloud(p, m) || n.edge.bans.Banned(p.Name) || n.edge.bans.Suspected(p.Name) {
			continue
		}
		if !found || p.Meta.Queue < bestQ {
			best, found, bestQ = p.Name, true, p.Meta.Queue
		}
	}
	return best, found
}
