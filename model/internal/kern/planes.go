package kern

// PlaneWork is an op over independent planes (channels of an image, rows,
// or any equal slices of its input and output) that a [Pool] can split:
// Planes computes planes [p0, p1) of y from x with scratch, one goroutine's
// share. The result must not depend on how the planes are split.
type PlaneWork interface {
	Planes(x, y, scratch []float32, p0, p1 int)
}

// RunPlanes runs w over planes planes, split across the pool by contiguous
// plane ranges when there is enough work (work is the op's cost per plane,
// in multiply-add-sized units; see [MinParallelWork]), else on the caller.
// scratch holds scratchPer float32s per thread (PlaneScratch); each part
// gets its own. A nil, single-threaded or busy pool runs everything on the
// caller with scratch[:scratchPer]. Nothing is allocated.
func (p *Pool) RunPlanes(w PlaneWork, x, y, scratch []float32, planes, work, scratchPer int) {
	threads := p.Threads()
	parts := min(planes, threads*partsPerThread, maxParts)
	if MinParallelWork > 0 {
		parts = min(parts, planes*work/MinParallelWork)
	}
	if parts <= 1 || !p.tryAcquire() {
		w.Planes(x, y, scratch[:scratchPer], 0, planes)
		return
	}
	pt := &p.w.planes
	*pt = planesTask{w: w, x: x, y: y, scratch: scratch, planes: planes, per: scratchPer}
	p.w.run(pt, parts)
	*pt = planesTask{} // drop the references
	p.release()
}

// PlaneScratch is the scratch RunPlanes needs on a pool of threads threads
// for scratchPer float32s per goroutine.
func PlaneScratch(threads, scratchPer int) int { return clampThreads(threads) * scratchPer }

// planesTask is one parallel RunPlanes, owned by the Pool and used under
// its lock.
type planesTask struct {
	w       PlaneWork
	x, y    []float32
	scratch []float32
	planes  int
	per     int
}

var _ Task = (*planesTask)(nil)

func (t *planesTask) Part(i, n, slot int) {
	p0, p1 := t.planes*i/n, t.planes*(i+1)/n
	if p0 < p1 {
		t.w.Planes(t.x, t.y, t.scratch[slot*t.per:(slot+1)*t.per], p0, p1)
	}
}
