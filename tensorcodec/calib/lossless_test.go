package calib

import (
	"compress/gzip"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"gorgonia.org/tensor"
)

// cutBoundaries runs g on every input and returns, for every cut whose
// boundary is one tensor (edge-only excluded), its K, the tensor's name and
// its value for each input.
func cutBoundaries(t testing.TB, g *model.Graph, inputs []*tensor.Dense) (ks []int, names []string, vals [][]*tensor.Dense) {
	t.Helper()
	cuts, err := partition.Cuts(g)
	if err != nil {
		t.Fatal(err)
	}
	capture := *g
	capture.Outputs = slices.Clone(g.Outputs)
	slot := map[string]int{}
	for i, o := range g.Outputs {
		slot[o.Name] = i
	}
	for k := 0; k < len(g.Nodes); k++ {
		if len(cuts[k].Boundary) != 1 {
			continue
		}
		name := cuts[k].Boundary[0]
		ks, names = append(ks, k), append(names, name)
		if _, ok := slot[name]; !ok && name != g.Inputs[0].Name {
			slot[name] = len(capture.Outputs)
			capture.Outputs = append(capture.Outputs, model.ValueInfo{Name: name, Shape: g.Shapes[name]})
		}
	}
	net, err := model.Compile(&capture, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := net.NewExtractor()
	vals = make([][]*tensor.Dense, len(ks))
	for _, in := range inputs {
		outs, err := ex.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		for j, name := range names {
			v := in
			if name != g.Inputs[0].Name {
				v = outs[slot[name]].Clone().(*tensor.Dense) // the extractor reuses its outputs
			}
			vals[j] = append(vals[j], v)
		}
	}
	return ks, names, vals
}

func mnistInputs(t testing.TB, g *model.Graph, spec string, n int, pre *dataset.Preprocess) []*tensor.Dense {
	t.Helper()
	src, _, err := Open(context.Background(), spec, g, pre, n)
	if err != nil {
		t.Skipf("%s: %v", spec, err)
	}
	var ins []*tensor.Dense
	for i := 0; i < src.Len(); i++ {
		x, _ := src.Input(i)
		ins = append(ins, x[0])
	}
	return ins
}

var oldLossless = []tensorcodec.EOption{tensorcodec.WithExactPaths(false)}

// TestLosslessExactAtEveryCut: the lossless preset, exact paths included,
// gives back every boundary tensor of the trained MNIST CNN bit for bit on
// real digits (so its Fidelity stays Exact), is never larger than the
// preset without them, and sends the 8-bit input well below it.
func TestLosslessExactAtEveryCut(t *testing.T) {
	if Fidelity(tensorcodec.PresetLossless) != scheduler.Exact {
		t.Fatal("the lossless preset is not classified exact")
	}
	g := seedCNN(t)
	n := 16
	if testing.Short() {
		n = 6
	}
	ks, names, vals := cutBoundaries(t, g, mnistInputs(t, g, "mnist", n, nil))
	old, _ := tensorcodec.NewEncoder(oldLossless...)
	for j, k := range ks {
		var newB, oldB int
		for _, x := range vals[j] {
			msg, _, err := tensorcodec.EncodePreset(nil, tensorcodec.PresetLossless, x)
			if err != nil {
				t.Fatal(err)
			}
			out, err := tensorcodec.Decode(nil, msg)
			if err != nil {
				t.Fatal(err)
			}
			a, b := x.Float32s(), out[0].Float32s()
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					t.Fatalf("cut %d (%s) element %d: %08x -> %08x", k, names[j], i, math.Float32bits(a[i]), math.Float32bits(b[i]))
				}
			}
			_, so, _ := old.Encode(nil, x)
			newB, oldB = newB+len(msg), oldB+so.Bytes
		}
		t.Logf("cut %d %-14s lossless %6d bytes, without exact paths %6d (%.2fx)", k, names[j], newB, oldB, float64(oldB)/float64(newB))
		if newB > oldB+oldB/100 {
			t.Errorf("cut %d: exact paths made it larger (%d vs %d bytes)", k, newB, oldB)
		}
		if k == 0 && 2*newB > oldB {
			t.Errorf("input cut: %d bytes, want under half of %d", newB, oldB)
		}
	}
}

// reportRow is one line of the lossless report.
type reportRow struct {
	k               int
	name            string
	raw             int
	oldR, newR, i8R float64
	tfs             string
	oldEnc, newEnc  float64
	oldDec, newDec  float64
}

// measureCut encodes each value as its own message with the old and new
// lossless and int8, checks the new one is exact, and times all three on
// the first few values as one message.
func measureCut(t *testing.T, k int, name string, vs []*tensor.Dense, speed time.Duration) reportRow {
	r := reportRow{k: k, name: name, raw: 4 * len(vs[0].Float32s())}
	oldE, _ := tensorcodec.NewEncoder(oldLossless...)
	newE, _ := tensorcodec.NewEncoder()
	i8E, _ := tensorcodec.NewEncoder(tensorcodec.WithPreset(tensorcodec.PresetInt8))
	var raw, ob, nb, ib int
	tfs := map[string]int{}
	for _, x := range vs {
		_, so, _ := oldE.Encode(nil, x)
		msg, sn, _ := newE.Encode(nil, x)
		_, si, _ := i8E.Encode(nil, x)
		out, err := tensorcodec.Decode(nil, msg)
		if err != nil {
			t.Fatal(err)
		}
		a, b := x.Float32s(), out[0].Float32s()
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("cut %d: lossless changed element %d", k, i)
			}
		}
		hs, _ := tensorcodec.Inspect(msg, tensorcodec.Limits{})
		tfs[hs[0].Transform.String()]++
		raw, ob, nb, ib = raw+so.RawBytes, ob+so.Bytes, nb+sn.Bytes, ib+si.Bytes
	}
	r.oldR, r.newR, r.i8R = float64(raw)/float64(ob), float64(raw)/float64(nb), float64(raw)/float64(ib)
	var parts []string
	for _, tf := range []string{"lattice", "lattice-channel", "xor-channel", "none"} {
		if tfs[tf] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", tf, tfs[tf]))
		}
	}
	r.tfs = strings.Join(parts, ", ")
	batch := vs[:min(8, len(vs))]
	for _, exact := range []bool{false, true} {
		res, err := tensorcodec.Bench(context.Background(), tensorcodec.PresetLossless, batch,
			tensorcodec.BenchOptions{MinTime: speed, Encoder: []tensorcodec.EOption{tensorcodec.WithExactPaths(exact)}})
		if err != nil {
			t.Fatal(err)
		}
		if exact {
			r.newEnc, r.newDec = res.EncodeMBps, res.DecodeMBps
		} else {
			r.oldEnc, r.oldDec = res.EncodeMBps, res.DecodeMBps
		}
	}
	return r
}

func printReport(title string, rows []reportRow) {
	fmt.Printf("\n%s\n\n", title)
	fmt.Println("| cut | boundary (float32 bytes) | old lossless | new lossless | new ÷ old | int8 | sent as | encode MB/s old → new | decode MB/s old → new |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	var so, sn, sr float64
	for _, r := range rows {
		fmt.Printf("| %d | %s (%d) | %.2f× | %.2f× | **%.2f×** | %.2f× | %s | %.0f → %.0f | %.0f → %.0f |\n",
			r.k, r.name, r.raw, r.oldR, r.newR, r.newR/r.oldR, r.i8R, r.tfs, r.oldEnc, r.newEnc, r.oldDec, r.newDec)
		so += float64(r.raw) / r.oldR
		sn += float64(r.raw) / r.newR
		sr += float64(r.raw)
	}
	fmt.Printf("\nall cuts together: old %.2f×, new %.2f× (%.2f× old)\n", sr/so, sr/sn, so/sn)
}

// ocrStrip builds PP-OCR direction-classifier inputs the way PaddleOCR's
// preprocessing does (resize as 8-bit, then (p/255 − 0.5)/0.5, zero padding to
// width 192): a text-like strip of 3 or 4 28×28 images (bilinear to 48×48 and
// rounded to 8 bits, inverted: dark on light) side by side.
func ocrStrips(pix []byte, count int) []*tensor.Dense {
	var out []*tensor.Dense
	for i := 0; i < count; i++ {
		ndig := 3 + i%2
		x := make([]float32, 3*48*192)
		for d := 0; d < ndig; d++ {
			img := pix[(i*4+d)*784 : (i*4+d+1)*784]
			for y := 0; y < 48; y++ {
				for xx := 0; xx < 48; xx++ {
					fy := (float64(y)+0.5)*28/48 - 0.5
					fx := (float64(xx)+0.5)*28/48 - 0.5
					y0, x0 := int(math.Floor(fy)), int(math.Floor(fx))
					wy, wx := fy-float64(y0), fx-float64(x0)
					at := func(a, b int) float64 { return float64(img[max(0, min(27, a))*28+max(0, min(27, b))]) }
					v := (1-wy)*((1-wx)*at(y0, x0)+wx*at(y0, x0+1)) + wy*((1-wx)*at(y0+1, x0)+wx*at(y0+1, x0+1))
					p := 255 - uint8(math.Round(v))
					f := (float32(p)/255 - 0.5) / 0.5
					for c := 0; c < 3; c++ {
						x[c*48*192+y*192+d*48+xx] = f
					}
				}
			}
		}
		out = append(out, tensor.New(tensor.WithShape(1, 3, 48, 192), tensor.WithBacking(x)))
	}
	return out
}

func rawImages(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("%v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	_, data, err := dataset.ReadIDX(z)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func cachedFile(t *testing.T, name string) string {
	dir := os.Getenv("EDGESPLIT_CACHE")
	if dir == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(base, "edgesplit")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not cached (scripts/fetch-models.sh): %v", name, err)
	}
	return p
}

// TestLosslessReport prints tables of the lossless preset with and without
// its exact paths (and int8) on real inputs and
// at every single-tensor cut of the trained MNIST CNN (MNIST, Fashion-MNIST)
// and the PP-OCR direction classifier. Set EDGESPLIT_LOSSLESS_REPORT=N
// (inputs per data set) to run it.
func TestLosslessReport(t *testing.T) {
	var n int
	if _, err := fmt.Sscan(os.Getenv("EDGESPLIT_LOSSLESS_REPORT"), &n); err != nil || n <= 0 {
		t.Skip("set EDGESPLIT_LOSSLESS_REPORT=N to measure N inputs per data set")
	}
	speed := 100 * time.Millisecond
	g := seedCNN(t)
	torchNorm := func(ins []*tensor.Dense, mean, std float32) []*tensor.Dense {
		var out []*tensor.Dense
		for _, x := range ins {
			y := make([]float32, len(x.Float32s()))
			for i, v := range x.Float32s() {
				p := float32(math.Round(float64(v) * 255)) // the 8-bit pixel
				y[i] = (p/255 - mean) / std
			}
			out = append(out, tensor.New(tensor.WithShape(x.Shape()...), tensor.WithBacking(y)))
		}
		return out
	}
	for _, set := range []struct{ spec, title string }{{"mnist", "MNIST test digits"}, {"fashion-mnist", "Fashion-MNIST test images"}} {
		ins := mnistInputs(t, g, set.spec, n, nil)
		ks, names, vals := cutBoundaries(t, g, ins)
		var rows []reportRow
		for j, k := range ks {
			rows = append(rows, measureCut(t, k, names[j], vals[j], speed))
		}
		printReport(fmt.Sprintf("seed-cnn-trained on %d %s (pixels × (1/255), dataset.Preprocess)", len(ins), set.title), rows)
		mean, std := float32(0.1307), float32(0.3081)
		if set.spec == "fashion-mnist" {
			mean, std = 0.2860, 0.3530
		}
		rows = []reportRow{
			measureCut(t, 0, "input (p/255−mean)/std, torchvision", torchNorm(ins, mean, std), speed),
			measureCut(t, 0, "input p/255, torchvision", torchNorm(ins, 0, 1), speed),
		}
		printReport(fmt.Sprintf("%s inputs through other pipelines", set.title), rows)
	}

	path := cachedFile(t, "ch_ppocr_mobile_v2.0_cls_infer.onnx")
	pg, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := model.Simplify(pg, map[string][]int{pg.Inputs[0].Name: {1, 3, 48, 192}})
	if err != nil {
		t.Fatal(err)
	}
	mdir, err := dataset.MNISTDir()
	if err != nil {
		t.Skip(err)
	}
	for _, src := range []struct{ path, title string }{
		{filepath.Join(mdir, "t10k-images-idx3-ubyte.gz"), "MNIST digit strips"},
		{filepath.Join(dataset.FashionMNISTDir, "t10k-images-idx3-ubyte.gz"), "Fashion-MNIST strips"},
	} {
		ins := ocrStrips(rawImages(t, src.path), n)
		ks, names, vals := cutBoundaries(t, sg, ins)
		var rows []reportRow
		for j, k := range ks {
			rows = append(rows, measureCut(t, k, names[j], vals[j], speed))
		}
		printReport(fmt.Sprintf("PP-OCR direction classifier on %d %s (1×3×48×192, PaddleOCR preprocessing)", len(ins), src.title), rows)
	}
}
