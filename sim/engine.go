package sim

import "github.com/edgesplit/edgesplit/internal/heap"

// event is one scheduled happening. Events are values in a slice-backed
// heap (internal/heap), so scheduling allocates nothing once the heap has
// grown; events at the same time come out in scheduling order.
type event struct {
	at int64 // simulated time, ns
	evBody
}

// evBody is what an event carries besides its time.
type evBody struct {
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

// eventHeap is the event queue: events by time, then scheduling order.
type eventHeap struct {
	h heap.Heap[int64, evBody]
}

func (q *eventHeap) push(at int64, kind uint8, a, b int32) {
	q.h.Push(at, evBody{kind: kind, a: a, b: b})
}

func (q *eventHeap) pop() event {
	at, body := q.h.Pop()
	return event{at: at, evBody: body}
}

func (q *eventHeap) len() int { return q.h.Len() }
