package heap

import (
	"testing"
	"time"
)

type ev struct {
	at   int64
	seq  uint64
	kind uint8
	a, b int32
}

func (e *ev) Before(o *ev) bool { return e.at < o.at || (e.at == o.at && e.seq < o.seq) }

// refHeap is a hand-specialised 4-ary heap of ev (the simulator's former
// event queue), the reference Heap is timed against.
type refHeap struct{ h []ev }

func (q *refHeap) push(e ev) {
	q.h = append(q.h, e)
	h := q.h
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !e.Before(&h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = e
}

func (q *refHeap) pop() ev {
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
		for j := c + 1; j < min(c+4, n); j++ {
			if h[j].Before(&h[m]) {
				m = j
			}
		}
		if !h[m].Before(&last) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = last
	return top
}

// BenchmarkHeap times push+pop cycles on 1000 pending events and reports
// the time relative to the hand-specialised reference measured in the same
// run (ratio > 1: Heap is slower).
func BenchmarkHeap(b *testing.B) {
	const pending = 1000
	type payload struct {
		kind uint8
		a, b int32
	}
	var h Heap[int64, payload]
	var r refHeap
	var seq uint64
	for i := range pending {
		seq++
		h.Push(int64(i*7919%pending), payload{})
		r.push(ev{at: int64(i * 7919 % pending), seq: seq})
	}
	var ours, ref time.Duration
	i := 0
	for b.Loop() {
		t0 := time.Now()
		for range 1000 {
			at, p := h.Pop()
			h.Push(at+int64(i%pending), p)
			i++
		}
		t1 := time.Now()
		for range 1000 {
			e := r.pop()
			seq++
			r.push(ev{at: e.at + int64(i%pending), seq: seq})
			i++
		}
		ours += t1.Sub(t0)
		ref += time.Since(t1)
	}
	b.ReportMetric(float64(ours)/float64(ref), "x-ref")
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N*1000), "ns/cycle")
}
