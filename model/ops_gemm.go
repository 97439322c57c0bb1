package model

import "github.com/edgesplit/edgesplit/model/internal/kern"

// This file: Gemm and MatMul on kern.Sgemm.

func init() {
	register("Gemm", &opDef{minIn: 2, infer: inferGemm, build: buildGemm})
	register("MatMul", &opDef{minIn: 2, infer: inferMatMul, build: buildMatMul})
}

func gemmDims(c *nodeCtx) (m, n, k int, err error) {
	a, b := c.in[0], c.in[1]
	if a.dt != dtFloat || b.dt != dtFloat {
		return 0, 0, 0, unsupportedf("Gemm on %v", a.dt)
	}
	if len(a.shape) != 2 {
		return 0, 0, 0, rankErr(c, 0, "2-D")
	}
	if len(b.shape) != 2 {
		return 0, 0, 0, rankErr(c, 1, "2-D")
	}
	ta, tb := c.n.AttrInt("transA", 0) != 0, c.n.AttrInt("transB", 0) != 0
	m, k = a.shape[0], a.shape[1]
	if ta {
		m, k = k, m
	}
	kb, n := b.shape[0], b.shape[1]
	if tb {
		kb, n = n, kb
	}
	if k != kb {
		return 0, 0, 0, shapeErrf("A %q %v (transA=%v) and B %q %v (transB=%v) disagree on K", c.n.Inputs[0], a.shape, ta, c.n.Inputs[1], b.shape, tb)
	}
	if cv := c.input(2); cv != nil {
		o, ok := broadcastShape([]int{m, n}, cv.shape)
		if !ok || !equalInts(o, []int{m, n}) {
			return 0, 0, 0, shapeErrf("C %q of shape %v does not broadcast to [%d %d]", c.n.Inputs[2], cv.shape, m, n)
		}
	}
	return m, n, k, nil
}

func inferGemm(c *nodeCtx) error {
	m, n, _, err := gemmDims(c)
	if err != nil {
		return err
	}
	c.setOut(0, dtFloat, []int{m, n})
	return nil
}

type gemmLayer struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	hasC           bool
	cPlan          bcast
	act            kern.Activation
	pool           *kern.Pool
}

func buildGemm(c *nodeCtx) (layer, error) {
	m, n, k, err := gemmDims(c)
	if err != nil {
		return nil, err
	}
	l := &gemmLayer{transA: c.n.AttrInt("transA", 0) != 0, transB: c.n.AttrInt("transB", 0) != 0,
		m: m, n: n, k: k, alpha: c.n.AttrFloat("alpha", 1), beta: c.n.AttrFloat("beta", 1), act: c.act, pool: c.pool}
	if cv := c.input(2); cv != nil && l.beta != 0 {
		l.hasC = true
		l.cPlan = newBcast([]int{m, n}, []int{m, n}, cv.shape)
	}
	return l, nil
}

func (l *gemmLayer) forward(in, out [][]float32, _ []float32) {
	a, b, y := in[0], in[1], out[0]
	lda := l.k
	if l.transA {
		lda = l.m
	}
	ldb := l.n
	if l.transB {
		ldb = l.k
	}
	kern.SgemmOn(l.pool, l.transA, l.transB, l.m, l.n, l.k, a, lda, b, ldb, y, l.n, false)
	if l.alpha != 1 {
		for i := range y {
			y[i] *= l.alpha
		}
	}
	if l.hasC {
		cv, beta := in[2], l.beta
		l.cPlan.walk(func(yo, _, co, n, _, sc int) {
			yr := y[yo : yo+n]
			if sc == 0 {
				v := beta * cv[co]
				for i := range yr {
					yr[i] += v
				}
				return
			}
			cr := cv[co : co+n]
			if beta == 1 {
				for i := range yr {
					yr[i] += cr[i]
				}
				return
			}
			for i := range yr {
				yr[i] += beta * cr[i]
			}
		})
	}
	l.act.Apply(y)
}

// ---- MatMul (numpy semantics) ----

type matmulGeom struct {
	m, n, k  int
	batchA   []int
	batchB   []int
	batchOut []int
	out      []int
}

func matmulDims(c *nodeCtx) (g matmulGeom, err error) {
	a, b := c.in[0], c.in[1]
	if a.dt != dtFloat || b.dt != dtFloat {
		return g, unsupportedf("MatMul on %v", a.dt)
	}
	as, bs := a.shape, b.shape
	if len(as) == 0 || len(bs) == 0 {
		return g, shapeErrf("MatMul inputs must not be scalars (%v, %v)", as, bs)
	}
	a1, b1 := len(as) == 1, len(bs) == 1
	if a1 {
		as = []int{1, as[0]}
	}
	if b1 {
		bs = []int{bs[0], 1}
	}
	g.m, g.k = as[len(as)-2], as[len(as)-1]
	kb := bs[len(bs)-2]
	g.n = bs[len(bs)-1]
	if g.k != kb {
		return g, shapeErrf("A %q %v and B %q %v disagree on K", c.n.Inputs[0], a.shape, c.n.Inputs[1], b.shape)
	}
	g.batchA, g.batchB = as[:len(as)-2], bs[:len(bs)-2]
	bo, ok := broadcastShape(g.batchA, g.batchB)
	if !ok {
		return g, shapeErrf("batch dims of A %q %v and B %q %v do not broadcast", c.n.Inputs[0], a.shape, c.n.Inputs[1], b.shape)
	}
	g.batchOut = bo
	g.out = append([]int{}, bo...)
	if !a1 {
		g.out = append(g.out, g.m)
	}
	if !b1 {
		g.out = append(g.out, g.n)
	}
	return g, nil
}

func inferMatMul(c *nodeCtx) error {
	g, err := matmulDims(c)
	if err != nil {
		return err
	}
	c.setOut(0, dtFloat, g.out)
	return nil
}

type matmulLayer struct {
	m, n, k int
	plan    bcast
}

func buildMatMul(c *nodeCtx) (layer, error) {
	g, err := matmulDims(c)
	if err != nil {
		return nil, err
	}
	return &matmulLayer{m: g.m, n: g.n, k: g.k, plan: newBcast(g.batchOut, g.batchA, g.batchB)}, nil
}

func (l *matmulLayer) forward(in, out [][]float32, _ []float32) {
	a, b, y := in[0], in[1], out[0]
	mk, kn, mn := l.m*l.k, l.k*l.n, l.m*l.n
	l.plan.walk(func(yo, ao, bo, cnt, sa, sb int) {
		for i := 0; i < cnt; i++ {
			ai, bi := (ao+i*sa)*mk, (bo+i*sb)*kn
			kern.Sgemm(false, false, l.m, l.n, l.k, a[ai:], l.k, b[bi:], l.n, y[(yo+i)*mn:], l.n, false)
		}
	})
}
