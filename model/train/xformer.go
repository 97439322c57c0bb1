package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/internal/kern"
)

// This file: the layers of a transformer — Reshape, Transpose, MatMul
// (activation × weight and batched activation × activation),
// LayerNormalization, Softmax inside the graph, ReduceMean over one axis,
// Add of a broadcast weight (biases, position embeddings) and Mul by a
// scalar constant. Gelu lives with the other unary ops in layers.go.

// intInit returns the int64 data of initializer name (shape and axes
// inputs).
func (n *Net) intInit(nd *model.Node, name string) ([]int64, error) {
	t, ok := n.g.Initializers[name]
	if !ok {
		return nil, fmt.Errorf("%w: node %s: %q must be an int64 initializer (shapes computed at run time are not supported)", ErrUnsupported, nd, name)
	}
	switch d := t.Data().(type) {
	case []int64:
		return slices.Clone(d), nil
	case int64:
		return []int64{d}, nil
	}
	return nil, fmt.Errorf("%w: node %s: initializer %q is %v, want int64", ErrUnsupported, nd, name, t.Dtype())
}

// sampleAxis maps an ONNX axis of a tensor whose per-sample shape has rank
// r (full rank r+1, batch first) to the per-sample axis; the batch axis is
// rejected.
func sampleAxis(nd *model.Node, axis int64, r int) (int, error) {
	if axis < 0 {
		axis += int64(r + 1)
	}
	if axis < 1 || axis > int64(r) {
		return 0, fmt.Errorf("%w: node %s: axis %d of a rank-%d tensor (the batch axis 0 cannot be used)", ErrUnsupported, nd, axis, r+1)
	}
	return int(axis) - 1, nil
}

// ---- Reshape ----

// newReshape compiles a Reshape whose target shape is an int64 initializer
// keeping the batch first (its leading entry 0 or -1); the layer is a copy.
func (n *Net) newReshape(nd *model.Node) (layer, error) {
	x, err := n.act(nd, 0)
	if err != nil {
		return nil, err
	}
	if nd.AttrInt("allowzero", 0) != 0 {
		return nil, fmt.Errorf("%w: node %s: allowzero=1", ErrUnsupported, nd)
	}
	spec, err := n.intInit(nd, nd.Input(1))
	if err != nil {
		return nil, err
	}
	in := n.values[x].shape
	if len(spec) == 0 || (spec[0] != 0 && spec[0] != -1) {
		return nil, fmt.Errorf("%w: node %s: shape %v must keep the batch first (leading 0 or -1)", ErrUnsupported, nd, spec)
	}
	out := make([]int, len(spec)-1)
	infer, known := -1, 1
	for i, d := range spec[1:] {
		switch {
		case d == 0 && i < len(in):
			out[i] = in[i]
		case d == -1 && infer < 0 && spec[0] == 0:
			infer = i
			continue
		case d > 0 && d <= 1<<26:
			out[i] = int(d)
		default:
			return nil, fmt.Errorf("%w: node %s: shape %v", ErrUnsupported, nd, spec)
		}
		known *= out[i]
	}
	size := n.values[x].size
	if infer >= 0 {
		if known == 0 || size%known != 0 {
			return nil, fmt.Errorf("train: node %s: cannot reshape %v to %v", nd, in, spec)
		}
		out[infer] = size / known
	}
	if shapeSize(out) != size {
		return nil, fmt.Errorf("%w: node %s: cannot reshape %v (%d values per sample) to %v with the batch kept first", ErrUnsupported, nd, in, size, spec)
	}
	l := &unaryLayer{op: nd.Op, x: x, size: size}
	l.y, err = n.setOutput(nd, out, x)
	return l, err
}

// ---- Transpose ----

// transposeLayer permutes the per-sample axes through a gather table: output
// element j is input element src[j].
type transposeLayer struct {
	x, y int
	src  []int32
}

func (n *Net) newTranspose(nd *model.Node) (layer, error) {
	x, err := n.act(nd, 0)
	if err != nil {
		return nil, err
	}
	in := n.values[x].shape
	perm := nd.AttrInts("perm")
	if len(perm) != len(in)+1 || perm[0] != 0 {
		return nil, fmt.Errorf("%w: node %s: perm %v on a rank-%d tensor; want every axis listed and the batch axis kept first", ErrUnsupported, nd, perm, len(in)+1)
	}
	r := len(in)
	p := make([]int, r)
	seen := make([]bool, r)
	for i, a := range perm[1:] {
		if a < 1 || a > int64(r) || seen[a-1] {
			return nil, fmt.Errorf("train: node %s: perm %v is not a permutation", nd, perm)
		}
		seen[a-1] = true
		p[i] = int(a) - 1
	}
	out := make([]int, r)
	for i, a := range p {
		out[i] = in[a]
	}
	inStride := make([]int, r)
	s := 1
	for i := r - 1; i >= 0; i-- {
		inStride[i] = s
		s *= in[i]
	}
	l := &transposeLayer{x: x, src: make([]int32, shapeSize(in))}
	idx := make([]int, r)
	for j := range l.src {
		off := 0
		for i, a := range p {
			off += idx[i] * inStride[a]
		}
		l.src[j] = int32(off)
		for i := r - 1; i >= 0; i-- {
			if idx[i]++; idx[i] < out[i] {
				break
			}
			idx[i] = 0
		}
	}
	l.y, err = n.setOutput(nd, out, x)
	return l, err
}

func (l *transposeLayer) scratch(*Net, int) layerState { return layerState{} }

func (l *transposeLayer) forward(p *pass) {
	size := len(l.src)
	for i := 0; i < p.batch; i++ {
		x := p.w.act[l.x][i*size : (i+1)*size]
		y := p.w.act[l.y][i*size : (i+1)*size]
		for j, s := range l.src {
			y[j] = x[s]
		}
	}
}

func (l *transposeLayer) backward(p *pass) {
	if !p.n.values[l.x].needGrad {
		return
	}
	size := len(l.src)
	for i := 0; i < p.batch; i++ {
		dx := p.w.grad[l.x][i*size : (i+1)*size]
		dy := p.w.grad[l.y][i*size : (i+1)*size]
		for j, s := range l.src {
			dx[s] += dy[j]
		}
	}
}

// ---- MatMul ----

// matmulLayer is Y = A·B over the last two axes. With a weight (w ≥ 0) B is
// a K×M initializer shared by every row of A; otherwise B is an activation
// with the same leading axes as A and the product is batched over them.
type matmulLayer struct {
	a, b, y  int
	w        int // param index of B, or -1
	batches  int // per sample (activation × activation)
	m, k, nn int
}

func (n *Net) newMatMul(nd *model.Node) (layer, error) {
	a, err := n.act(nd, 0)
	if err != nil {
		return nil, err
	}
	as := n.values[a].shape
	if len(as) < 1 {
		return nil, fmt.Errorf("%w: node %s: A has per-sample shape %v", ErrUnsupported, nd, as)
	}
	l := &matmulLayer{a: a, b: -1, w: -1, k: as[len(as)-1]}
	var out []int
	if wt, ok := n.g.Initializers[nd.Input(1)]; ok {
		ws := wt.Shape()
		if len(ws) != 2 || ws[0] != l.k {
			return nil, fmt.Errorf("%w: node %s: weight %q has shape %v, want [%d M]", ErrUnsupported, nd, nd.Input(1), ws, l.k)
		}
		l.nn = ws[1]
		l.m = shapeSize(as[:len(as)-1]) // rows per sample
		if l.w, err = n.addParam(nd, nd.Input(1), ws[0]*ws[1]); err != nil {
			return nil, err
		}
		out = append(slices.Clone(as[:len(as)-1]), l.nn)
	} else {
		if l.b, err = n.act(nd, 1); err != nil {
			return nil, err
		}
		bs := n.values[l.b].shape
		if len(as) < 2 || len(bs) != len(as) || !slices.Equal(as[:len(as)-2], bs[:len(bs)-2]) || bs[len(bs)-2] != l.k {
			return nil, fmt.Errorf("%w: node %s: MatMul of per-sample shapes %v and %v (want equal leading axes and inner %d; no broadcasting)",
				ErrUnsupported, nd, as, bs, l.k)
		}
		l.m, l.nn = as[len(as)-2], bs[len(bs)-1]
		l.batches = shapeSize(as[:len(as)-2])
		out = append(slices.Clone(as[:len(as)-1]), l.nn)
	}
	ins := []int{a}
	if l.b >= 0 {
		ins = append(ins, l.b)
	}
	l.y, err = n.setOutput(nd, out, ins...)
	if l.w >= 0 {
		n.values[l.y].needGrad = true
	}
	return l, err
}

func (l *matmulLayer) scratch(*Net, int) layerState { return layerState{} }

func (l *matmulLayer) forward(p *pass) {
	a, y := p.w.act[l.a], p.w.act[l.y]
	if l.w >= 0 {
		rows := p.batch * l.m
		kern.Sgemm(false, false, rows, l.nn, l.k, a[:rows*l.k], l.k, p.n.params[l.w].data, l.nn, y[:rows*l.nn], l.nn, false)
		return
	}
	b := p.w.act[l.b]
	sa, sb, sy := l.m*l.k, l.k*l.nn, l.m*l.nn
	for i := 0; i < p.batch*l.batches; i++ {
		kern.Sgemm(false, false, l.m, l.nn, l.k, a[i*sa:(i+1)*sa], l.k, b[i*sb:(i+1)*sb], l.nn, y[i*sy:(i+1)*sy], l.nn, false)
	}
}

func (l *matmulLayer) backward(p *pass) {
	a, dy := p.w.act[l.a], p.w.grad[l.y]
	needA := p.n.values[l.a].needGrad
	if l.w >= 0 {
		rows := p.batch * l.m
		w := p.n.params[l.w].data
		// dW += Aᵀ·dY; dA += dY·Wᵀ
		kern.Sgemm(true, false, l.k, l.nn, rows, a[:rows*l.k], l.k, dy[:rows*l.nn], l.nn, p.w.pgrad[l.w], l.nn, true)
		if needA {
			kern.Sgemm(false, true, rows, l.k, l.nn, dy[:rows*l.nn], l.nn, w, l.nn, p.w.grad[l.a][:rows*l.k], l.k, true)
		}
		return
	}
	b := p.w.act[l.b]
	needB := p.n.values[l.b].needGrad
	sa, sb, sy := l.m*l.k, l.k*l.nn, l.m*l.nn
	for i := 0; i < p.batch*l.batches; i++ {
		g := dy[i*sy : (i+1)*sy]
		if needA {
			kern.Sgemm(false, true, l.m, l.k, l.nn, g, l.nn, b[i*sb:(i+1)*sb], l.nn, p.w.grad[l.a][i*sa:(i+1)*sa], l.k, true)
		}
		if needB {
			kern.Sgemm(true, false, l.k, l.nn, l.m, a[i*sa:(i+1)*sa], l.k, g, l.nn, p.w.grad[l.b][i*sb:(i+1)*sb], l.nn, true)
		}
	}
}

// ---- LayerNormalization (over the last axis) ----

type layerNormLayer struct {
	x, y        int
	scale, bias int // bias = -1 when absent
	d, rows     int // normalised length, rows per sample
	eps         float32
}

// lastAxisInput returns nd's activation input 0 and its per-sample shape,
// after checking that nd's axis attribute (default -1) names its last axis.
func (n *Net) lastAxisInput(nd *model.Node) (int, []int, error) {
	x, err := n.act(nd, 0)
	if err != nil {
		return 0, nil, err
	}
	s := n.values[x].shape
	ax, err := sampleAxis(nd, nd.AttrInt("axis", -1), len(s))
	if err != nil {
		return 0, nil, err
	}
	if ax != len(s)-1 {
		return 0, nil, fmt.Errorf("%w: node %s: %s from axis %d of a rank-%d tensor (only the last axis is trainable)", ErrUnsupported, nd, nd.Op, ax+1, len(s)+1)
	}
	return x, s, nil
}

func (n *Net) newLayerNorm(nd *model.Node) (layer, error) {
	x, s, err := n.lastAxisInput(nd)
	if err != nil {
		return nil, err
	}
	for _, o := range nd.Outputs[1:] {
		if o != "" {
			return nil, fmt.Errorf("%w: node %s: the Mean/InvStdDev outputs", ErrUnsupported, nd)
		}
	}
	l := &layerNormLayer{x: x, d: s[len(s)-1], rows: shapeSize(s[:len(s)-1]), eps: nd.AttrFloat("epsilon", 1e-5), bias: -1}
	if !(l.eps > 0) {
		return nil, fmt.Errorf("train: node %s: epsilon %v", nd, l.eps)
	}
	if l.scale, err = n.addParam(nd, nd.Input(1), l.d); err != nil {
		return nil, err
	}
	if nd.Input(2) != "" {
		if l.bias, err = n.addParam(nd, nd.Input(2), l.d); err != nil {
			return nil, err
		}
	}
	l.y, err = n.setOutput(nd, s, x)
	n.values[l.y].needGrad = true
	return l, err
}

func (l *layerNormLayer) scratch(n *Net, cap int) layerState {
	// f: x̂; f2: 1/σ per row.
	return layerState{f: make([]float32, cap*l.rows*l.d), f2: make([]float32, cap*l.rows)}
}

func (l *layerNormLayer) forward(p *pass) {
	x, y := p.w.act[l.x], p.w.act[l.y]
	gamma := p.n.params[l.scale].data
	var beta []float32
	if l.bias >= 0 {
		beta = p.n.params[l.bias].data
	}
	inv := 1 / float64(l.d)
	for r := 0; r < p.batch*l.rows; r++ {
		row := x[r*l.d : (r+1)*l.d]
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		mean := sum * inv
		var ss float64
		for _, v := range row {
			dv := float64(v) - mean
			ss += dv * dv
		}
		is := float32(1 / math.Sqrt(ss*inv+float64(l.eps)))
		p.st.f2[r] = is
		mf := float32(mean)
		xh := p.st.f[r*l.d : (r+1)*l.d]
		out := y[r*l.d : (r+1)*l.d]
		for j, v := range row {
			h := (v - mf) * is
			xh[j] = h
			out[j] = h * gamma[j]
			if beta != nil {
				out[j] += beta[j]
			}
		}
	}
}

func (l *layerNormLayer) backward(p *pass) {
	dy := p.w.grad[l.y]
	gamma := p.n.params[l.scale].data
	dg := p.w.pgrad[l.scale]
	var db []float32
	if l.bias >= 0 {
		db = p.w.pgrad[l.bias]
	}
	needDx := p.n.values[l.x].needGrad
	invD := 1 / float32(l.d)
	for r := 0; r < p.batch*l.rows; r++ {
		g := dy[r*l.d : (r+1)*l.d]
		xh := p.st.f[r*l.d : (r+1)*l.d]
		var s1, s2 float32 // Σ dx̂, Σ dx̂·x̂
		for j, v := range g {
			dg[j] += v * xh[j]
			if db != nil {
				db[j] += v
			}
			d := v * gamma[j]
			s1 += d
			s2 += d * xh[j]
		}
		if !needDx {
			continue
		}
		dx := p.w.grad[l.x][r*l.d : (r+1)*l.d]
		is := p.st.f2[r]
		for j, v := range g {
			dx[j] += is * (v*gamma[j] - invD*(s1+xh[j]*s2))
		}
	}
}

// ---- Softmax over the last axis, inside the graph ----

type softmaxLayer struct{ x, y, n int }

func (n *Net) newSoftmax(nd *model.Node) (layer, error) {
	x, s, err := n.lastAxisInput(nd)
	if err != nil {
		return nil, err
	}
	l := &softmaxLayer{x: x, n: s[len(s)-1]}
	l.y, err = n.setOutput(nd, s, x)
	return l, err
}

func (l *softmaxLayer) scratch(*Net, int) layerState { return layerState{} }

func (l *softmaxLayer) forward(p *pass) {
	size := p.batch * p.n.values[l.y].size
	x, y := p.w.act[l.x][:size], p.w.act[l.y][:size]
	for r := 0; r < size; r += l.n {
		row, out := x[r:r+l.n], y[r:r+l.n]
		m := row[0]
		for _, v := range row {
			m = max(m, v)
		}
		var s float64
		for j, v := range row {
			e := math.Exp(float64(v - m))
			s += e
			out[j] = float32(e)
		}
		inv := float32(1 / s)
		for j := range out {
			out[j] *= inv
		}
	}
}

func (l *softmaxLayer) backward(p *pass) {
	if !p.n.values[l.x].needGrad {
		return
	}
	size := p.batch * p.n.values[l.y].size
	y, dy, dx := p.w.act[l.y][:size], p.w.grad[l.y][:size], p.w.grad[l.x][:size]
	for r := 0; r < size; r += l.n {
		out, g := y[r:r+l.n], dy[r:r+l.n]
		var dot float32
		for j, v := range out {
			dot += v * g[j]
		}
		for j, v := range out {
			dx[r+j] += v * (g[j] - dot)
		}
	}
}

// ---- ReduceMean over one axis ----

type reduceMeanLayer struct {
	x, y            int
	outer, n, inner int
	inSize, outSize int
}

func (n *Net) newReduceMean(nd *model.Node) (layer, error) {
	x, err := n.act(nd, 0)
	if err != nil {
		return nil, err
	}
	s := n.values[x].shape
	axes := nd.AttrInts("axes")
	if nd.Input(1) != "" {
		if axes, err = n.intInit(nd, nd.Input(1)); err != nil {
			return nil, err
		}
	}
	if len(axes) != 1 {
		return nil, fmt.Errorf("%w: node %s: ReduceMean over axes %v (one non-batch axis is trainable)", ErrUnsupported, nd, axes)
	}
	ax, err := sampleAxis(nd, axes[0], len(s))
	if err != nil {
		return nil, err
	}
	l := &reduceMeanLayer{x: x, outer: shapeSize(s[:ax]), n: s[ax], inner: shapeSize(s[ax+1:]), inSize: shapeSize(s)}
	l.outSize = l.inSize / l.n
	out := slices.Clone(s)
	if nd.AttrInt("keepdims", 1) != 0 {
		out[ax] = 1
	} else {
		out = slices.Delete(out, ax, ax+1)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: node %s: reduces a sample to a scalar", ErrUnsupported, nd)
	}
	l.y, err = n.setOutput(nd, out, x)
	return l, err
}

func (l *reduceMeanLayer) scratch(*Net, int) layerState { return layerState{} }

func (l *reduceMeanLayer) forward(p *pass) {
	inv := 1 / float32(l.n)
	for i := 0; i < p.batch; i++ {
		x := p.w.act[l.x][i*l.inSize : (i+1)*l.inSize]
		y := p.w.act[l.y][i*l.outSize : (i+1)*l.outSize]
		clear(y)
		for o := 0; o < l.outer; o++ {
			dst := y[o*l.inner : (o+1)*l.inner]
			for k := 0; k < l.n; k++ {
				src := x[(o*l.n+k)*l.inner:][:l.inner]
				for j, v := range src {
					dst[j] += v
				}
			}
			for j := range dst {
				dst[j] *= inv
			}
		}
	}
}

func (l *reduceMeanLayer) backward(p *pass) {
	if !p.n.values[l.x].needGrad {
		return
	}
	inv := 1 / float32(l.n)
	for i := 0; i < p.batch; i++ {
		dx := p.w.grad[l.x][i*l.inSize : (i+1)*l.inSize]
		dy := p.w.grad[l.y][i*l.outSize : (i+1)*l.outSize]
		for o := 0; o < l.outer; o++ {
			g := dy[o*l.inner : (o+1)*l.inner]
			for k := 0; k < l.n; k++ {
				dst := dx[(o*l.n+k)*l.inner:][:l.inner]
				for j, v := range g {
					dst[j] += v * inv
				}
			}
		}
	}
}

// ---- Add of a broadcast weight ----

// biasAddLayer is Y = X + W where the weight W (a trainable initializer)
// broadcasts over the trailing axes of X: a bias [M] over tokens×M, a
// position embedding [1, T, D] over T×D. An additive mask (an initializer
// holding −Inf, model.IsAdditiveMask: a causal attention mask [T, T] over
// heads×T×T) is added the same way but stays constant.
type biasAddLayer struct {
	x, y, w int
	period  int       // len(W)
	mask    []float32 // the constant mask; nil for a trainable weight
}

func (n *Net) newBiasAdd(nd *model.Node, x int, wname string) (layer, error) {
	t := n.g.Initializers[wname]
	ws := []int(t.Shape().Clone())
	s := n.values[x].shape
	for len(ws) > 0 && ws[0] == 1 && len(ws) > len(s) {
		ws = ws[1:]
	}
	for len(ws) > 1 && ws[0] == 1 {
		ws = ws[1:]
	}
	if len(ws) > len(s) || !slices.Equal(ws, s[len(s)-len(ws):]) {
		return nil, fmt.Errorf("%w: node %s: Add of a weight %q of shape %v to per-sample shape %v (the weight must match trailing axes)",
			ErrUnsupported, nd, wname, t.Shape(), s)
	}
	l := &biasAddLayer{x: x, period: max(shapeSize(ws), 1)}
	var err error
	if model.IsAdditiveMask(t) {
		if l.mask, _, err = n.floatInit(nd, wname); err != nil {
			return nil, err
		}
	} else if l.w, err = n.addParam(nd, wname, l.period); err != nil {
		return nil, err
	}
	l.y, err = n.setOutput(nd, s, x)
	if l.mask == nil {
		n.values[l.y].needGrad = true
	}
	return l, err
}

func (l *biasAddLayer) scratch(*Net, int) layerState { return layerState{} }

func (l *biasAddLayer) forward(p *pass) {
	size := p.batch * p.n.values[l.y].size
	x, y := p.w.act[l.x][:size], p.w.act[l.y][:size]
	w := l.mask
	if w == nil {
		w = p.n.params[l.w].data
	}
	for r := 0; r < size; r += l.period {
		src, dst := x[r:r+l.period], y[r:r+l.period]
		for j, v := range src {
			dst[j] = v + w[j]
		}
	}
}

func (l *biasAddLayer) backward(p *pass) {
	if !p.n.values[l.y].needGrad {
		return // a mask added to activations no parameter lies before
	}
	size := p.batch * p.n.values[l.y].size
	dy := p.w.grad[l.y][:size]
	var dw []float32
	if l.mask == nil {
		dw = p.w.pgrad[l.w]
	}
	var dx []float32
	if p.n.values[l.x].needGrad {
		dx = p.w.grad[l.x][:size]
	}
	for r := 0; r < size; r += l.period {
		g := dy[r : r+l.period]
		if dw != nil {
			for j, v := range g {
				dw[j] += v
			}
		}
		if dx != nil {
			d := dx[r : r+l.period]
			for j, v := range g {
				d[j] += v
			}
		}
	}
}
