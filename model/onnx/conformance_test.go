package onnx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/onnx/internal/onnxpb"
)

// conformanceRoot is where Debian's libonnx-testdata puts ONNX's backend
// test cases; EDGESPLIT_ONNX_TESTDATA overrides it.
const conformanceRoot = "/usr/share/libonnx-testdata/data"

// conformanceSuites are the folders of the test data run here.
var conformanceSuites = []string{"node", "pytorch-converted", "pytorch-operator", "simple"}

// conformanceTol: a result a matches the reference b when
// |a-b| <= conformanceTol * max(1, |b|) (relative for |b| >= 1, absolute
// below), NaN matching NaN and infinities matching exactly.
const conformanceTol = 1e-4

// dataInputOps take activations at every input position; for other ops only
// input 0 is an activation and the rest are parameters (weights, shapes,
// pads, scales, clip bounds), which the harness bakes into initializers as a
// model exporter would.
var dataInputOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Concat": true, "MatMul": true,
	"Sum": true, "Max": true, "Min": true, "Mean": true,
}

type caseResult struct {
	suite, name string
	ops         []string
	status      string // "pass", "skip", "FAIL"
	why         string
}

// issueOps are the operators issue 2 names: each must pass at least one
// conformance case.
var issueOps = []string{
	"Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid",
	"Tanh", "LeakyRelu", "Add", "Mul", "Sub", "Div", "MaxPool", "AveragePool", "GlobalAveragePool",
	"GlobalMaxPool", "Concat", "Flatten", "Reshape", "Transpose", "Softmax", "Pad", "Resize", "Upsample",
	"ConvTranspose", "Identity", "Dropout", "Shape", "Gather", "Slice", "Unsqueeze", "Squeeze", "Cast",
	"Constant", "ConstantOfShape",
}

// vendoredConformance holds a subset of libonnx-testdata's cases, a few
// per supported operator, so that the conformance test means something on a
// machine without the package (see its README.md; -vendor-conformance
// rewrites it).
const vendoredConformance = "testdata/conformance"

// TestConformance runs ONNX's backend test cases whose operators the engine
// supports through Decode → model.Compile → Extractor.Run, and compares each
// output with ONNX's reference tensors within conformanceTol: the vendored
// subset always (every case there must pass), and the whole of Debian's
// libonnx-testdata when it is installed. It logs every case run, skipped
// (with why) or failed, and a summary line.
func TestConformance(t *testing.T) {
	supported := map[string]bool{}
	for _, op := range model.SupportedOps() {
		supported[op] = true
	}
	t.Run("vendored", func(t *testing.T) {
		results := runConformanceTree(vendoredConformance, supported)
		if len(results) < 50 {
			t.Fatalf("%d vendored cases under %s, want the subset its README.md lists", len(results), vendoredConformance)
		}
		reportConformance(t, results, true)
	})
	t.Run("libonnx-testdata", func(t *testing.T) {
		root := os.Getenv("EDGESPLIT_ONNX_TESTDATA")
		if root == "" {
			root = conformanceRoot
		}
		if _, err := os.Stat(root); err != nil {
			if *vendorConformance {
				t.Fatalf("-vendor-conformance needs the full set: %v", err)
			}
			t.Skipf("ONNX conformance data not found at %s (apt-get install libonnx-testdata, or set EDGESPLIT_ONNX_TESTDATA; the vendored subset ran): %v", root, err)
		}
		results := runConformanceTree(root, supported)
		if len(results) == 0 {
			t.Fatalf("no test cases under %s", root)
		}
		reportConformance(t, results, false)
		if *vendorConformance && !t.Failed() {
			writeVendoredConformance(t, root, results, supported)
		}
	})
}

// runConformanceTree runs every case of conformanceSuites under root.
func runConformanceTree(root string, supported map[string]bool) []caseResult {
	var results []caseResult
	for _, suite := range conformanceSuites {
		dirs, _ := filepath.Glob(filepath.Join(root, suite, "*", "model.onnx"))
		sort.Strings(dirs)
		for _, p := range dirs {
			dir := filepath.Dir(p)
			r := caseResult{suite: suite, name: filepath.Base(dir)}
			r.status, r.why, r.ops = runConformanceCase(dir, supported)
			results = append(results, r)
		}
	}
	return results
}

// reportConformance logs results and fails t for a failed case, or an
// operator of issueOps without a passing case; strict (the vendored subset,
// chosen from passing cases) also fails a skipped case.
func reportConformance(t *testing.T, results []caseResult, strict bool) {
	t.Helper()
	counts := map[string]int{}
	reasons := map[string]int{}
	var passed []string
	for _, r := range results {
		counts[r.status]++
		switch r.status {
		case "FAIL":
			t.Errorf("FAIL %s/%s: %s", r.suite, r.name, r.why)
		case "pass":
			passed = append(passed, r.suite+"/"+r.name)
		case "skip":
			if strict {
				t.Errorf("vendored case %s/%s skipped: %s", r.suite, r.name, r.why)
			} else {
				t.Logf("skip %s/%s: %s", r.suite, r.name, r.why)
			}
			reasons[skipClass(r.why)]++
		}
	}
	for _, p := range passed {
		t.Logf("pass %s", p)
	}
	// Per-op coverage of the operators the issue names.
	perOp := map[string]*[3]int{}
	for _, op := range issueOps {
		perOp[op] = new([3]int)
	}
	for _, r := range results {
		for _, op := range r.ops {
			c, ok := perOp[op]
			if !ok {
				continue
			}
			switch r.status {
			case "pass":
				c[0]++
			case "FAIL":
				c[1]++
			default:
				c[2]++
			}
		}
	}
	var cov []string
	for _, op := range issueOps {
		c := perOp[op]
		cov = append(cov, fmt.Sprintf("%s %d/%d/%d", op, c[0], c[1], c[2]))
		if c[0] == 0 {
			t.Errorf("op %s: no conformance case passes (%d failed, %d skipped)", op, c[1], c[2])
		}
	}
	t.Logf("per-op cases passed/failed/skipped (a case counts for every op in it): %s", strings.Join(cov, ", "))
	var rs []string
	for k, v := range reasons {
		rs = append(rs, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(rs)
	t.Logf("skip reasons: %s", strings.Join(rs, "; "))
	t.Logf("conformance summary: %d cases: %d run (%d passed, %d failed), %d skipped; tolerance |a-b| <= %g*max(1,|b|)",
		len(results), counts["pass"]+counts["FAIL"], counts["pass"], counts["FAIL"], counts["skip"], conformanceTol)
}

// skipClass shortens a skip reason for the summary.
func skipClass(why string) string {
	if strings.HasPrefix(why, "test_data_set_") {
		if i := strings.Index(why, ": "); i > 0 {
			why = why[i+2:]
		}
	}
	if i := strings.Index(why, ":"); i > 0 {
		return why[:i]
	}
	return why
}

// runConformanceCase runs one test case folder; it returns the status and a
// reason. A panic in the engine is a failure, not a crash of the whole test.
func runConformanceCase(dir string, supported map[string]bool) (status, why string, ops []string) {
	defer func() {
		if p := recover(); p != nil {
			status, why = "FAIL", fmt.Sprintf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	data, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return "FAIL", err.Error(), nil
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(data, &m); err != nil {
		return "FAIL", "reading model.onnx: " + err.Error(), nil
	}
	var missing []string
	for _, n := range m.GetGraph().GetNode() {
		op := n.GetOpType()
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			op = d + "." + op
		}
		if !contains(ops, op) {
			ops = append(ops, op)
		}
		if !supported[op] && !contains(missing, op) {
			missing = append(missing, op)
		}
	}
	if len(missing) > 0 {
		return "skip", "op not supported by the engine: " + strings.Join(missing, ","), ops
	}
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	if len(sets) == 0 {
		return "skip", "no test_data_set", ops
	}
	sort.Strings(sets)
	for _, set := range sets {
		st, why := runConformanceSet(&m, set)
		if st != "pass" {
			return st, filepath.Base(set) + ": " + why, ops
		}
	}
	return "pass", "", ops
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func readTensorPB(path string) (*onnxpb.TensorProto, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(b, &tp); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &tp, nil
}

func runConformanceSet(orig *onnxpb.ModelProto, set string) (string, string) {
	m := proto.Clone(orig).(*onnxpb.ModelProto)
	gp := m.GetGraph()
	inits := map[string]bool{}
	for _, tp := range gp.GetInitializer() {
		inits[tp.GetName()] = true
	}
	var graphInputs []*onnxpb.ValueInfoProto
	for _, vi := range gp.GetInput() {
		if !inits[vi.GetName()] {
			graphInputs = append(graphInputs, vi)
		}
	}
	for _, vi := range append(append([]*onnxpb.ValueInfoProto{}, graphInputs...), gp.GetOutput()...) {
		if vi.GetType().GetTensorType() == nil {
			return "skip", fmt.Sprintf("non-tensor graph value %q (optional/sequence type)", vi.GetName())
		}
	}
	// Input tensors, in graph input order.
	inPB := map[string]*onnxpb.TensorProto{}
	for i, vi := range graphInputs {
		tp, err := readTensorPB(filepath.Join(set, fmt.Sprintf("input_%d.pb", i)))
		if err != nil {
			return "skip", "reference input missing: " + err.Error()
		}
		inPB[vi.GetName()] = tp
	}
	// Training-mode Dropout with a non-zero ratio draws a random mask: no
	// implementation can reproduce the reference.
	for _, n := range gp.GetNode() {
		if n.GetOpType() != "Dropout" || len(n.GetInput()) < 3 || n.GetInput()[2] == "" {
			continue
		}
		value := func(name string) *onnxpb.TensorProto {
			if tp, ok := inPB[name]; ok {
				return tp
			}
			for _, tp := range gp.GetInitializer() {
				if tp.GetName() == name {
					return tp
				}
			}
			return nil
		}
		mode, err := decodeTensor(value(n.GetInput()[2]))
		if err != nil || fmt.Sprint(mode.Data()) == "0" || fmt.Sprint(mode.Data()) == "[0]" {
			continue
		}
		ratio := "0.5"
		if r := n.GetInput()[1]; r != "" {
			if t, err := decodeTensor(value(r)); err == nil {
				ratio = fmt.Sprint(t.Data())
			}
		}
		if ratio != "0" && ratio != "[0]" {
			return "skip", "training-mode Dropout with ratio " + ratio + ": a random mask, not reproducible"
		}
	}
	// Which inputs stay runtime inputs: float data (float32, or double run
	// in float32) at activation positions, consumed by some node.
	paramUse := map[string]bool{}
	used := map[string]bool{}
	hasCast := false
	for _, n := range gp.GetNode() {
		hasCast = hasCast || n.GetOpType() == "Cast" || n.GetOpType() == "CastLike"
		for k, in := range n.GetInput() {
			used[in] = true
			if k > 0 && !dataInputOps[n.GetOpType()] {
				paramUse[in] = true
			}
		}
	}
	isFloat := func(dt int32) bool {
		return dt == int32(onnxpb.TensorProto_FLOAT) || !hasCast && dt == int32(onnxpb.TensorProto_DOUBLE)
	}
	var keep []*onnxpb.ValueInfoProto
	for _, vi := range graphInputs {
		tp := inPB[vi.GetName()]
		if !used[vi.GetName()] {
			continue // dropped: no node reads it
		}
		if paramUse[vi.GetName()] || !isFloat(tp.GetDataType()) {
			c := proto.Clone(tp).(*onnxpb.TensorProto)
			c.Name = ptr(vi.GetName())
			// ONNX's test data stores bfloat16 inputs as UINT16 bit
			// patterns; take the type the graph declares when the width
			// agrees.
			if et := vi.GetType().GetTensorType().GetElemType(); et != 0 && et != c.GetDataType() &&
				rawSize(onnxpb.TensorProto_DataType(et)) == rawSize(onnxpb.TensorProto_DataType(c.GetDataType())) {
				c.DataType = ptr(et)
			}
			gp.Initializer = append(gp.Initializer, c)
			continue
		}
		keep = append(keep, vi)
	}
	gp.Input = keep
	var outPB []*onnxpb.TensorProto
	intOutput := false
	for i, vi := range gp.GetOutput() {
		tp, err := readTensorPB(filepath.Join(set, fmt.Sprintf("output_%d.pb", i)))
		if err != nil {
			return "skip", "reference output missing: " + err.Error()
		}
		switch dt := onnxpb.TensorProto_DataType(tp.GetDataType()); {
		case isFloat(int32(dt)):
		case dt == onnxpb.TensorProto_FLOAT16 || dt == onnxpb.TensorProto_BFLOAT16 || dt == onnxpb.TensorProto_DOUBLE:
			return "skip", fmt.Sprintf("output dtype %s: the engine computes in float32 only (output %q)", dt, vi.GetName())
		case rawSize(dt) == 0:
			return "skip", fmt.Sprintf("output dtype %s: not a number (output %q)", dt, vi.GetName())
		default:
			// Integer and bool outputs (shape arithmetic) are compared
			// by value when the engine accepts them.
			intOutput = true
		}
		outPB = append(outPB, tp)
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return "FAIL", err.Error()
	}
	g, err := Decode(data, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		if errors.Is(err, ErrUnsupported) {
			return "skip", "import: " + err.Error()
		}
		return "FAIL", "Decode: " + err.Error()
	}
	net, err := model.Compile(g, model.Options{})
	if err != nil {
		if errors.Is(err, model.ErrUnsupportedOp) {
			return "skip", "engine refuses this configuration: " + err.Error()
		}
		if intOutput {
			return "skip", "integer output refused: the engine's graph outputs are float32 (" + err.Error() + ")"
		}
		return "FAIL", "Compile: " + err.Error()
	}
	var inputs []*tensor.Dense
	for _, vi := range net.Inputs() {
		tp, ok := inPB[vi.Name]
		if !ok {
			return "FAIL", fmt.Sprintf("Net input %q is not a graph input", vi.Name)
		}
		x, err := decodeTensor(tp)
		if err != nil {
			if errors.Is(err, errEmpty) {
				return "skip", fmt.Sprintf("empty tensor: input %q has zero elements", vi.Name)
			}
			return "FAIL", fmt.Sprintf("input %q: %v", vi.Name, err)
		}
		inputs = append(inputs, x)
	}
	outs, err := net.NewExtractor().Run(context.Background(), inputs...)
	if err != nil {
		return "FAIL", "Run: " + err.Error()
	}
	if len(outs) != len(outPB) {
		return "FAIL", fmt.Sprintf("%d outputs, want %d", len(outs), len(outPB))
	}
	for i, want := range outPB {
		w, err := decodeTensor(want)
		if err != nil {
			if errors.Is(err, errEmpty) {
				return "skip", "empty tensor: reference output has zero elements"
			}
			return "FAIL", err.Error()
		}
		if msg := compareDense(outs[i], w); msg != "" {
			return "FAIL", fmt.Sprintf("output %d %q: %s", i, net.Outputs()[i].Name, msg)
		}
	}
	return "pass", ""
}

// denseValues returns the data of t as float64 (a scalar as one value with
// an empty shape), or nil for non-numeric data.
func denseValues(t *tensor.Dense) ([]float64, []int) {
	var shape []int
	if !t.IsScalar() {
		shape = append(shape, t.Shape()...)
	}
	n := 1
	for _, s := range shape {
		n *= s
	}
	var r []float64
	switch d := t.Data().(type) {
	case []float32:
		for _, v := range d {
			r = append(r, float64(v))
		}
	case float32:
		r = []float64{float64(d)}
	case []int64:
		for _, v := range d {
			r = append(r, float64(v))
		}
	case int64:
		r = []float64{float64(d)}
	default:
		return nil, shape
	}
	if n <= len(r) {
		r = r[:n]
	}
	return r, shape
}

// compareDense returns "" when got matches want within conformanceTol, or
// what differs.
func compareDense(got, want *tensor.Dense) string {
	g, gs := denseValues(got)
	w, ws := denseValues(want)
	if g == nil {
		return fmt.Sprintf("output holds %v, want float32 or int64", got.Dtype())
	}
	if !sameShape(gs, ws) {
		return fmt.Sprintf("shape %v, want %v", gs, ws)
	}
	worst, at := 0.0, -1
	for i := range w {
		a, b := g[i], w[i]
		if math.IsNaN(b) || math.IsInf(b, 0) {
			if !(math.IsNaN(a) && math.IsNaN(b)) && a != b {
				return fmt.Sprintf("element %d = %v, want %v", i, a, b)
			}
			continue
		}
		d := math.Abs(a-b) / math.Max(1, math.Abs(b))
		if math.IsNaN(d) || d > worst {
			worst, at = d, i
			if math.IsNaN(d) {
				worst = math.Inf(1)
			}
		}
	}
	if worst > conformanceTol {
		return fmt.Sprintf("element %d (of %d) = %v, want %v (scaled diff %.3g > %g)", at, len(w), g[at], w[at], worst, conformanceTol)
	}
	return ""
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
