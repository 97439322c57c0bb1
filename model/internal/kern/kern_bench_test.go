package kern

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// Benchmarks report GFLOP/s (2 FLOPs per multiply-add) for every kernel
// family this CPU runs, so the assembly kernels can be read as a ratio to the
// pure-Go one measured in the same run. Typical use:
//
//	go test -run '^$' -bench . -benchtime 200ms -benchmem ./model/internal/kern/

func BenchmarkSgemm(b *testing.B) {
	sizes := [][3]int{{64, 64, 64}, {256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024}, {144, 3136, 24}, {1, 1000, 1280}}
	for _, kr := range kernels() {
		for _, sz := range sizes {
			m, n, k := sz[0], sz[1], sz[2]
			b.Run(fmt.Sprintf("%s/%dx%dx%d", kr.name, m, n, k), func(b *testing.B) {
				defer setKernel(setKernel(kr))
				r := rand.New(rand.NewPCG(1, 1))
				a, bm, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
				Sgemm(false, false, m, n, k, a, k, bm, n, c, n, false)
				b.ResetTimer()
				for b.Loop() {
					Sgemm(false, false, m, n, k, a, k, bm, n, c, n, false)
				}
				b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// mobileNetLayers are layers of MobileNetV2 at 224×224 (and one of the PP-OCR
// direction classifier).
var mobileNetLayers = []convCase{
	{"stem_3x3s2_3to32_224", 3, 224, 224, 32, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 1},
	{"dw_3x3s1_32_112", 32, 112, 112, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 32},
	{"pw_32to16_112", 32, 112, 112, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"pw_24to144_56", 24, 56, 56, 144, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"dw_3x3s1_144_56", 144, 56, 56, 144, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 144},
	{"dw_3x3s2_144_56", 144, 56, 56, 144, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 144},
	{"pw_144to24_56", 144, 56, 56, 24, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"pw_384to64_14", 384, 14, 14, 64, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"pw_960to160_7", 960, 7, 7, 160, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"pw_320to1280_7", 320, 7, 7, 1280, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},
	{"conv3x3_64to64_56", 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	{"ocr_dw5x5_s1_40_6x24", 40, 6, 24, 40, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 40},
}

func BenchmarkConv(b *testing.B) {
	for _, kr := range kernels() {
		for _, cc := range mobileNetLayers {
			for _, threads := range []int{1, 2} {
				if threads == 2 && kr.id == kernGo {
					continue
				}
				b.Run(fmt.Sprintf("%s/%s/t%d", kr.name, cc.name, threads), func(b *testing.B) {
					defer setKernel(setKernel(kr))
					s := cc.shape()
					r := rand.New(rand.NewPCG(2, 2))
					conv, err := NewConv(s, randSlice(r, s.weightLen()), randSlice(r, s.OutC), Activation{Kind: ActClip, Beta: 6})
					if err != nil {
						b.Fatal(err)
					}
					x, y := randSlice(r, s.inLen()), make([]float32, s.outLen())
					scratch := make([]float32, conv.ScratchLen(threads))
					conv.Forward(x, y, scratch, testPool(threads))
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						conv.Forward(x, y, scratch, testPool(threads))
					}
					macs := float64(s.outLen()) * float64(s.colRows())
					b.ReportMetric(2*macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// mobileNetV2Convs lists every convolution of MobileNetV2 (width 1.0) at
// 224×224, in order.
func mobileNetV2Convs() []convCase {
	pw := func(name string, in, out, hw int) convCase {
		return convCase{name, in, hw, hw, out, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}
	}
	dw := func(name string, ch, hw, stride int) convCase {
		return convCase{name, ch, hw, hw, ch, 3, 3, stride, stride, 1, 1, 1, 1, 1, 1, ch}
	}
	layers := []convCase{
		{"stem", 3, 224, 224, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
		dw("dw", 32, 112, 1), pw("pw", 32, 16, 112),
	}
	in, hw := 16, 112
	for _, st := range [][4]int{{6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}} {
		t, c, n, s := st[0], st[1], st[2], st[3]
		for i := 0; i < n; i++ {
			stride := 1
			if i == 0 {
				stride = s
			}
			layers = append(layers, pw("expand", in, in*t, hw))
			d := dw("dw", in*t, hw, stride)
			if stride == 2 {
				// TensorFlow-style exports pad asymmetrically; ONNX
				// exports of torchvision pad 1 on every side.
				d.pb, d.pr = 1, 1
			}
			layers = append(layers, d)
			hw = (hw-1)/stride + 1
			layers = append(layers, pw("project", in*t, c, hw))
			in = c
		}
	}
	return append(layers, pw("head", 320, 1280, 7))
}

// BenchmarkMobileNetV2Convs runs all 52 convolutions of MobileNetV2 (with
// fused bias and ReLU6) one after the other: the conv share of a whole
// inference, single-threaded unless noted.
func BenchmarkMobileNetV2Convs(b *testing.B) {
	layers := mobileNetV2Convs()
	for _, kr := range kernels() {
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", kr.name, threads), func(b *testing.B) {
				defer setKernel(setKernel(kr))
				r := rand.New(rand.NewPCG(3, 3))
				var convs []*Conv
				scratchLen, bufLen := 0, 0
				var macs float64
				for _, cc := range layers {
					s := cc.shape()
					conv, err := NewConv(s, randSlice(r, s.weightLen()), randSlice(r, s.OutC), Activation{Kind: ActClip, Beta: 6})
					if err != nil {
						b.Fatal(err)
					}
					convs = append(convs, conv)
					scratchLen = max(scratchLen, conv.ScratchLen(threads))
					bufLen = max(bufLen, s.inLen(), s.outLen())
					macs += float64(s.outLen()) * float64(s.colRows())
				}
				// Each layer reads the previous one's output, as in an
				// inference.
				scratch := make([]float32, scratchLen)
				in, out := randSlice(r, bufLen), make([]float32, bufLen)
				b.ReportAllocs()
				for b.Loop() {
					x, y := in, out
					for _, c := range convs {
						s := c.Shape()
						c.Forward(x[:s.inLen()], y[:s.outLen()], scratch, testPool(threads))
						x, y = y, x
					}
				}
				b.ReportMetric(2*macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/inference")
			})
		}
	}
}

// BenchmarkAsmVsGo times the fastest kernel family and the pure-Go one
// alternately in the same iterations (so machine noise hits both) and
// reports the speed-up, on a 256³ Sgemm and on one depthwise and one
// pointwise MobileNetV2 layer.
func BenchmarkAsmVsGo(b *testing.B) {
	if asmKernel == goKernel {
		b.Skip("no assembly kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(4, 4))
	type workload struct {
		name  string
		flops float64
		setup func() func() // builds with the active kernel, returns the call
	}
	const n = 256
	a, bm, c := randSlice(r, n*n), randSlice(r, n*n), make([]float32, n*n)
	ws := []workload{{"sgemm256", 2 * n * n * n, func() func() {
		kr := currentKernel() // Sgemm picks its kernel per call
		return func() {
			defer setKernel(setKernel(kr))
			Sgemm(false, false, n, n, n, a, n, bm, n, c, n, false)
		}
	}}}
	for _, cc := range []convCase{mobileNetLayers[4], mobileNetLayers[6]} {
		s := cc.shape()
		w, bias := randSlice(r, s.weightLen()), randSlice(r, s.OutC)
		x, y := randSlice(r, s.inLen()), make([]float32, s.outLen())
		ws = append(ws, workload{cc.name, 2 * float64(s.outLen()) * float64(s.colRows()), func() func() {
			conv, err := NewConv(s, w, bias, Activation{Kind: ActClip, Beta: 6})
			if err != nil {
				b.Fatal(err)
			}
			scratch := make([]float32, conv.ScratchLen(1))
			return func() { conv.Forward(x, y, scratch, nil) }
		}})
	}
	for _, wl := range ws {
		b.Run(wl.name, func(b *testing.B) {
			old := setKernel(asmKernel)
			fast := wl.setup()
			setKernel(goKernel)
			slow := wl.setup()
			setKernel(old)
			var tf, ts time.Duration
			for b.Loop() {
				t0 := time.Now()
				fast()
				t1 := time.Now()
				slow()
				ts += time.Since(t1)
				tf += t1.Sub(t0)
			}
			b.ReportMetric(wl.flops*float64(b.N)/tf.Seconds()/1e9, asmKernel.name+"_GFLOP/s")
			b.ReportMetric(wl.flops*float64(b.N)/ts.Seconds()/1e9, "go_GFLOP/s")
			b.ReportMetric(ts.Seconds()/tf.Seconds(), "speedup")
		})
	}
}
