package scheduler

import (
	"math"

	"github.com/edgesplit/edgesplit/partition"
)

// flowNet is a flow network for Dinic's max-flow algorithm, kept as flat
// slices so that it can be reset and reused without allocating.
type flowNet struct {
	head  []int32 // first arc of each vertex, -1 for none
	next  []int32 // next arc of the same tail
	to    []int32
	cap   []float64 // residual capacity
	level []int32
	iter  []int32
	queue []int32
	sc    []float64 // scratch per node for buildDADS
	uniq  []cutKey  // distinct (profile, link) of one plan
	sets  []bool    // edge sets per distinct key and codec
}

type cutKey struct {
	prof *partition.Profile
	link LinkEstimate
}

const flowEps = 1e-9

func (f *flowNet) reset(nv int) {
	f.head = grow(f.head, nv)
	for i := range f.head {
		f.head[i] = -1
	}
	f.level = grow(f.level, nv)
	f.iter = grow(f.iter, nv)
	if cap(f.sc) < nv {
		f.sc = make([]float64, nv)
	}
	f.sc = f.sc[:nv]
	for i := range f.sc {
		f.sc[i] = 0
	}
	f.next, f.to, f.cap = f.next[:0], f.to[:0], f.cap[:0]
}

func grow(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

// arc adds u→v with capacity c and its residual twin v→u with 0.
func (f *flowNet) arc(u, v int, c float64) {
	f.to = append(f.to, int32(v), int32(u))
	f.cap = append(f.cap, c, 0)
	f.next = append(f.next, f.head[u], f.head[v])
	e := int32(len(f.to) - 2)
	f.head[u], f.head[v] = e, e+1
}

func (f *flowNet) bfs(s, t int) bool {
	for i := range f.level {
		f.level[i] = -1
	}
	f.queue = append(f.queue[:0], int32(s))
	f.level[s] = 0
	for qi := 0; qi < len(f.queue); qi++ {
		u := f.queue[qi]
		for e := f.head[u]; e >= 0; e = f.next[e] {
			v := f.to[e]
			if f.cap[e] > flowEps && f.level[v] < 0 {
				f.level[v] = f.level[u] + 1
				f.queue = append(f.queue, v)
			}
		}
	}
	return f.level[t] >= 0
}

// dfs pushes up to push units from u towards t along the level graph and
// returns how much it pushed (a blocking-flow step of Dinic's algorithm).
func (f *flowNet) dfs(u, t int32, push float64) float64 {
	if u == t {
		return push
	}
	done := 0.0
	for ; f.iter[u] >= 0; f.iter[u] = f.next[f.iter[u]] {
		e := f.iter[u]
		v := f.to[e]
		if f.cap[e] > flowEps && f.level[v] == f.level[u]+1 {
			d := f.dfs(v, t, math.Min(push-done, f.cap[e]))
			if d > 0 {
				f.cap[e] -= d
				f.cap[e^1] += d
				done += d
				if push-done <= flowEps {
					return done
				}
			}
		}
	}
	return done
}

// maxflow runs Dinic's algorithm from s to t and returns the flow value.
// Afterwards sourceSide(v) tells the minimal minimum cut.
func (f *flowNet) maxflow(s, t int) float64 {
	total := 0.0
	for f.bfs(s, t) {
		copy(f.iter, f.head)
		for {
			d := f.dfs(int32(s), int32(t), math.Inf(1))
			if d <= flowEps {
				break
			}
			total += d
			if math.IsInf(d, 1) {
				return d
			}
		}
	}
	return total
}

// sourceSide reports whether v was reached from s in the last bfs, which
// after maxflow is the source side of the minimal minimum cut.
func (f *flowNet) sourceSide(v int) bool { return f.level[v] >= 0 }
