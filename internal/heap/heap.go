// Package heap is the one priority queue of edgesplit's event loops (the
// simulator's events and cell flows, the link emulator's packets): a
// stable 4-ary min-heap over a slice. Items come out by key, and items of
// equal key in the order they were pushed, so a loop driven by it is
// deterministic. Four children per node make it shallower than a binary
// heap, and a node's children share a cache line or two. Keys compare with
// the language's < (cmp.Ordered, compiled per key type: no indirect calls);
// float keys must not be NaN. Push and Pop allocate nothing once the slice
// has grown to the queue's peak size.
package heap

import "cmp"

type entry[K cmp.Ordered, V any] struct {
	key K
	seq uint64 // push order: the tie-break
	val V
}

func (e *entry[K, V]) before(o *entry[K, V]) bool {
	return e.key < o.key || (e.key == o.key && e.seq < o.seq)
}

// Heap is a min-heap of values V by key K; the zero value is empty and
// ready.
type Heap[K cmp.Ordered, V any] struct {
	items []entry[K, V]
	seq   uint64
}

// Len is the number of items queued.
func (h *Heap[K, V]) Len() int { return len(h.items) }

// Peek returns the first item's key and value (a pointer into the heap,
// valid until the next Push or Pop) without removing it; the heap must not
// be empty.
func (h *Heap[K, V]) Peek() (K, *V) { return h.items[0].key, &h.items[0].val }

// Push adds v with key k.
func (h *Heap[K, V]) Push(k K, v V) {
	h.seq++
	e := entry[K, V]{key: k, seq: h.seq, val: v}
	h.items = append(h.items, e)
	s := h.items
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !e.before(&s[p]) {
			break
		}
		s[i] = s[p]
		i = p
	}
	s[i] = e
}

// Pop removes the first item and returns its key and value; the heap must
// not be empty.
func (h *Heap[K, V]) Pop() (K, V) {
	s := h.items
	top := s[0]
	n := len(s) - 1
	last := s[n]
	var zero entry[K, V]
	s[n] = zero // drop references held by the slot
	s = s[:n]
	h.items = s
	if n > 0 {
		i := 0
		for {
			c := 4*i + 1
			if c >= n {
				break
			}
			m := c
			for j := c + 1; j < min(c+4, n); j++ {
				if s[j].before(&s[m]) {
					m = j
				}
			}
			if !s[m].before(&last) {
				break
			}
			s[i] = s[m]
			i = m
		}
		s[i] = last
	}
	return top.key, top.val
}
