package sim

// event is one scheduled happening. Events are values in a slice-backed
// binary heap, so scheduling allocates nothing once the heap has grown.
type event struct {
	at   int64  // simulated time, ns
	seq  uint64 // tie-break: scheduling order
	kind uint8
	a    int32 // entity (device, cell, server)
	b    int32 // request slot or generation
}

// Event kinds.
const (
	evArrival   uint8 = iota + 1 // a: device
	evUpStart                    // b: request (cell uplink begins)
	evCellDone                   // a: cell, b: generation
	evCloudArr                   // b: request
	evCloudDone                  // a: server, b: batch slot
	evBatchWait                  // a: server
	evTick                       // estimation sample
	evProbeDone                  // b: probe (its answer is back)
)

// eventHeap is a 4-ary min-heap of events by (at, seq): shallower than a
// binary heap, and a node's children share a cache line or two.
type eventHeap struct {
	h   []event
	seq uint64
}

func before(a, b *event) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (q *eventHeap) push(at int64, kind uint8, a, b int32) {
	q.seq++
	e := event{at: at, seq: q.seq, kind: kind, a: a, b: b}
	q.h = append(q.h, e)
	h := q.h
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !before(&e, &h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = e
}

func (q *eventHeap) pop() event {
	h := q.h
	top := h[0]
	n := len(h) - 1
	last := h[n]
	h = h[:n]
	q.h = h
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		end := min(c+4, n)
		for j := c + 1; j < end; j++ {
			if before(&h[j], &h[m]) {
				m = j
			}
		}
		if !before(&h[m], &last) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = last
	return top
}

func (q *eventHeap) len() int { return len(q.h) }
