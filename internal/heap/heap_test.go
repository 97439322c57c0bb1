package heap

import (
	"math/rand/v2"
	"slices"
	"testing"
)

type item struct{ key, seq int }

func TestHeapOrder(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5, 17, 100, 1000} {
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		var h Heap[int, int]
		var want []item
		for i := range n {
			x := item{key: rng.IntN(n/3 + 1), seq: i}
			h.Push(x.key, x.seq)
			want = append(want, x)
		}
		// Stable: equal keys come out in push order.
		slices.SortStableFunc(want, func(a, b item) int { return a.key - b.key })
		if h.Len() != n {
			t.Fatalf("n=%d: Len %d", n, h.Len())
		}
		for i, w := range want {
			if k, v := h.Peek(); k != w.key || *v != w.seq {
				t.Fatalf("n=%d: Peek #%d = %d,%d, want %v", n, i, k, *v, w)
			}
			if k, v := h.Pop(); k != w.key || v != w.seq {
				t.Fatalf("n=%d: Pop #%d = %d,%d, want %v", n, i, k, v, w)
			}
		}
		if h.Len() != 0 {
			t.Fatalf("n=%d: %d left", n, h.Len())
		}
	}
}

func TestHeapInterleaved(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	var h Heap[float64, int]
	type ref struct {
		key float64
		seq int
	}
	var pending []ref
	for i := range 5000 {
		if rng.IntN(3) > 0 || len(pending) == 0 {
			x := ref{key: float64(rng.IntN(100)) / 4, seq: i}
			h.Push(x.key, x.seq)
			pending = append(pending, x)
			continue
		}
		m := 0
		for j := range pending {
			if pending[j].key < pending[m].key {
				m = j
			}
		}
		if k, v := h.Pop(); k != pending[m].key || v != pending[m].seq {
			t.Fatalf("step %d: Pop %v,%v, want %v", i, k, v, pending[m])
		}
		pending = slices.Delete(pending, m, m+1)
	}
}

func TestHeapAllocs(t *testing.T) {
	var h Heap[int64, item]
	for i := range 64 {
		h.Push(int64(i), item{})
	}
	for h.Len() > 0 {
		h.Pop()
	}
	if a := testing.AllocsPerRun(100, func() {
		for i := range 64 {
			h.Push(int64(64-i), item{seq: i})
		}
		for h.Len() > 0 {
			h.Pop()
		}
	}); a != 0 {
		t.Errorf("%v allocations per 64 pushes and pops after warm-up", a)
	}
}
