package kern

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// refConv is the straightforward direct convolution, accumulated in float64.
func refConv(s ConvShape, x, w, bias []float32, act Activation) []float32 {
	y := make([]float32, s.outLen())
	icg, ocg := s.InC/s.Group, s.OutC/s.Group
	for oc := 0; oc < s.OutC; oc++ {
		g := oc / ocg
		for oh := 0; oh < s.OutH; oh++ {
			for ow := 0; ow < s.OutW; ow++ {
				var sum float64
				if bias != nil {
					sum = float64(bias[oc])
				}
				for ic := 0; ic < icg; ic++ {
					for kh := 0; kh < s.KH; kh++ {
						ih := oh*s.StrideH - s.PadT + kh*s.DilH
						if ih < 0 || ih >= s.InH {
							continue
						}
						for kw := 0; kw < s.KW; kw++ {
							iw := ow*s.StrideW - s.PadL + kw*s.DilW
							if iw < 0 || iw >= s.InW {
								continue
							}
							sum += float64(x[((g*icg+ic)*s.InH+ih)*s.InW+iw]) *
								float64(w[((oc*icg+ic)*s.KH+kh)*s.KW+kw])
						}
					}
				}
				y[(oc*s.OutH+oh)*s.OutW+ow] = float32(sum)
			}
		}
	}
	refAct(act, y)
	return y
}

// refAct is the scalar definition of each activation, in float64.
func refAct(a Activation, x []float32) {
	for i, v32 := range x {
		v := float64(v32)
		al, be := float64(a.Alpha), float64(a.Beta)
		switch a.Kind {
		case ActRelu:
			v = math.Max(0, v)
		case ActClip:
			v = math.Min(be, math.Max(al, v))
		case ActLeakyRelu:
			if v < 0 {
				v *= al
			}
		case ActHardSigmoid:
			v = math.Max(0, math.Min(1, al*v+be))
		case ActHardSwish:
			v = v * math.Max(0, math.Min(1, v/6+0.5))
		case ActSigmoid:
			v = 1 / (1 + math.Exp(-v))
		case ActTanh:
			v = math.Tanh(v)
		}
		x[i] = float32(v)
	}
}

// refGemm is the triple-loop GEMM, accumulated in float64.
func refGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			if acc {
				s = float64(c[i*ldc+j])
			}
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			c[i*ldc+j] = float32(s)
		}
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = r.Float32()*2 - 1
	}
	return x
}

func nanSlice(n int) []float32 {
	x := make([]float32, n)
	nan := float32(math.NaN())
	for i := range x {
		x[i] = nan
	}
	return x
}

// closeEnough compares got with want within an absolute tolerance scaled by
// the reduction length (sums of k products of values in [-1, 1]).
func closeEnough(t *testing.T, name string, got, want []float32, k int) {
	t.Helper()
	tol := 1e-5 * math.Sqrt(float64(k)+1) * 4
	bad := 0
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if !(d <= tol*math.Max(1, math.Abs(float64(want[i])))) {
			if bad < 5 {
				t.Errorf("%s: [%d] got %v want %v (tol %.2g)", name, i, got[i], want[i], tol)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements differ", name, bad, len(want))
	}
}

// outDim is ONNX's output size for a padded convolution.
func outDim(in, k, stride, padBegin, padEnd, dil int) int {
	return (in+padBegin+padEnd-dil*(k-1)-1)/stride + 1
}

type convCase struct {
	name                   string
	inC, inH, inW          int
	outC, kh, kw           int
	sh, sw, pt, pl, pb, pr int
	dh, dw, group          int
}

func (c convCase) shape() ConvShape {
	return ConvShape{
		InC: c.inC, InH: c.inH, InW: c.inW, OutC: c.outC,
		OutH: outDim(c.inH, c.kh, c.sh, c.pt, c.pb, c.dh),
		OutW: outDim(c.inW, c.kw, c.sw, c.pl, c.pr, c.dw),
		KH:   c.kh, KW: c.kw, StrideH: c.sh, StrideW: c.sw, PadT: c.pt, PadL: c.pl,
		DilH: c.dh, DilW: c.dw, Group: c.group,
	}
}

var convCases = []convCase{
	// 1×1 stride 1 (direct GEMM path).
	{"pw1", 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"pw_small", 3, 5, 7, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"pw_144_24", 144, 9, 11, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"pw_24_144", 24, 13, 13, 144, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"pw_odd", 37, 7, 7, 53, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"pw_bigk", 300, 3, 5, 17, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"pw_grouped", 8, 6, 6, 12, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2},
	// 1×1 with stride or padding (im2col path).
	{"pw_s2", 16, 9, 9, 8, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1},
	{"pw_pad", 4, 5, 5, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	// Depthwise.
	{"dw3_s1", 16, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 16},
	{"dw3_s2", 24, 13, 11, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 24},
	{"dw3_s2_asym", 8, 14, 14, 8, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 8},
	{"dw5_s1", 5, 9, 17, 5, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 5},
	{"dw5_s2", 6, 20, 21, 6, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 6},
	{"dw3_dil2", 4, 11, 11, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 4},
	{"dw3_nopad", 3, 7, 9, 3, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 3},
	{"dw3_tiny", 2, 1, 1, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},
	{"dw3_s3", 3, 10, 10, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3},
	{"dw_rect", 7, 9, 10, 7, 3, 1, 1, 2, 1, 0, 1, 0, 1, 1, 7},
	{"dw_big_pad", 2, 4, 4, 2, 3, 3, 1, 1, 3, 2, 1, 3, 1, 1, 2},
	{"dw_7x7", 3, 7, 7, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3},
	{"dw_s12", 4, 9, 9, 4, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1, 4},
	// Rows wider than one, or several, 64-lane blocks.
	{"dw3_w57", 2, 3, 57, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},
	{"dw3_w64", 2, 3, 64, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2},
	{"dw3_w130", 3, 4, 130, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3},
	{"dw3_s2_w65", 2, 5, 129, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2},
	{"dw5_w70", 2, 5, 70, 2, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 2},
	{"dw5_w_s2_60", 2, 7, 120, 2, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1, 2},
	{"dw5_w_s21", 3, 9, 70, 3, 5, 5, 2, 1, 1, 2, 2, 1, 1, 1, 3},
	{"dw5_dil", 2, 12, 13, 2, 5, 5, 1, 2, 4, 3, 4, 5, 2, 2, 2},
	{"dw5_odd_pad", 2, 8, 11, 2, 5, 5, 2, 2, 1, 3, 2, 0, 1, 1, 2},
	// Depthwise with a multiplier (grouped, not plain depthwise).
	{"dw_mult2", 3, 6, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3},
	// General convolutions.
	{"stem_s2", 3, 17, 17, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
	{"conv3_s1", 8, 10, 9, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	{"conv3_asym", 5, 8, 11, 7, 3, 3, 1, 1, 0, 1, 1, 0, 1, 1, 1},
	{"conv5_s2_dil", 4, 15, 13, 9, 5, 3, 2, 1, 2, 1, 3, 0, 2, 3, 1},
	{"conv_grouped", 12, 7, 7, 18, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3},
	{"conv_k_gt_in", 2, 2, 3, 3, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1},
	{"conv_rect", 6, 12, 5, 10, 1, 7, 1, 1, 0, 3, 0, 3, 1, 1, 1},
	{"conv_big", 32, 14, 14, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	{"conv_s3", 3, 11, 11, 4, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},
	// Output planes wider than one N block (nc = 1024 columns).
	{"pw_bign", 8, 40, 41, 13, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"conv3_bign", 3, 36, 37, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
}

var acts = []Activation{
	{Kind: ActNone},
	{Kind: ActRelu},
	{Kind: ActClip, Alpha: 0, Beta: 6},
	{Kind: ActClip, Alpha: -0.25, Beta: 0.3},
	{Kind: ActLeakyRelu, Alpha: 0.1},
	{Kind: ActHardSigmoid, Alpha: 0.2, Beta: 0.5},
	{Kind: ActHardSwish},
	{Kind: ActSigmoid},
	{Kind: ActTanh},
}

// kernelModes runs f once per kernel family this machine runs (the
// pure-Go one always, and each assembly one the CPU supports).
func kernelModes(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, kr := range kernels() {
		t.Run(kr.name, func(t *testing.T) {
			defer setKernel(setKernel(kr))
			defer func(old int) { MinParallelWork = old }(MinParallelWork)
			MinParallelWork = 0
			f(t)
		})
	}
}

// agreeWithGo records each result of the pure-Go family under its name
// and, where the architecture's kernel families are bit-identical to it
// (bitIdenticalFamilies: arm64), checks every other family's result
// against it bit for bit. kernelModes runs the pure-Go family first.
type agreeWithGo map[string][]float32

func (g agreeWithGo) check(t *testing.T, name string, got []float32) {
	t.Helper()
	if currentKernel() == goKernel {
		g[name] = append([]float32(nil), got...)
		return
	}
	want, ok := g[name]
	if !bitIdenticalFamilies || !ok {
		return
	}
	for i, v := range want {
		if math.Float32bits(v) != math.Float32bits(got[i]) {
			t.Fatalf("%s: [%d] = %v (%#x), but the pure-Go kernels give %v (%#x)", name, i, got[i], math.Float32bits(got[i]), v, math.Float32bits(v))
		}
	}
}

func TestConvMatchesReference(t *testing.T) {
	agree := agreeWithGo{}
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for ci, cc := range convCases {
			s := cc.shape()
			if err := s.Validate(); err != nil {
				t.Fatalf("%s: %v", cc.name, err)
			}
			x := randSlice(r, s.inLen())
			w := randSlice(r, s.weightLen())
			var bias []float32
			if ci%3 != 2 {
				bias = randSlice(r, s.OutC)
			}
			for ai, act := range acts {
				if ai != 0 && (ci+ai)%3 != 0 && ai != 2 && !strings.HasPrefix(cc.name, "dw3_w") && !strings.HasPrefix(cc.name, "dw5_w") {
					continue // every activation is covered (all of them on wide rows), not every pair
				}
				want := refConv(s, x, w, bias, act)
				conv, err := NewConv(s, w, bias, act)
				if err != nil {
					t.Fatalf("%s: NewConv: %v", cc.name, err)
				}
				var single []float32
				for _, threads := range []int{1, 2, 3} {
					y := nanSlice(s.outLen() + 3)
					scratch := nanSlice(conv.ScratchLen(threads))
					conv.Forward(x, y[:s.outLen()], scratch, testPool(threads))
					name := fmt.Sprintf("%s/%v/threads=%d", cc.name, act.Kind, threads)
					closeEnough(t, name, y[:s.outLen()], want, s.colRows())
					agree.check(t, fmt.Sprintf("%s/act%d", name, ai), y[:s.outLen()])
					if threads == 1 {
						single = y[:s.outLen()]
					} else {
						for i, v := range single {
							if math.Float32bits(v) != math.Float32bits(y[i]) {
								t.Fatalf("%s: [%d] = %v, but %v with one thread", name, i, y[i], v)
							}
						}
					}
					for i := s.outLen(); i < len(y); i++ {
						if !math.IsNaN(float64(y[i])) {
							t.Fatalf("%s: wrote past the output", name)
						}
					}
				}
			}
		}
	})
}

// TestConvMobileNetLayers runs layers at the sizes of MobileNetV2 and the
// PP-OCR classifier, which exercise full blocks and multiple K blocks.
func TestConvMobileNetLayers(t *testing.T) {
	cases := []convCase{
		{"mb_dw_144_s2", 144, 56, 56, 144, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 144},
		{"mb_pw_144_24", 144, 28, 28, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
		{"mb_pw_320_1280", 320, 7, 7, 1280, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
		{"mb_dw_960", 960, 7, 7, 960, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 960},
		{"ocr_dw5", 40, 6, 24, 40, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 40},
		{"conv_k600", 64, 9, 9, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	}
	if testing.Short() {
		cases = cases[1:4]
	}
	type data struct{ x, w, bias, want []float32 }
	act := Activation{Kind: ActClip, Alpha: 0, Beta: 6}
	r := rand.New(rand.NewPCG(3, 4))
	var ds []data
	for _, cc := range cases {
		s := cc.shape()
		d := data{x: randSlice(r, s.inLen()), w: randSlice(r, s.weightLen()), bias: randSlice(r, s.OutC)}
		d.want = refConv(s, d.x, d.w, d.bias, act)
		ds = append(ds, d)
	}
	kernelModes(t, func(t *testing.T) {
		for i, cc := range cases {
			s, d := cc.shape(), ds[i]
			conv, err := NewConv(s, d.w, d.bias, act)
			if err != nil {
				t.Fatal(err)
			}
			for _, threads := range []int{1, 2} {
				y := nanSlice(s.outLen())
				conv.Forward(d.x, y, nanSlice(conv.ScratchLen(threads)), testPool(threads))
				closeEnough(t, fmt.Sprintf("%s/threads=%d", cc.name, threads), y, d.want, s.colRows())
			}
		}
	})
}

func TestSgemmMatchesReference(t *testing.T) {
	sizes := [][3]int{
		{1, 1, 1}, {1, 7, 3}, {5, 1, 9}, {3, 3, 0}, {2, 3, 4}, {6, 16, 8}, {7, 17, 9},
		{13, 31, 5}, {16, 32, 64}, {33, 65, 129}, {1, 1000, 300}, {4, 100, 50},
		{50, 3, 70}, {97, 101, 300}, {130, 40, 513}, {8, 1100, 20},
	}
	if !testing.Short() {
		sizes = append(sizes, [3]int{70, 1030, 530}, [3]int{9, 2100, 33})
	}
	type gemmCase struct {
		name           string
		ta, tb, acc    bool
		m, n, k        int
		a, b, c0, want []float32
		lda, ldb, ldc  int
	}
	// The references are computed once and shared by every kernel family.
	var cases []gemmCase
	r := rand.New(rand.NewPCG(5, 6))
	for _, sz := range sizes {
		m, n, k := sz[0], sz[1], sz[2]
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, acc := range []bool{false, true} {
					// Leading dimensions larger than the matrices.
					gc := gemmCase{ta: ta, tb: tb, acc: acc, m: m, n: n, k: k, lda: k + 3, ldb: n + 2, ldc: n + 1}
					gc.name = fmt.Sprintf("m=%d n=%d k=%d ta=%v tb=%v acc=%v", m, n, k, ta, tb, acc)
					arows, brows := m, k
					if ta {
						gc.lda, arows = m+1, k
					}
					if tb {
						gc.ldb, brows = k+5, n
					}
					gc.a = randSlice(r, max(arows*gc.lda, 1))
					gc.b = randSlice(r, max(brows*gc.ldb, 1))
					gc.c0 = randSlice(r, m*gc.ldc)
					gc.want = append([]float32(nil), gc.c0...)
					refGemm(ta, tb, m, n, k, gc.a, gc.lda, gc.b, gc.ldb, gc.want, gc.ldc, acc)
					cases = append(cases, gc)
				}
			}
		}
	}
	agree := agreeWithGo{}
	kernelModes(t, func(t *testing.T) {
		for _, gc := range cases {
			c := append([]float32(nil), gc.c0...)
			Sgemm(gc.ta, gc.tb, gc.m, gc.n, gc.k, gc.a, gc.lda, gc.b, gc.ldb, c, gc.ldc, gc.acc)
			closeEnough(t, gc.name, c, gc.want, gc.k)
			agree.check(t, gc.name, c)
		}
	})
}

func TestActivationApply(t *testing.T) {
	x := []float32{-10, -6, -3.5, -1, -0.25, 0, 0.125, 0.5, 1, 2.5, 3, 5.9, 6, 7, 40}
	for _, a := range acts {
		got := append([]float32(nil), x...)
		want := append([]float32(nil), x...)
		a.Apply(got)
		refAct(a, want)
		closeEnough(t, a.Kind.String(), got, want, 0)
	}
	if got := ActKind(99).String(); got != "ActKind(99)" {
		t.Errorf("String of unknown kind = %q", got)
	}
}

// TestIm2colCol2imAdjoint checks ⟨Im2col(x), c⟩ = ⟨x, Col2im(c)⟩, which holds
// exactly when Col2im is Im2col's transpose.
func TestIm2colCol2imAdjoint(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, cc := range convCases {
		s := cc.shape()
		for g := 0; g < s.Group; g++ {
			x := randSlice(r, s.inLen())
			col := make([]float32, s.colRows()*s.OutH*s.OutW)
			Im2col(s, g, x, col)
			c := randSlice(r, len(col))
			dx := make([]float32, s.inLen())
			Col2im(s, g, c, dx)
			var lhs, rhs float64
			for i := range col {
				lhs += float64(col[i]) * float64(c[i])
			}
			for i := range x {
				rhs += float64(x[i]) * float64(dx[i])
			}
			if math.Abs(lhs-rhs) > 1e-3*math.Max(1, math.Abs(lhs)) {
				t.Errorf("%s g=%d: <im2col x, c>=%v, <x, col2im c>=%v", cc.name, g, lhs, rhs)
			}
		}
	}
}

func TestNewConvErrors(t *testing.T) {
	good := convCases[2].shape()
	w := make([]float32, good.weightLen())
	tests := []struct {
		name string
		mod  func(*ConvShape)
		w    []float32
		bias []float32
		act  Activation
	}{
		{"zero InC", func(s *ConvShape) { s.InC = 0 }, w, nil, Activation{}},
		{"negative stride", func(s *ConvShape) { s.StrideH = -1 }, w, nil, Activation{}},
		{"zero dilation", func(s *ConvShape) { s.DilW = 0 }, w, nil, Activation{}},
		{"negative pad", func(s *ConvShape) { s.PadL = -2 }, w, nil, Activation{}},
		{"group mismatch", func(s *ConvShape) { s.Group = 5 }, w, nil, Activation{}},
		{"huge", func(s *ConvShape) { s.InH, s.InW = 1<<20, 1<<20 }, w, nil, Activation{}},
		{"huge stride", func(s *ConvShape) { s.StrideH, s.StrideW, s.OutH, s.OutW = 1<<20, 1<<20, 64, 64 }, w, nil, Activation{}},
		{"short weight", func(*ConvShape) {}, w[1:], nil, Activation{}},
		{"short bias", func(*ConvShape) {}, w, make([]float32, 3), Activation{}},
		{"bad act", func(*ConvShape) {}, w, nil, Activation{Kind: 42}},
	}
	for _, tt := range tests {
		s := good
		tt.mod(&s)
		c, err := NewConv(s, tt.w, tt.bias, tt.act)
		if err == nil || c != nil {
			t.Errorf("%s: NewConv = %v, %v; want an error", tt.name, c, err)
			continue
		}
		if tt.act.Kind == 42 {
			continue
		}
		if !errors.Is(err, ErrShape) {
			t.Errorf("%s: error %v does not wrap ErrShape", tt.name, err)
		}
	}
}

func TestForwardAllocatesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	// Every conv below splits on 2 threads, so its scratch is sized for
	// that (a split by row panels needs a shared packed B on top).
	defer func(old int) { MinParallelWork = old }(MinParallelWork)
	MinParallelWork = 0
	for _, cc := range []convCase{convCases[3], convCases[9], convCases[10], convCases[23]} {
		s := cc.shape()
		conv, err := NewConv(s, randSlice(r, s.weightLen()), randSlice(r, s.OutC), Activation{Kind: ActRelu})
		if err != nil {
			t.Fatal(err)
		}
		x, y := randSlice(r, s.inLen()), make([]float32, s.outLen())
		scratch := make([]float32, conv.ScratchLen(2))
		if n := testing.AllocsPerRun(20, func() { conv.Forward(x, y, scratch, nil) }); n != 0 {
			t.Errorf("%s: Forward allocates %v times per run", cc.name, n)
		}
		if n := testing.AllocsPerRun(20, func() { conv.Forward(x, y, scratch, testPool(2)) }); n != 0 {
			t.Errorf("%s: Forward on a 2-thread pool allocates %v times per run", cc.name, n)
		}
	}
	if raceEnabled {
		return // Sgemm's packing buffers come from a sync.Pool
	}
	a, b, c := randSlice(r, 64*70), randSlice(r, 70*80), make([]float32, 64*80)
	Sgemm(false, false, 64, 80, 70, a, 70, b, 80, c, 80, false)
	if n := testing.AllocsPerRun(20, func() { Sgemm(false, false, 64, 80, 70, a, 70, b, 80, c, 80, false) }); n != 0 {
		t.Errorf("Sgemm allocates %v times per run", n)
	}
}

func TestShortSlicesPanicWithMessage(t *testing.T) {
	s := convCases[9].shape()
	conv, err := NewConv(s, make([]float32, s.weightLen()), nil, Activation{})
	if err != nil {
		t.Fatal(err)
	}
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			r := recover()
			if msg, ok := r.(string); !ok || !strings.HasPrefix(msg, "kern: ") {
				t.Errorf("%s: recovered %v, want a kern: message", name, r)
			}
		}()
		f()
	}
	x, y, scr := make([]float32, s.inLen()), make([]float32, s.outLen()), make([]float32, conv.ScratchLen(2))
	mustPanic("short x", func() { conv.Forward(x[1:], y, scr, nil) })
	mustPanic("short y", func() { conv.Forward(x, y[1:], scr, nil) })
	mustPanic("short scratch", func() { conv.Forward(x, y, scr[:conv.ScratchLen(2)-1], testPool(2)) })
	a, b, c := make([]float32, 6*5), make([]float32, 5*7), make([]float32, 6*7)
	mustPanic("short C", func() { Sgemm(false, false, 6, 7, 5, a, 5, b, 7, c[1:], 7, false) })
	mustPanic("small ldc", func() { Sgemm(false, false, 6, 7, 5, a, 5, b, 7, c, 6, false) })
	mustPanic("short A", func() { Sgemm(false, false, 6, 7, 5, a[1:], 5, b, 7, c, 7, false) })
	mustPanic("short Bt", func() { Sgemm(false, true, 6, 7, 5, a, 5, b[1:], 5, c, 7, false) })
}

// TestIm2colRange checks that column chunks of the column matrix match the
// whole matrix, for chunks that start and end mid-row.
func TestIm2colRange(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, cc := range convCases {
		s := cc.shape()
		hw := s.OutH * s.OutW
		x := randSlice(r, s.inLen())
		full := make([]float32, s.colRows()*hw)
		g := s.Group - 1
		Im2col(s, g, x, full)
		for range 4 {
			j0 := r.IntN(hw)
			j1 := j0 + 1 + r.IntN(hw-j0)
			part := nanSlice(s.colRows() * (j1 - j0))
			im2colRange(&s, g, x, part, j0, j1)
			for row := 0; row < s.colRows(); row++ {
				for j := j0; j < j1; j++ {
					if got, want := part[row*(j1-j0)+j-j0], full[row*hw+j]; got != want {
						t.Fatalf("%s [%d, %d): row %d col %d = %v, want %v", cc.name, j0, j1, row, j, got, want)
					}
				}
			}
		}
	}
}

// TestConvRandomShapes compares every kernel family with the reference on
// random small convolutions: kernel sizes, strides, dilations, asymmetric
// padding, groups and depthwise, with random activations. KERN_FUZZ_N=4000
// runs more of them.
func TestConvRandomShapes(t *testing.T) {
	n := 150
	if os.Getenv("KERN_FUZZ_N") != "" {
		n, _ = strconv.Atoi(os.Getenv("KERN_FUZZ_N"))
	}
	if testing.Short() {
		n = 40
	}
	r := rand.New(rand.NewPCG(21, 22))
	type rc struct {
		s       ConvShape
		x, w, b []float32
		act     Activation
		want    []float32
	}
	var cases []rc
	for len(cases) < n {
		g := 1 + r.IntN(3)
		icg, ocg := 1+r.IntN(5), 1+r.IntN(7)
		if r.IntN(3) == 0 { // depthwise
			g = 1 + r.IntN(12)
			icg, ocg = 1, 1
		}
		kh, kw := 1+r.IntN(5), 1+r.IntN(5)
		sh, sw := 1+r.IntN(3), 1+r.IntN(3)
		dh, dw := 1+r.IntN(2), 1+r.IntN(2)
		pt, pb, pl, pr := r.IntN(kh+1), r.IntN(kh+1), r.IntN(kw+1), r.IntN(kw+1)
		ih, iw := 1+r.IntN(20), 1+r.IntN(70)
		oh, ow := outDim(ih, kh, sh, pt, pb, dh), outDim(iw, kw, sw, pl, pr, dw)
		if oh < 1 || ow < 1 {
			continue
		}
		s := ConvShape{InC: g * icg, InH: ih, InW: iw, OutC: g * ocg, OutH: oh, OutW: ow,
			KH: kh, KW: kw, StrideH: sh, StrideW: sw, PadT: pt, PadL: pl, DilH: dh, DilW: dw, Group: g}
		c := rc{s: s, x: randSlice(r, s.inLen()), w: randSlice(r, s.weightLen()), act: acts[r.IntN(len(acts))]}
		if r.IntN(4) != 0 {
			c.b = randSlice(r, s.OutC)
		}
		c.want = refConv(s, c.x, c.w, c.b, c.act)
		cases = append(cases, c)
	}
	agree := agreeWithGo{}
	kernelModes(t, func(t *testing.T) {
		for i, c := range cases {
			conv, err := NewConv(c.s, c.w, c.b, c.act)
			if err != nil {
				t.Fatalf("case %d %+v: %v", i, c.s, err)
			}
			threads := 1 + i%3
			y := nanSlice(c.s.outLen() + 1)
			conv.Forward(c.x, y[:c.s.outLen()], nanSlice(conv.ScratchLen(threads)), testPool(threads))
			name := fmt.Sprintf("case %d %+v %v threads=%d", i, c.s, c.act.Kind, threads)
			closeEnough(t, name, y[:c.s.outLen()], c.want, c.s.colRows())
			agree.check(t, name, y[:c.s.outLen()])
			if !math.IsNaN(float64(y[c.s.outLen()])) {
				t.Fatalf("case %d: wrote past the output", i)
			}
		}
	})
}

// TestConvRowSplitBitIdentical covers the parallel path that packs B once
// and shares it (convolutions with few output columns, split by row
// panels): each thread count gives the single-threaded output bit for bit,
// on shapes that take that path (checked), with k spanning several kc
// blocks, grouped convolutions and n spanning several nc blocks.
func TestConvRowSplitBitIdentical(t *testing.T) {
	cases := []struct {
		name    string
		s       ConvShape
		threads []int
	}{
		{"3x3 256 14x14", ConvShape{InC: 256, InH: 14, InW: 14, OutC: 256, OutH: 14, OutW: 14, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadT: 1, PadL: 1, DilH: 1, DilW: 1, Group: 1}, []int{2, 3}},
		{"3x3s2 128to256 7x7", ConvShape{InC: 128, InH: 14, InW: 14, OutC: 256, OutH: 7, OutW: 7, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, DilH: 1, DilW: 1, Group: 1}, []int{2}},
		{"1x1 960to160 7x7", ConvShape{InC: 960, InH: 7, InW: 7, OutC: 160, OutH: 7, OutW: 7, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Group: 1}, []int{2, 3}},
		{"grouped 3x3 g2", ConvShape{InC: 64, InH: 6, InW: 9, OutC: 192, OutH: 6, OutW: 9, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadT: 1, PadL: 1, DilH: 1, DilW: 1, Group: 2}, []int{2}},
		{"1x1 n past nc", ConvShape{InC: 40, InH: 1, InW: 1100, OutC: 600, OutH: 1, OutW: 1100, KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Group: 1}, []int{16}},
		{"1x3 n past nc", ConvShape{InC: 30, InH: 1, InW: 1100, OutC: 600, OutH: 1, OutW: 1100, KH: 1, KW: 3, StrideH: 1, StrideW: 1, PadL: 1, DilH: 1, DilW: 1, Group: 1}, []int{16}},
	}
	kernelModes(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(31, 32))
		shared := 0 // runs that took the shared-B path
		for _, c := range cases {
			conv, err := NewConv(c.s, randSlice(r, c.s.weightLen()), randSlice(r, c.s.OutC), Activation{Kind: ActClip, Beta: 6})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			x := randSlice(r, c.s.inLen())
			want := make([]float32, c.s.outLen())
			conv.Forward(x, want, make([]float32, conv.ScratchLen(1)), nil)
			for _, th := range c.threads {
				if conv.sharedBLen(th) > 0 {
					shared++
				}
				pool := NewPool(th)
				got := nanSlice(c.s.outLen())
				conv.Forward(x, got, nanSlice(conv.ScratchLen(th)), pool)
				pool.Close()
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s, %d threads: y[%d] = %v, 1 thread gives %v", c.name, th, i, got[i], want[i])
					}
				}
			}
		}
		// Which cases split by rows depends on the family's tile.
		if shared < 3 {
			t.Fatalf("only %d runs took the shared-B row split; the cases no longer cover it", shared)
		}
	})
}
