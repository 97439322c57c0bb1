package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/internal/kern"
)

// worker holds one goroutine's activations, gradients and per-layer scratch
// for up to cap samples, and its own parameter-gradient buffers.
type worker struct {
	id    int
	cap   int
	act   [][]float32 // per value: cap × size
	grad  [][]float32 // per value with needGrad: cap × size
	pgrad [][]float32 // per param
	st    []layerState
	rng   *rand.Rand // dropout masks; reseeded every step
	// bnStats collects (mean, var) per BN layer for the running update.
	bnStats map[int][2][]float32
}

// layerState is per-worker scratch of one layer.
type layerState struct {
	idx []int32
	f   []float32
	f2  []float32
	f3  []float32
}

// pass is what a layer sees during one forward/backward call.
type pass struct {
	n     *Net
	w     *worker
	st    *layerState
	batch int  // samples in this worker's chunk
	train bool // training mode (batch statistics, dropout)
}

type layer interface {
	// forward computes outputs from inputs for p.batch samples.
	forward(p *pass)
	// backward accumulates input and parameter gradients from the output
	// gradient (inputs without needGrad are skipped).
	backward(p *pass)
	// scratch sizes the layer's per-worker state for cap samples.
	scratch(n *Net, cap int) layerState
}

func (n *Net) newWorker(id, cap int) *worker {
	w := &worker{id: id, cap: cap, bnStats: map[int][2][]float32{}}
	w.act = make([][]float32, len(n.values))
	w.grad = make([][]float32, len(n.values))
	for i, v := range n.values {
		w.act[i] = make([]float32, cap*v.size)
		if v.needGrad {
			w.grad[i] = make([]float32, cap*v.size)
		}
	}
	w.pgrad = make([][]float32, len(n.params))
	for i, p := range n.params {
		w.pgrad[i] = make([]float32, len(p.data))
	}
	w.st = make([]layerState, len(n.layers))
	for i, l := range n.layers {
		w.st[i] = l.scratch(n, cap)
	}
	w.rng = rand.New(rand.NewPCG(0, 0))
	return w
}

func ints2(nd *model.Node, name string, def int) ([2]int, error) {
	v := nd.AttrInts(name)
	if v == nil {
		return [2]int{def, def}, nil
	}
	if len(v) != 2 {
		return [2]int{}, fmt.Errorf("%w: node %s: attribute %s = %v, want 2 values (2-D only)", ErrUnsupported, nd, name, v)
	}
	return [2]int{int(v[0]), int(v[1])}, nil
}

func pads4(nd *model.Node) ([4]int, error) {
	if ap := nd.AttrString("auto_pad", "NOTSET"); ap != "NOTSET" && ap != "VALID" {
		return [4]int{}, fmt.Errorf("%w: node %s: auto_pad %q (use explicit pads)", ErrUnsupported, nd, ap)
	}
	v := nd.AttrInts("pads")
	if v == nil {
		return [4]int{}, nil
	}
	if len(v) != 4 {
		return [4]int{}, fmt.Errorf("%w: node %s: pads = %v, want 4 values", ErrUnsupported, nd, v)
	}
	var p [4]int
	for i, x := range v {
		if x < 0 || x > 1<<16 {
			return p, fmt.Errorf("train: node %s: pads = %v", nd, v)
		}
		p[i] = int(x)
	}
	return p, nil
}

// window computes the output size of a sliding window, or an error.
func window(nd *model.Node, in, k, stride, padA, padB, dil int) (int, error) {
	if k <= 0 || stride <= 0 || dil <= 0 {
		return 0, fmt.Errorf("train: node %s: kernel %d, stride %d, dilation %d must be positive", nd, k, stride, dil)
	}
	out := (in+padA+padB-dil*(k-1)-1)/stride + 1
	if out <= 0 {
		return 0, fmt.Errorf("train: node %s: window %d (dilation %d) does not fit input %d with pads %d+%d", nd, k, dil, in, padA, padB)
	}
	return out, nil
}

func (n *Net) compileNode(nd *model.Node) (layer, error) {
	switch nd.Op {
	case "Conv":
		return n.newConv(nd)
	case "Gemm":
		return n.newGemm(nd)
	case "MaxPool", "AveragePool":
		return n.newPool(nd)
	case "GlobalAveragePool":
		x, err := n.act(nd, 0)
		if err != nil {
			return nil, err
		}
		s := n.values[x].shape
		if len(s) != 3 {
			return nil, fmt.Errorf("%w: node %s: input shape %v, want C×H×W", ErrUnsupported, nd, s)
		}
		y, err := n.setOutput(nd, []int{s[0], 1, 1}, x)
		if err != nil {
			return nil, err
		}
		return &gapLayer{x: x, y: y, c: s[0], hw: s[1] * s[2]}, nil
	case "Relu", "Identity", "Flatten", "Clip", "Dropout", "Gelu", "Mul":
		return n.newUnary(nd)
	case "Reshape":
		return n.newReshape(nd)
	case "Transpose":
		return n.newTranspose(nd)
	case "MatMul":
		return n.newMatMul(nd)
	case "LayerNormalization":
		return n.newLayerNorm(nd)
	case "Softmax":
		return n.newSoftmax(nd)
	case "ReduceMean":
		return n.newReduceMean(nd)
	case "Add":
		for i := 0; i < 2; i++ {
			if _, isInit := n.g.Initializers[nd.Input(1-i)]; isInit {
				x, err := n.act(nd, i)
				if err != nil {
					return nil, err
				}
				return n.newBiasAdd(nd, x, nd.Input(1-i))
			}
		}
		a, err := n.act(nd, 0)
		if err != nil {
			return nil, err
		}
		b, err := n.act(nd, 1)
		if err != nil {
			return nil, err
		}
		if fmt.Sprint(n.values[a].shape) != fmt.Sprint(n.values[b].shape) {
			return nil, fmt.Errorf("%w: node %s: Add of shapes %v and %v (only equal shapes are trainable)", ErrUnsupported, nd, n.values[a].shape, n.values[b].shape)
		}
		y, err := n.setOutput(nd, n.values[a].shape, a, b)
		if err != nil {
			return nil, err
		}
		return &addLayer{a: a, b: b, y: y}, nil
	case "BatchNormalization":
		return n.newBN(nd)
	}
	return nil, fmt.Errorf("%w: node %s: op %s cannot be trained (trainable ops: %v)", ErrUnsupported, nd, nd.Op, TrainableOps)
}

// ---- Conv ----

type convLayer struct {
	x, y   int
	w, b   int // param indices; b = -1 without bias
	s      kern.ConvShape
	k      int // rows of the column matrix per group
	ocg    int // output channels per group
	direct bool
}

func (n *Net) newConv(nd *model.Node) (layer, error) {
	x, err := n.act(nd, 0)
	if err != nil {
		return nil, err
	}
	in := n.values[x].shape
	if len(in) != 3 {
		return nil, fmt.Errorf("%w: node %s: input shape %v, want C×H×W (2-D conv)", ErrUnsupported, nd, in)
	}
	wt, ok := n.g.Initializers[nd.Input(1)]
	if !ok {
		return nil, fmt.Errorf("%w: node %s: weight %q must be an initializer", ErrUnsupported, nd, nd.Input(1))
	}
	ws := wt.Shape()
	if len(ws) != 4 {
		return nil, fmt.Errorf("train: node %s: weight %q has shape %v, want 4-D", nd, nd.Input(1), ws)
	}
	group := int(nd.AttrInt("group", 1))
	if group <= 0 || in[0]%group != 0 || ws[0]%group != 0 || ws[1]*group != in[0] {
		return nil, fmt.Errorf("train: node %s: weight shape %v, group %d do not fit input channels %d", nd, ws, group, in[0])
	}
	ks, err := ints2(nd, "kernel_shape", 0)
	if err != nil {
		return nil, err
	}
	if ks[0] == 0 {
		ks = [2]int{ws[2], ws[3]}
	}
	if ks[0] != ws[2] || ks[1] != ws[3] {
		return nil, fmt.Errorf("train: node %s: kernel_shape %v disagrees with weight shape %v", nd, ks, ws)
	}
	st, err := ints2(nd, "strides", 1)
	if err != nil {
		return nil, err
	}
	dl, err := ints2(nd, "dilations", 1)
	if err != nil {
		return nil, err
	}
	pd, err := pads4(nd)
	if err != nil {
		return nil, err
	}
	oh, err := window(nd, in[1], ks[0], st[0], pd[0], pd[2], dl[0])
	if err != nil {
		return nil, err
	}
	ow, err := window(nd, in[2], ks[1], st[1], pd[1], pd[3], dl[1])
	if err != nil {
		return nil, err
	}
	s := kern.ConvShape{InC: in[0], InH: in[1], InW: in[2], OutC: ws[0], OutH: oh, OutW: ow, KH: ks[0], KW: ks[1],
		StrideH: st[0], StrideW: st[1], PadT: pd[0], PadL: pd[1], DilH: dl[0], DilW: dl[1], Group: group}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("train: node %s: %w", nd, err)
	}
	l := &convLayer{x: x, s: s, k: ws[1] * ks[0] * ks[1], ocg: ws[0] / group, b: -1}
	l.direct = ks[0] == 1 && ks[1] == 1 && st == [2]int{1, 1} && pd == [4]int{}
	if l.w, err = n.addParam(nd, nd.Input(1), ws[0]*ws[1]*ws[2]*ws[3]); err != nil {
		return nil, err
	}
	if nd.Input(2) != "" {
		if l.b, err = n.addParam(nd, nd.Input(2), ws[0]); err != nil {
			return nil, err
		}
	}
	l.y, err = n.setOutput(nd, []int{ws[0], oh, ow}, x)
	n.values[l.y].needGrad = true
	return l, err
}

func (l *convLayer) scratch(n *Net, cap int) layerState {
	hw := l.s.OutH * l.s.OutW
	return layerState{f: make([]float32, l.k*hw), f2: make([]float32, l.k*hw)}
}

func (l *convLayer) forward(p *pass) {
	s := l.s
	inLen, hw := s.InC*s.InH*s.InW, s.OutH*s.OutW
	outLen := s.OutC * hw
	w := p.n.params[l.w].data
	icg := s.InC / s.Group
	for i := 0; i < p.batch; i++ {
		x := p.w.act[l.x][i*inLen : (i+1)*inLen]
		y := p.w.act[l.y][i*outLen : (i+1)*outLen]
		for g := 0; g < s.Group; g++ {
			col := p.st.f
			if l.direct {
				col = x[g*icg*hw : (g+1)*icg*hw]
			} else {
				kern.Im2col(s, g, x, col)
			}
			kern.Sgemm(false, false, l.ocg, hw, l.k, w[g*l.ocg*l.k:], l.k, col, hw, y[g*l.ocg*hw:], hw, false)
		}
		if l.b >= 0 {
			bias := p.n.params[l.b].data
			for o := 0; o < s.OutC; o++ {
				bv := bias[o]
				row := y[o*hw : (o+1)*hw]
				for j := range row {
					row[j] += bv
				}
			}
		}
	}
}

func (l *convLayer) backward(p *pass) {
	s := l.s
	inLen, hw := s.InC*s.InH*s.InW, s.OutH*s.OutW
	outLen := s.OutC * hw
	w := p.n.params[l.w].data
	dw := p.w.pgrad[l.w]
	icg := s.InC / s.Group
	needDx := p.n.values[l.x].needGrad
	for i := 0; i < p.batch; i++ {
		x := p.w.act[l.x][i*inLen : (i+1)*inLen]
		dy := p.w.grad[l.y][i*outLen : (i+1)*outLen]
		if l.b >= 0 {
			db := p.w.pgrad[l.b]
			for o := 0; o < s.OutC; o++ {
				var sum float32
				for _, v := range dy[o*hw : (o+1)*hw] {
					sum += v
				}
				db[o] += sum
			}
		}
		for g := 0; g < s.Group; g++ {
			col := p.st.f
			if l.direct {
				col = x[g*icg*hw : (g+1)*icg*hw]
			} else {
				kern.Im2col(s, g, x, col)
			}
			dyg := dy[g*l.ocg*hw:]
			// dW_g += dY_g · colᵀ
			kern.Sgemm(false, true, l.ocg, l.k, hw, dyg, hw, col, hw, dw[g*l.ocg*l.k:], l.k, true)
			if needDx {
				dx := p.w.grad[l.x][i*inLen : (i+1)*inLen]
				if l.direct {
					kern.Sgemm(true, false, l.k, hw, l.ocg, w[g*l.ocg*l.k:], l.k, dyg, hw, dx[g*icg*hw:], hw, true)
				} else {
					dcol := p.st.f2
					kern.Sgemm(true, false, l.k, hw, l.ocg, w[g*l.ocg*l.k:], l.k, dyg, hw, dcol, hw, false)
					kern.Col2im(s, g, dcol, dx)
				}
			}
		}
	}
}

// ---- Gemm ----

type gemmLayer struct {
	x, y        int
	w, b        int
	in, out     int
	transB      bool
	alpha, beta float32
}

func (n *Net) newGemm(nd *model.Node) (layer, error) {
	x, err := n.act(nd, 0)
	if err != nil {
		return nil, err
	}
	if nd.AttrInt("transA", 0) != 0 {
		return nil, fmt.Errorf("%w: node %s: transA=1 (the batch must be the rows of A)", ErrUnsupported, nd)
	}
	xs := n.values[x].shape
	if len(xs) != 1 {
		return nil, fmt.Errorf("%w: node %s: input shape %v per sample, want a vector (Flatten first)", ErrUnsupported, nd, xs)
	}
	wt, ok := n.g.Initializers[nd.Input(1)]
	if !ok {
		return nil, fmt.Errorf("%w: node %s: weight %q must be an initializer", ErrUnsupported, nd, nd.Input(1))
	}
	ws := wt.Shape()
	if len(ws) != 2 {
		return nil, fmt.Errorf("train: node %s: weight %q has shape %v, want 2-D", nd, nd.Input(1), ws)
	}
	l := &gemmLayer{x: x, b: -1, transB: nd.AttrInt("transB", 0) != 0, alpha: nd.AttrFloat("alpha", 1), beta: nd.AttrFloat("beta", 1)}
	l.in = xs[0]
	if l.transB {
		l.out = ws[0]
		if ws[1] != l.in {
			return nil, fmt.Errorf("train: node %s: weight %q has shape %v, want [out %d] (transB=1)", nd, nd.Input(1), ws, l.in)
		}
	} else {
		l.out = ws[1]
		if ws[0] != l.in {
			return nil, fmt.Errorf("train: node %s: weight %q has shape %v, want [%d out] (transB=0)", nd, nd.Input(1), ws, l.in)
		}
	}
	if l.w, err = n.addParam(nd, nd.Input(1), l.in*l.out); err != nil {
		return nil, err
	}
	if nd.Input(2) != "" {
		bt, ok := n.g.Initializers[nd.Input(2)]
		if !ok {
			return nil, fmt.Errorf("%w: node %s: bias %q must be an initializer", ErrUnsupported, nd, nd.Input(2))
		}
		if bt.Shape().TotalSize() != l.out || (bt.Dims() == 2 && bt.Shape()[0] != 1) {
			return nil, fmt.Errorf("%w: node %s: bias %q has shape %v, want [%d] or [1 %d]", ErrUnsupported, nd, nd.Input(2), bt.Shape(), l.out, l.out)
		}
		if l.b, err = n.addParam(nd, nd.Input(2), l.out); err != nil {
			return nil, err
		}
	}
	l.y, err = n.setOutput(nd, []int{l.out}, x)
	n.values[l.y].needGrad = true
	return l, err
}

func (l *gemmLayer) scratch(n *Net, cap int) layerState {
	if l.alpha != 1 {
		return layerState{f: make([]float32, cap*l.out)}
	}
	return layerState{}
}

func (l *gemmLayer) forward(p *pass) {
	x := p.w.act[l.x][:p.batch*l.in]
	y := p.w.act[l.y][:p.batch*l.out]
	w := p.n.params[l.w].data
	ldw := l.out
	if l.transB {
		ldw = l.in
	}
	kern.Sgemm(false, l.transB, p.batch, l.out, l.in, x, l.in, w, ldw, y, l.out, false)
	if l.alpha != 1 {
		for i := range y {
			y[i] *= l.alpha
		}
	}
	if l.b >= 0 {
		bias := p.n.params[l.b].data
		for r := 0; r < p.batch; r++ {
			row := y[r*l.out : (r+1)*l.out]
			for j := range row {
				row[j] += l.beta * bias[j]
			}
		}
	}
}

func (l *gemmLayer) backward(p *pass) {
	x := p.w.act[l.x][:p.batch*l.in]
	dy := p.w.grad[l.y][:p.batch*l.out]
	if l.b >= 0 {
		db := p.w.pgrad[l.b]
		for r := 0; r < p.batch; r++ {
			for j, v := range dy[r*l.out : (r+1)*l.out] {
				db[j] += l.beta * v
			}
		}
	}
	if l.alpha != 1 {
		s := p.st.f[:len(dy)]
		for i, v := range dy {
			s[i] = v * l.alpha
		}
		dy = s
	}
	w := p.n.params[l.w].data
	dw := p.w.pgrad[l.w]
	if l.transB {
		// W is out×in: dW += dYᵀ·X; dX += dY·W
		kern.Sgemm(true, false, l.out, l.in, p.batch, dy, l.out, x, l.in, dw, l.in, true)
		if p.n.values[l.x].needGrad {
			kern.Sgemm(false, false, p.batch, l.in, l.out, dy, l.out, w, l.in, p.w.grad[l.x], l.in, true)
		}
	} else {
		// W is in×out: dW += Xᵀ·dY; dX += dY·Wᵀ
		kern.Sgemm(true, false, l.in, l.out, p.batch, x, l.in, dy, l.out, dw, l.out, true)
		if p.n.values[l.x].needGrad {
			kern.Sgemm(false, true, p.batch, l.in, l.out, dy, l.out, w, l.out, p.w.grad[l.x], l.in, true)
		}
	}
}

// ---- MaxPool / AveragePool ----

type poolLayer struct {
	x, y             int
	max              bool
	includePad       bool
	c, ih, iw        int
	oh, ow           int
	kh, kw, sh, sw   int
	padT, padL       int
	inLen, outLen    int
	countsPrecompute []float32 // averaging divisor per output position
	fast2x2          bool
}

func (n *Net) newPool(nd *model.Node) (layer, error) {
	x, err := n.act(nd, 0)
	if err != nil {
		return nil, err
	}
	in := n.values[x].shape
	if len(in) != 3 {
		return nil, fmt.Errorf("%w: node %s: input shape %v, want C×H×W", ErrUnsupported, nd, in)
	}
	if nd.AttrInt("ceil_mode", 0) != 0 {
		return nil, fmt.Errorf("%w: node %s: ceil_mode=1", ErrUnsupported, nd)
	}
	if d := nd.AttrInts("dilations"); d != nil && (len(d) != 2 || d[0] != 1 || d[1] != 1) {
		return nil, fmt.Errorf("%w: node %s: dilations %v", ErrUnsupported, nd, d)
	}
	if len(nd.Outputs) > 1 && nd.Outputs[1] != "" {
		return nil, fmt.Errorf("%w: node %s: the Indices output", ErrUnsupported, nd)
	}
	ks, err := ints2(nd, "kernel_shape", 0)
	if err != nil {
		return nil, err
	}
	st, err := ints2(nd, "strides", 1)
	if err != nil {
		return nil, err
	}
	pd, err := pads4(nd)
	if err != nil {
		return nil, err
	}
	oh, err := window(nd, in[1], ks[0], st[0], pd[0], pd[2], 1)
	if err != nil {
		return nil, err
	}
	ow, err := window(nd, in[2], ks[1], st[1], pd[1], pd[3], 1)
	if err != nil {
		return nil, err
	}
	l := &poolLayer{x: x, max: nd.Op == "MaxPool", includePad: nd.AttrInt("count_include_pad", 0) != 0,
		c: in[0], ih: in[1], iw: in[2], oh: oh, ow: ow, kh: ks[0], kw: ks[1], sh: st[0], sw: st[1], padT: pd[0], padL: pd[1]}
	l.inLen, l.outLen = in[0]*in[1]*in[2], in[0]*oh*ow
	l.fast2x2 = l.kh == 2 && l.kw == 2 && l.sh == 2 && l.sw == 2 && pd == [4]int{}
	if !l.max {
		l.countsPrecompute = make([]float32, oh*ow)
		for y := 0; y < oh; y++ {
			for xx := 0; xx < ow; xx++ {
				h0, w0 := y*l.sh-l.padT, xx*l.sw-l.padL
				cnt := 0
				for a := h0; a < h0+l.kh; a++ {
					for b := w0; b < w0+l.kw; b++ {
						inside := a >= 0 && a < l.ih && b >= 0 && b < l.iw
						// count_include_pad counts the padded taps (but
						// not taps beyond the padding).
						if inside || (l.includePad && a >= -pd[0] && a < l.ih+pd[2] && b >= -pd[1] && b < l.iw+pd[3]) {
							cnt++
						}
					}
				}
				l.countsPrecompute[y*ow+xx] = 1 / float32(max(cnt, 1))
			}
		}
	}
	l.y, err = n.setOutput(nd, []int{in[0], oh, ow}, x)
	return l, err
}

func (l *poolLayer) scratch(n *Net, cap int) layerState {
	if l.max {
		return layerState{idx: make([]int32, cap*l.outLen)}
	}
	return layerState{}
}

func (l *poolLayer) forward(p *pass) {
	hw := l.ih * l.iw
	for i := 0; i < p.batch; i++ {
		x := p.w.act[l.x][i*l.inLen : (i+1)*l.inLen]
		y := p.w.act[l.y][i*l.outLen : (i+1)*l.outLen]
		var idx []int32
		if l.max {
			idx = p.st.idx[i*l.outLen : (i+1)*l.outLen]
		}
		if l.max && l.fast2x2 {
			l.forward2x2(x, y, idx)
			continue
		}
		for c := 0; c < l.c; c++ {
			plane := x[c*hw : (c+1)*hw]
			for oy := 0; oy < l.oh; oy++ {
				h0 := oy*l.sh - l.padT
				for ox := 0; ox < l.ow; ox++ {
					w0 := ox*l.sw - l.padL
					o := (c*l.oh+oy)*l.ow + ox
					if l.max {
						best, bi := float32(math.Inf(-1)), int32(-1)
						for a := max(h0, 0); a < min(h0+l.kh, l.ih); a++ {
							for b := max(w0, 0); b < min(w0+l.kw, l.iw); b++ {
								if v := plane[a*l.iw+b]; v > best || bi < 0 {
									best, bi = v, int32(c*hw+a*l.iw+b)
								}
							}
						}
						if bi < 0 {
							best = 0
						}
						y[o], idx[o] = best, bi
					} else {
						var sum float32
						for a := max(h0, 0); a < min(h0+l.kh, l.ih); a++ {
							for b := max(w0, 0); b < min(w0+l.kw, l.iw); b++ {
								sum += plane[a*l.iw+b]
							}
						}
						y[o] = sum * l.countsPrecompute[oy*l.ow+ox]
					}
				}
			}
		}
	}
}

// forward2x2 is max pooling with a 2×2 window, stride 2 and no padding.
func (l *poolLayer) forward2x2(x, y []float32, idx []int32) {
	iw, ow := l.iw, l.ow
	for c := 0; c < l.c; c++ {
		base := c * l.ih * iw
		for oy := 0; oy < l.oh; oy++ {
			r0 := base + 2*oy*iw
			r1 := r0 + iw
			yrow := y[(c*l.oh+oy)*ow : (c*l.oh+oy+1)*ow]
			irow := idx[(c*l.oh+oy)*ow : (c*l.oh+oy+1)*ow]
			for ox := range yrow {
				i := r0 + 2*ox
				best, bi := x[i], i
				if v := x[i+1]; v > best {
					best, bi = v, i+1
				}
				if v := x[r1+2*ox]; v > best {
					best, bi = v, r1+2*ox
				}
				if v := x[r1+2*ox+1]; v > best {
					best, bi = v, r1+2*ox+1
				}
				yrow[ox], irow[ox] = best, int32(bi)
			}
		}
	}
}

func (l *poolLayer) backward(p *pass) {
	if !p.n.values[l.x].needGrad {
		return
	}
	hw := l.ih * l.iw
	for i := 0; i < p.batch; i++ {
		dx := p.w.grad[l.x][i*l.inLen : (i+1)*l.inLen]
		dy := p.w.grad[l.y][i*l.outLen : (i+1)*l.outLen]
		if l.max {
			idx := p.st.idx[i*l.outLen : (i+1)*l.outLen]
			for o, j := range idx {
				if j >= 0 {
					dx[j] += dy[o]
				}
			}
			continue
		}
		for c := 0; c < l.c; c++ {
			plane := dx[c*hw : (c+1)*hw]
			for oy := 0; oy < l.oh; oy++ {
				h0 := oy*l.sh - l.padT
				for ox := 0; ox < l.ow; ox++ {
					w0 := ox*l.sw - l.padL
					g := dy[(c*l.oh+oy)*l.ow+ox] * l.countsPrecompute[oy*l.ow+ox]
					for a := max(h0, 0); a < min(h0+l.kh, l.ih); a++ {
						for b := max(w0, 0); b < min(w0+l.kw, l.iw); b++ {
							plane[a*l.iw+b] += g
						}
					}
				}
			}
		}
	}
}

// ---- GlobalAveragePool ----

type gapLayer struct{ x, y, c, hw int }

func (l *gapLayer) scratch(*Net, int) layerState { return layerState{} }

func (l *gapLayer) forward(p *pass) {
	x, y := p.w.act[l.x], p.w.act[l.y]
	inv := 1 / float32(l.hw)
	for i := 0; i < p.batch*l.c; i++ {
		var s float32
		for _, v := range x[i*l.hw : (i+1)*l.hw] {
			s += v
		}
		y[i] = s * inv
	}
}

func (l *gapLayer) backward(p *pass) {
	if !p.n.values[l.x].needGrad {
		return
	}
	dx, dy := p.w.grad[l.x], p.w.grad[l.y]
	inv := 1 / float32(l.hw)
	for i := 0; i < p.batch*l.c; i++ {
		g := dy[i] * inv
		row := dx[i*l.hw : (i+1)*l.hw]
		for j := range row {
			row[j] += g
		}
	}
}

// ---- element-wise unary ops: Relu, Identity, Flatten, Reshape, Clip,
// Dropout, Gelu, Mul by a scalar constant ----

type unaryLayer struct {
	op     string
	x, y   int
	size   int
	lo, hi float32 // Clip bounds
	ratio  float32 // Dropout
	k      float32 // Mul's constant
	tanh   bool    // Gelu's tanh approximation
}

func (n *Net) newUnary(nd *model.Node) (layer, error) {
	x, err := n.act(nd, 0)
	if err != nil {
		return nil, err
	}
	l := &unaryLayer{op: nd.Op, x: x, size: n.values[x].size}
	shape := n.values[x].shape
	switch nd.Op {
	case "Flatten":
		if ax := nd.AttrInt("axis", 1); ax != 1 {
			return nil, fmt.Errorf("%w: node %s: Flatten axis %d, want 1 (batch kept first)", ErrUnsupported, nd, ax)
		}
		shape = []int{l.size}
	case "Clip":
		l.lo, l.hi = float32(math.Inf(-1)), float32(math.Inf(1))
		if _, ok := nd.Attrs["min"]; ok {
			l.lo = nd.AttrFloat("min", l.lo)
		}
		if _, ok := nd.Attrs["max"]; ok {
			l.hi = nd.AttrFloat("max", l.hi)
		}
		for i, dst := range []*float32{&l.lo, &l.hi} {
			if name := nd.Input(1 + i); name != "" {
				d, _, err := n.floatInit(nd, name)
				if err != nil {
					return nil, err
				}
				if len(d) != 1 {
					return nil, fmt.Errorf("train: node %s: Clip bound %q has %d values, want a scalar", nd, name, len(d))
				}
				*dst = d[0]
			}
		}
	case "Gelu":
		switch ap := nd.AttrString("approximate", "none"); ap {
		case "none":
		case "tanh":
			l.tanh = true
		default:
			return nil, fmt.Errorf("%w: node %s: Gelu approximate=%q", ErrUnsupported, nd, ap)
		}
	case "Mul":
		name := nd.Input(1) // Mul(activation, scalar constant)
		d, _, err := n.floatInit(nd, name)
		if err != nil {
			return nil, err
		}
		if len(d) != 1 {
			return nil, fmt.Errorf("%w: node %s: Mul by %q of %d values (only a scalar constant is supported)", ErrUnsupported, nd, name, len(d))
		}
		l.k = d[0]
	case "Dropout":
		l.ratio = nd.AttrFloat("ratio", 0.5)
		if name := nd.Input(1); name != "" {
			d, _, err := n.floatInit(nd, name)
			if err != nil {
				return nil, err
			}
			if len(d) != 1 {
				return nil, fmt.Errorf("train: node %s: ratio %q has %d values, want a scalar", nd, name, len(d))
			}
			l.ratio = d[0]
		}
		if nd.Input(2) != "" {
			return nil, fmt.Errorf("%w: node %s: training_mode input (the trainer decides the mode)", ErrUnsupported, nd)
		}
		if !(l.ratio >= 0 && l.ratio < 1) {
			return nil, fmt.Errorf("train: node %s: dropout ratio %v, want in [0, 1)", nd, l.ratio)
		}
		if len(nd.Outputs) > 1 && nd.Outputs[1] != "" {
			return nil, fmt.Errorf("%w: node %s: the mask output", ErrUnsupported, nd)
		}
	}
	l.y, err = n.setOutput(nd, shape, x)
	return l, err
}

func (l *unaryLayer) scratch(n *Net, cap int) layerState {
	if l.op == "Dropout" || (l.op == "Gelu" && !l.tanh) {
		return layerState{f: make([]float32, cap*l.size)}
	}
	return layerState{}
}

func (l *unaryLayer) forward(p *pass) {
	x := p.w.act[l.x][:p.batch*l.size]
	y := p.w.act[l.y][:p.batch*l.size]
	switch l.op {
	case "Relu":
		for i, v := range x {
			y[i] = max(v, 0)
		}
	case "Clip":
		for i, v := range x {
			y[i] = min(max(v, l.lo), l.hi)
		}
	case "Mul":
		for i, v := range x {
			y[i] = v * l.k
		}
	case "Gelu":
		if !p.train || l.tanh {
			for i, v := range x {
				y[i] = gelu(v, l.tanh)
			}
			return
		}
		// Training keeps gelu'(x) = Φ(x) + x·φ(x) for the backward pass.
		d := p.st.f[:len(x)]
		for i, v := range x {
			xf := float64(v)
			cdf := 0.5 * (1 + math.Erf(xf/math.Sqrt2))
			y[i] = float32(xf * cdf)
			d[i] = float32(cdf + xf*math.Exp(-0.5*xf*xf)/math.Sqrt(2*math.Pi))
		}
	case "Dropout":
		if !p.train || l.ratio == 0 {
			copy(y, x)
			return
		}
		mask := p.st.f[:len(x)]
		scale := 1 / (1 - l.ratio)
		for i, v := range x {
			if p.w.rng.Float32() < l.ratio {
				mask[i] = 0
			} else {
				mask[i] = scale
			}
			y[i] = v * mask[i]
		}
	default: // Identity, Flatten, Reshape
		copy(y, x)
	}
}

func (l *unaryLayer) backward(p *pass) {
	if !p.n.values[l.x].needGrad {
		return
	}
	dx := p.w.grad[l.x][:p.batch*l.size]
	dy := p.w.grad[l.y][:p.batch*l.size]
	switch l.op {
	case "Relu":
		y := p.w.act[l.y]
		for i, g := range dy {
			if y[i] > 0 {
				dx[i] += g
			}
		}
	case "Clip":
		x := p.w.act[l.x]
		for i, g := range dy {
			if x[i] > l.lo && x[i] < l.hi {
				dx[i] += g
			}
		}
	case "Mul":
		for i, g := range dy {
			dx[i] += g * l.k
		}
	case "Gelu":
		if l.tanh {
			x := p.w.act[l.x]
			for i, g := range dy {
				dx[i] += g * geluGrad(x[i])
			}
			return
		}
		d := p.st.f
		for i, g := range dy {
			dx[i] += g * d[i]
		}
	case "Dropout":
		if !p.train || l.ratio == 0 {
			for i, g := range dy {
				dx[i] += g
			}
			return
		}
		mask := p.st.f
		for i, g := range dy {
			dx[i] += g * mask[i]
		}
	default:
		for i, g := range dy {
			dx[i] += g
		}
	}
}

// gelu is x·Φ(x) (Erf form) or its tanh approximation, computed as the
// inference engine does.
func gelu(x float32, tanh bool) float32 {
	xf := float64(x)
	if tanh {
		return float32(0.5 * xf * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(xf+0.044715*xf*xf*xf))))
	}
	return float32(0.5 * xf * (1 + math.Erf(xf/math.Sqrt2)))
}

// geluGrad is the derivative of the tanh approximation of gelu at x (the
// Erf form's derivative is kept by the forward pass).
func geluGrad(x float32) float32 {
	xf := float64(x)
	c := math.Sqrt(2 / math.Pi)
	t := math.Tanh(c * (xf + 0.044715*xf*xf*xf))
	return float32(0.5*(1+t) + 0.5*xf*(1-t*t)*c*(1+3*0.044715*xf*xf))
}

// ---- Add ----

type addLayer struct{ a, b, y int }

func (l *addLayer) scratch(*Net, int) layerState { return layerState{} }

func (l *addLayer) forward(p *pass) {
	size := p.n.values[l.y].size * p.batch
	a, b, y := p.w.act[l.a][:size], p.w.act[l.b][:size], p.w.act[l.y][:size]
	for i := range y {
		y[i] = a[i] + b[i]
	}
}

func (l *addLayer) backward(p *pass) {
	size := p.n.values[l.y].size * p.batch
	dy := p.w.grad[l.y][:size]
	for _, in := range []int{l.a, l.b} {
		if !p.n.values[in].needGrad {
			continue
		}
		dx := p.w.grad[in][:size]
		for i, g := range dy {
			dx[i] += g
		}
	}
}

// ---- BatchNormalization ----

type bnLayer struct {
	idx               int // layer index, keys worker.bnStats
	x, y              int
	scale, bias       int
	meanName, varName string
	c, hw             int
	eps, momentum     float32
}

func (n *Net) newBN(nd *model.Node) (layer, error) {
	x, err := n.act(nd, 0)
	if err != nil {
		return nil, err
	}
	s := n.values[x].shape
	c, hw := s[0], shapeSize(s[1:])
	if len(nd.Inputs) != 5 {
		return nil, fmt.Errorf("train: node %s: %d inputs, want 5 (X, scale, B, mean, var)", nd, len(nd.Inputs))
	}
	if len(nd.Outputs) > 1 {
		for _, o := range nd.Outputs[1:] {
			if o != "" {
				return nil, fmt.Errorf("%w: node %s: training-mode outputs (running mean/var are kept by the trainer)", ErrUnsupported, nd)
			}
		}
	}
	l := &bnLayer{idx: len(n.layers), x: x, c: c, hw: hw, eps: nd.AttrFloat("epsilon", 1e-5), momentum: nd.AttrFloat("momentum", 0.9),
		meanName: nd.Input(3), varName: nd.Input(4)}
	if !(l.eps > 0) || !(l.momentum >= 0 && l.momentum <= 1) {
		return nil, fmt.Errorf("train: node %s: epsilon %v, momentum %v", nd, l.eps, l.momentum)
	}
	if l.scale, err = n.addParam(nd, nd.Input(1), c); err != nil {
		return nil, err
	}
	if l.bias, err = n.addParam(nd, nd.Input(2), c); err != nil {
		return nil, err
	}
	for _, name := range []string{l.meanName, l.varName} {
		if _, done := n.state[name]; done {
			continue
		}
		d, _, err := n.floatInit(nd, name)
		if err != nil {
			return nil, err
		}
		if len(d) != c {
			return nil, fmt.Errorf("train: node %s: %q has %d values, want %d channels", nd, name, len(d), c)
		}
		n.state[name] = d
	}
	l.y, err = n.setOutput(nd, s, x)
	n.values[l.y].needGrad = true
	return l, err
}

func (l *bnLayer) scratch(n *Net, cap int) layerState {
	// f: x̂ (cap·C·HW); f2: 1/σ per channel; f3: batch mean and var.
	return layerState{f: make([]float32, cap*l.c*l.hw), f2: make([]float32, l.c), f3: make([]float32, 2*l.c)}
}

func (l *bnLayer) forward(p *pass) {
	x, y := p.w.act[l.x], p.w.act[l.y]
	gamma, beta := p.n.params[l.scale].data, p.n.params[l.bias].data
	chw := l.c * l.hw
	if !p.train {
		mean, variance := p.n.state[l.meanName], p.n.state[l.varName]
		for c := 0; c < l.c; c++ {
			k := gamma[c] / float32(math.Sqrt(float64(variance[c]+l.eps)))
			b := beta[c] - mean[c]*k
			for i := 0; i < p.batch; i++ {
				off := i*chw + c*l.hw
				for j, v := range x[off : off+l.hw] {
					y[off+j] = v*k + b
				}
			}
		}
		return
	}
	m := float64(p.batch * l.hw)
	xhat := p.st.f
	for c := 0; c < l.c; c++ {
		var sum float64
		for i := 0; i < p.batch; i++ {
			off := i*chw + c*l.hw
			for _, v := range x[off : off+l.hw] {
				sum += float64(v)
			}
		}
		mean := sum / m
		var ss float64
		for i := 0; i < p.batch; i++ {
			off := i*chw + c*l.hw
			for _, v := range x[off : off+l.hw] {
				d := float64(v) - mean
				ss += d * d
			}
		}
		variance := ss / m
		inv := float32(1 / math.Sqrt(variance+float64(l.eps)))
		p.st.f2[c] = inv
		p.st.f3[c], p.st.f3[l.c+c] = float32(mean), float32(variance)
		if m > 1 {
			p.st.f3[l.c+c] = float32(ss / (m - 1)) // unbiased, for the running estimate
		}
		mf := float32(mean)
		for i := 0; i < p.batch; i++ {
			off := i*chw + c*l.hw
			for j, v := range x[off : off+l.hw] {
				h := (v - mf) * inv
				xhat[off+j] = h
				y[off+j] = h*gamma[c] + beta[c]
			}
		}
	}
}

// backward assumes the training-mode forward pass (x̂ and 1/σ saved).
func (l *bnLayer) backward(p *pass) {
	dy := p.w.grad[l.y]
	gamma := p.n.params[l.scale].data
	dg, db := p.w.pgrad[l.scale], p.w.pgrad[l.bias]
	xhat := p.st.f
	chw := l.c * l.hw
	m := float32(p.batch * l.hw)
	needDx := p.n.values[l.x].needGrad
	for c := 0; c < l.c; c++ {
		var sdy, sdyx float32
		for i := 0; i < p.batch; i++ {
			off := i*chw + c*l.hw
			for j, g := range dy[off : off+l.hw] {
				sdy += g
				sdyx += g * xhat[off+j]
			}
		}
		dg[c] += sdyx
		db[c] += sdy
		if !needDx {
			continue
		}
		dx := p.w.grad[l.x]
		k := gamma[c] * p.st.f2[c] / m
		for i := 0; i < p.batch; i++ {
			off := i*chw + c*l.hw
			for j, g := range dy[off : off+l.hw] {
				dx[off+j] += k * (m*g - sdy - xhat[off+j]*sdyx)
			}
		}
	}
}
