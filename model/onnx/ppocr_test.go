package onnx_test

import (
	"bufio"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/partition"
)

const (
	ppocrModel    = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
	ppocrRecModel = "ch_PP-OCRv4_rec_infer.onnx"
	ppocrDetModel = "ch_PP-OCRv4_det_infer.onnx"
)

// cachedModel returns the path of a file fetched by scripts/fetch-models.sh,
// or skips the test (fails it with EDGESPLIT_REQUIRE_ORT=1, as in CI: the
// model is part of the reference fetched with ONNX Runtime).
func cachedModel(t testing.TB, name string) string {
	p := filepath.Join(onnx.CacheDir(), name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("EDGESPLIT_REQUIRE_ORT") == "1" {
			t.Fatalf("%s not cached (run scripts/fetch-models.sh; EDGESPLIT_REQUIRE_ORT=1 requires it): %v", name, err)
		}
		t.Skipf("%s not cached (run scripts/fetch-models.sh): %v", name, err)
	}
	return p
}

func readNpy(t testing.TB, path string) *tensor.Dense {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	x, err := npy.Read(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return x
}

// maxDiffs returns the largest |a-b| and the largest |a-b|/max(1,|b|).
func maxDiffs(a, b []float32) (abs, scaled float64) {
	for i := range b {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		abs = math.Max(abs, d)
		scaled = math.Max(scaled, d/math.Max(1, math.Abs(float64(b[i]))))
		if math.IsNaN(d) {
			return math.Inf(1), math.Inf(1)
		}
	}
	return abs, scaled
}

// TestPPOCRMatchesONNXRuntime runs the PP-OCR direction classifier on the
// seeded input in testdata/ppocr and compares its output, and six
// intermediate tensors, with ONNX Runtime's (written by internal/refgen):
// |edgesplit - ORT| <= 1e-4 * max(1, |ORT|) for every element.
func TestPPOCRMatchesONNXRuntime(t *testing.T) {
	matchesORT(t, ppocrModel, "testdata/ppocr")
}

// TestPPOCRRecMatchesONNXRuntime does the same for the PP-OCRv4 text
// recogniser (SVTR: a CNN stem, then self-attention blocks with decomposed
// LayerNorms, then a CTC head) on a seeded 1×3×48×320 input: the output, the
// stem's output, a LayerNorm, the QKV projection, attention probabilities,
// the last block's output, the neck and the logits.
func TestPPOCRRecMatchesONNXRuntime(t *testing.T) {
	matchesORT(t, ppocrRecModel, "testdata/ppocr_rec")
}

// TestPPOCRDetMatchesONNXRuntime does the same for the PP-OCRv4 text
// detector (DBNet: a CNN backbone, an FPN with nearest Resize, a
// ConvTranspose head) on a seeded 1×3×160×256 input: its probability map.
func TestPPOCRDetMatchesONNXRuntime(t *testing.T) {
	matchesORT(t, ppocrDetModel, "testdata/ppocr_det")
}

// matchesORT runs the cached model file on dir/x.npy and compares its
// output, and the intermediate tensors dir/manifest.txt lists, with ONNX
// Runtime's; then checks that Encode/Decode keeps the output bit for bit.
func matchesORT(t *testing.T, modelFile, dir string) {
	path := cachedModel(t, modelFile)
	g, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	x := readNpy(t, filepath.Join(dir, "x.npy"))
	g.Inputs[0].Shape = append([]int(nil), x.Shape()...)

	mf, err := os.Open(filepath.Join(dir, "manifest.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	var names, files []string
	sc := bufio.NewScanner(mf)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		names, files = append(names, f[0]), append(files, f[1])
	}
	if len(names) == 0 || names[0] != g.Outputs[0].Name {
		t.Fatalf("manifest lists %v, want the model output %q first", names, g.Outputs[0].Name)
	}

	run := func(g *model.Graph) []*tensor.Dense {
		net, err := model.Compile(g, model.Options{})
		if err != nil {
			t.Fatal(err)
		}
		outs, err := net.NewExtractor().Run(context.Background(), x)
		if err != nil {
			t.Fatal(err)
		}
		return outs
	}
	check := func(what string, got *tensor.Dense, file string) {
		want := readNpy(t, filepath.Join(dir, file))
		if !got.Shape().Eq(want.Shape()) {
			t.Errorf("%s: shape %v, ONNX Runtime %v", what, got.Shape(), want.Shape())
			return
		}
		abs, scaled := maxDiffs(got.Data().([]float32), want.Data().([]float32))
		t.Logf("%-26s shape %-14v max|diff| %.3g  max scaled diff %.3g", what, want.Shape(), abs, scaled)
		if scaled > 1e-4 {
			t.Errorf("%s differs from ONNX Runtime by %.3g (scaled), over 1e-4", what, scaled)
		}
	}

	// The model as it is.
	outs := run(g)
	check(names[0], outs[0], files[0])
	final := append([]float32(nil), outs[0].Data().([]float32)...)

	// Intermediate tensors, as extra graph outputs.
	tapped, err := onnx.Decode(mustEncode(t, g))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names[1:] {
		tapped.Outputs = append(tapped.Outputs, model.ValueInfo{Name: n})
	}
	touts := run(tapped)
	for i := 1; i < len(names); i++ {
		check(names[i], touts[i], files[i])
	}

	// Export and re-import give the same result, bit for bit.
	again, err := onnx.Decode(mustEncode(t, g))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range run(again)[0].Data().([]float32) {
		if v != final[i] {
			t.Fatalf("after Encode/Decode, output %d = %v, was %v", i, v, final[i])
		}
	}
}

func mustEncode(t testing.TB, g *model.Graph) []byte {
	t.Helper()
	b, err := onnx.Encode(g)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPPOCRPiecesAreExact cuts the real PP-OCR classifier at every K of its
// canonical order and checks that the head, then the tail on the boundary
// tensors, gives the unsplit output bit for bit.
func TestPPOCRPiecesAreExact(t *testing.T) {
	piecesAreExact(t, ppocrModel, readNpy(t, "testdata/ppocr/x.npy"))
}

// TestPPOCRRecPiecesAreExact does the same for the PP-OCRv4 recogniser, whose
// cuts include the attention blocks (boundaries of one or several tensors:
// the residual stream, Q/K/V, attention probabilities). The input is a
// narrower 1×3×48×96 line (12 tokens) to keep the ~400 cuts quick.
func TestPPOCRRecPiecesAreExact(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: ~400 compiled head/tail pairs")
	}
	piecesAreExact(t, ppocrRecModel, model.UniformTensor([]int{1, 3, 48, 96}, 16))
}

// TestPPOCRDetPiecesAreExact does the same for the PP-OCRv4 detector, on
// a 1×3×64×96 input.
func TestPPOCRDetPiecesAreExact(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a compiled head/tail pair per node")
	}
	piecesAreExact(t, ppocrDetModel, model.UniformTensor([]int{1, 3, 64, 96}, 17))
}

// piecesAreExact cuts the cached model, with its input shape fixed to x's,
// at every K and compares head-then-tail with the unsplit run bit for bit.
func piecesAreExact(t *testing.T, modelFile string, x *tensor.Dense) {
	path := cachedModel(t, modelFile)
	g, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := model.Simplify(g, map[string][]int{g.Inputs[0].Name: x.Shape().Clone()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	net, err := model.Compile(sg, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := net.NewExtractor().Run(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), ref[0].Data().([]float32)...)
	multi := 0
	for k := 0; k <= len(sg.Nodes); k++ {
		r, err := partition.NewRunner(sg, k, model.Options{})
		if err != nil {
			t.Fatalf("K=%d: %v", k, err)
		}
		if len(r.Tail().Graph.Inputs) > 1 {
			multi++
		}
		outs, _, err := r.Run(ctx, x)
		if err != nil {
			t.Fatalf("K=%d: %v", k, err)
		}
		got := outs[0].Data().([]float32)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("K=%d: output[%d] = %v, unsplit %v", k, i, got[i], want[i])
			}
		}
	}
	t.Logf("%s: head-then-tail bit-identical to the unsplit run at all %d cut positions (%d with a multi-tensor boundary)",
		modelFile, len(sg.Nodes)+1, multi)
}

// TestPPOCRRecRunAllocatesNothing checks that a steady-state run of the
// PP-OCRv4 recogniser (attention included) allocates nothing, single- and
// multi-threaded.
func TestPPOCRRecRunAllocatesNothing(t *testing.T) {
	g, err := onnx.Load(cachedModel(t, ppocrRecModel))
	if err != nil {
		t.Fatal(err)
	}
	x := readNpy(t, "testdata/ppocr_rec/x.npy")
	sg, err := model.Simplify(g, map[string][]int{g.Inputs[0].Name: x.Shape().Clone()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, threads := range []int{1, 2} {
		net, err := model.Compile(sg, model.Options{Threads: threads})
		if err != nil {
			t.Fatal(err)
		}
		ex := net.NewExtractor()
		if _, err := ex.Run(ctx, x); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(3, func() {
			if _, err := ex.Run(ctx, x); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%d threads: Run allocates %v times per run, want 0", threads, allocs)
		}
		if err := net.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
