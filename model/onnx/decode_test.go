package onnx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgesplit/edgesplit/model/onnx/internal/onnxpb"
)

// protoModel builds a ModelProto around nodes, with one float input x of
// shape [1 2] and one output y.
func protoModel(opset int64, nodes []*onnxpb.NodeProto, inits ...*onnxpb.TensorProto) *onnxpb.ModelProto {
	vi := func(name string) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: ptr(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: ptr(int32(1)), Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
				{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}},
				{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 2}},
			}}}}}}
	}
	return &onnxpb.ModelProto{
		IrVersion:   ptr(int64(7)),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: ptr(""), Version: ptr(opset)}},
		Graph: &onnxpb.GraphProto{
			Name:        ptr("t"),
			Node:        nodes,
			Initializer: inits,
			Input:       []*onnxpb.ValueInfoProto{vi("x")},
			Output:      []*onnxpb.ValueInfoProto{vi("y")},
		},
	}
}

func node(op string, in []string, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: ptr(op), Input: in, Output: out, Attribute: attrs}
}

func marshal(t testing.TB, m *onnxpb.ModelProto) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rawF32(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func TestDecodeBasics(t *testing.T) {
	w := &onnxpb.TensorProto{Name: ptr("w"), Dims: []int64{2}, DataType: ptr(int32(onnxpb.TensorProto_FLOAT)), RawData: rawF32(1.5, -2)}
	m := protoModel(13, []*onnxpb.NodeProto{
		node("Add", []string{"x", "w"}, []string{"a"}),
		node("Relu", []string{"a"}, []string{"y"}),
	}, w)
	// w is also listed as a graph input (IR < 4 style): it is no input.
	m.Graph.Input = append(m.Graph.Input, &onnxpb.ValueInfoProto{Name: ptr("w")})
	g, err := Decode(marshal(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Inputs) != 1 || g.Inputs[0].Name != "x" || !reflect.DeepEqual(g.Inputs[0].Shape, []int{-1, 2}) {
		t.Errorf("inputs %+v, want x [-1 2]", g.Inputs)
	}
	if g.OpsetVersion != 13 {
		t.Errorf("opset %d", g.OpsetVersion)
	}
	if got := g.Initializers["w"].Data().([]float32); !reflect.DeepEqual(got, []float32{1.5, -2}) {
		t.Errorf("w = %v", got)
	}
	if g.Nodes[0].Name != "Add_0" || g.Nodes[1].Name != "Relu_1" {
		t.Errorf("generated names %q %q", g.Nodes[0].Name, g.Nodes[1].Name)
	}
}

func TestDecodeTensorTypes(t *testing.T) {
	le := binary.LittleEndian
	f64 := le.AppendUint64(nil, math.Float64bits(0.25))
	f64 = le.AppendUint64(f64, math.Float64bits(-3))
	i32 := le.AppendUint32(nil, uint32(0xffffffff)) // -1
	i32 = le.AppendUint32(i32, 7)
	tests := []struct {
		name string
		tp   *onnxpb.TensorProto
		want any
	}{
		{"float typed", &onnxpb.TensorProto{DataType: ptr(int32(1)), Dims: []int64{2}, FloatData: []float32{1, 2}}, []float32{1, 2}},
		{"float raw", &onnxpb.TensorProto{DataType: ptr(int32(1)), Dims: []int64{2}, RawData: rawF32(3, 4)}, []float32{3, 4}},
		{"float16 raw", &onnxpb.TensorProto{DataType: ptr(int32(10)), Dims: []int64{3}, RawData: []byte{0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00}}, []float32{1, -2, float32(math.Ldexp(1, -24))}},
		{"float16 typed", &onnxpb.TensorProto{DataType: ptr(int32(10)), Dims: []int64{2}, Int32Data: []int32{0x3800, 0x7c00}}, []float32{0.5, float32(math.Inf(1))}},
		{"bfloat16 raw", &onnxpb.TensorProto{DataType: ptr(int32(16)), Dims: []int64{1}, RawData: []byte{0x80, 0x3f}}, []float32{1}},
		{"double raw", &onnxpb.TensorProto{DataType: ptr(int32(11)), Dims: []int64{2}, RawData: f64}, []float32{0.25, -3}},
		{"double typed", &onnxpb.TensorProto{DataType: ptr(int32(11)), Dims: []int64{1}, DoubleData: []float64{1e-3}}, []float32{1e-3}},
		{"int64 typed", &onnxpb.TensorProto{DataType: ptr(int32(7)), Dims: []int64{2}, Int64Data: []int64{-1, 1 << 40}}, []int64{-1, 1 << 40}},
		{"int32 raw", &onnxpb.TensorProto{DataType: ptr(int32(6)), Dims: []int64{2}, RawData: i32}, []int64{-1, 7}},
		{"int8 raw", &onnxpb.TensorProto{DataType: ptr(int32(3)), Dims: []int64{2}, RawData: []byte{0xff, 5}}, []int64{-1, 5}},
		{"uint8 typed", &onnxpb.TensorProto{DataType: ptr(int32(2)), Dims: []int64{1}, Int32Data: []int32{200}}, []int64{200}},
		{"bool raw", &onnxpb.TensorProto{DataType: ptr(int32(9)), Dims: []int64{3}, RawData: []byte{0, 1, 2}}, []int64{0, 1, 1}},
		{"uint64 typed", &onnxpb.TensorProto{DataType: ptr(int32(13)), Dims: []int64{1}, Uint64Data: []uint64{9}}, []int64{9}},
		{"2-D", &onnxpb.TensorProto{DataType: ptr(int32(1)), Dims: []int64{2, 1}, FloatData: []float32{1, 2}}, []float32{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := decodeTensor(tc.tp)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d.Data(), tc.want) {
				t.Fatalf("got %v, want %v", d.Data(), tc.want)
			}
		})
	}
	// A scalar.
	d, err := decodeTensor(&onnxpb.TensorProto{DataType: ptr(int32(1)), FloatData: []float32{6}})
	if err != nil || !d.IsScalar() || d.Data().(float32) != 6 {
		t.Fatalf("scalar: %v %v", d, err)
	}
}

func TestHalfToFloat32Exhaustive(t *testing.T) {
	// Every finite half converts exactly: check against the definition.
	for h := 0; h < 1<<16; h++ {
		f := halfToFloat32(uint16(h))
		exp := (h >> 10) & 0x1f
		mant := h & 0x3ff
		var want float64
		switch {
		case exp == 0x1f:
			if mant == 0 && !math.IsInf(float64(f), 0) || mant != 0 && !math.IsNaN(float64(f)) {
				t.Fatalf("%#04x: %v, want inf/nan", h, f)
			}
			continue
		case exp == 0:
			want = math.Ldexp(float64(mant), -24)
		default:
			want = math.Ldexp(float64(mant|0x400), exp-25)
		}
		if h&0x8000 != 0 {
			want = -want
		}
		if float64(f) != want {
			t.Fatalf("%#04x: %v, want %v", h, f, want)
		}
	}
}

func TestConstantNodes(t *testing.T) {
	attr := func(name string, a *onnxpb.AttributeProto) *onnxpb.AttributeProto { a.Name = ptr(name); return a }
	m := protoModel(13, []*onnxpb.NodeProto{
		node("Constant", nil, []string{"c1"}, attr("value", &onnxpb.AttributeProto{Type: ptr(onnxpb.AttributeProto_TENSOR),
			T: &onnxpb.TensorProto{DataType: ptr(int32(1)), Dims: []int64{2}, FloatData: []float32{1, 2}}})),
		node("Constant", nil, []string{"c2"}, attr("value_float", &onnxpb.AttributeProto{Type: ptr(onnxpb.AttributeProto_FLOAT), F: ptr(float32(0.5))})),
		node("Constant", nil, []string{"c3"}, attr("value_ints", &onnxpb.AttributeProto{Type: ptr(onnxpb.AttributeProto_INTS), Ints: []int64{-1, 2}})),
		node("Constant", nil, []string{"c4"}, attr("value_int", &onnxpb.AttributeProto{Type: ptr(onnxpb.AttributeProto_INT), I: ptr(int64(3))})),
		node("Constant", nil, []string{"c5"}, attr("value_floats", &onnxpb.AttributeProto{Type: ptr(onnxpb.AttributeProto_FLOATS), Floats: []float32{4}})),
		node("Add", []string{"x", "c1"}, []string{"a"}),
		node("Mul", []string{"a", "c2"}, []string{"b"}),
		node("Reshape", []string{"b", "c3"}, []string{"y"}),
	})
	g, err := Decode(marshal(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 3 {
		t.Fatalf("%d nodes, want 3 (Constants folded into initializers)", len(g.Nodes))
	}
	for name, want := range map[string]any{"c1": []float32{1, 2}, "c2": float32(0.5), "c3": []int64{-1, 2}, "c4": int64(3), "c5": []float32{4}} {
		if got := g.Initializers[name]; got == nil || !reflect.DeepEqual(got.Data(), want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	k, err := Decode(marshal(t, m), WithConstantNodes(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Nodes) != 8 || k.Nodes[1].Attrs["value"].Tensor == nil {
		t.Fatalf("WithConstantNodes: %d nodes, want 8 with value tensors", len(k.Nodes))
	}
}

func TestResizeEmptyInputs(t *testing.T) {
	empty := &onnxpb.TensorProto{Name: ptr("roi"), DataType: ptr(int32(1)), Dims: []int64{0}}
	sizes := &onnxpb.TensorProto{Name: ptr("sizes"), DataType: ptr(int32(7)), Dims: []int64{2}, Int64Data: []int64{1, 4}}
	m := protoModel(13, []*onnxpb.NodeProto{node("Resize", []string{"x", "roi", "roi", "sizes"}, []string{"y"})}, empty, sizes)
	g, err := Decode(marshal(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"x", "", "", "sizes"}; !reflect.DeepEqual(g.Nodes[0].Inputs, want) {
		t.Fatalf("Resize inputs %q, want %q", g.Nodes[0].Inputs, want)
	}
	// Before opset 13 roi and scales are required: Encode writes an empty
	// tensor back for them (ONNX Runtime rejects "" there).
	for _, opset := range []int64{11, 13} {
		m = protoModel(opset, []*onnxpb.NodeProto{node("Resize", []string{"x", "roi", "roi", "sizes"}, []string{"y"})}, empty, sizes)
		g, err := Decode(marshal(t, m))
		if err != nil {
			t.Fatal(err)
		}
		data, err := Encode(g)
		if err != nil {
			t.Fatal(err)
		}
		var back onnxpb.ModelProto
		if err := proto.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		in := back.Graph.Node[0].Input
		if opset == 13 {
			if in[1] != "" || in[2] != "" {
				t.Errorf("opset 13: Resize inputs %q, want roi and scales omitted", in)
			}
			continue
		}
		if in[1] == "" || in[1] != in[2] {
			t.Fatalf("opset 11: Resize inputs %q, want one empty tensor for roi and scales", in)
		}
		found := false
		for _, init := range back.Graph.Initializer {
			if init.GetName() == in[1] {
				found = len(init.Dims) == 1 && init.Dims[0] == 0 && init.GetDataType() == 1
			}
		}
		if !found {
			t.Errorf("opset 11: no empty float initializer %q", in[1])
		}
		again, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again.Nodes[0].Inputs, []string{"x", "", "", "sizes"}) {
			t.Errorf("opset 11: re-decoded Resize inputs %q", again.Nodes[0].Inputs)
		}
	}
	m = protoModel(13, []*onnxpb.NodeProto{node("ReduceSum", []string{"x", "roi"}, []string{"y"})}, empty)
	if g, err = Decode(marshal(t, m)); err != nil {
		t.Fatalf("ReduceSum with empty axes: %v", err)
	}
	if g.Nodes[0].Inputs[1] != "" {
		t.Fatalf("ReduceSum with empty axes: inputs %q, want axes omitted", g.Nodes[0].Inputs)
	}
	m = protoModel(13, []*onnxpb.NodeProto{node("Reshape", []string{"x", "roi"}, []string{"y"})}, empty)
	if _, err := Decode(marshal(t, m)); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "roi") {
		t.Fatalf("empty shape tensor: err = %v, want ErrUnsupported naming roi", err)
	}
}

func TestLegacyBroadcast(t *testing.T) {
	// Opset 6: Add(x[N,2,3], b[2]) with broadcast=1, axis=1 means b per
	// channel; NumPy needs b as [2,1].
	b := &onnxpb.TensorProto{Name: ptr("b"), DataType: ptr(int32(1)), Dims: []int64{2}, FloatData: []float32{1, 2}}
	m := protoModel(6, []*onnxpb.NodeProto{node("Add", []string{"x", "b"}, []string{"y"},
		&onnxpb.AttributeProto{Name: ptr("broadcast"), Type: ptr(onnxpb.AttributeProto_INT), I: ptr(int64(1))},
		&onnxpb.AttributeProto{Name: ptr("axis"), Type: ptr(onnxpb.AttributeProto_INT), I: ptr(int64(1))},
	)}, b)
	m.Graph.Input[0].Type.GetTensorType().Shape.Dim = append(m.Graph.Input[0].Type.GetTensorType().Shape.Dim,
		&onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 3}})
	g, err := Decode(marshal(t, m), WithLogger(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))))
	if err != nil {
		t.Fatal(err)
	}
	n := g.Nodes[0]
	if len(n.Attrs) != 0 {
		t.Errorf("legacy attributes kept: %v", n.Attrs)
	}
	if s := g.Initializers[n.Inputs[1]].Shape(); !reflect.DeepEqual([]int(s), []int{2, 1}) {
		t.Errorf("b reshaped to %v, want [2 1]", s)
	}
}

func TestOpsetWarning(t *testing.T) {
	for _, tc := range []struct {
		opset int64
		warn  bool
	}{{MaxOpset + 1, true}, {MaxOpset, false}, {20, false}, {MinOpset, false}, {MinOpset - 1, true}} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, nil))
		m := protoModel(tc.opset, []*onnxpb.NodeProto{node("Relu", []string{"x"}, []string{"y"})})
		if _, err := Decode(marshal(t, m), WithLogger(log)); err != nil {
			t.Fatal(err)
		}
		if warned := strings.Contains(buf.String(), fmt.Sprintf("opset=%d", tc.opset)); warned != tc.warn {
			t.Errorf("opset %d: warned %v, want %v; log: %q", tc.opset, warned, tc.warn, buf.String())
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	relu := func() []*onnxpb.NodeProto { return []*onnxpb.NodeProto{node("Relu", []string{"x"}, []string{"y"})} }
	mod := func(f func(m *onnxpb.ModelProto)) []byte {
		m := protoModel(13, relu())
		f(m)
		return marshal(t, m)
	}
	withInit := func(tp *onnxpb.TensorProto) []byte {
		tp.Name = ptr("w")
		return mod(func(m *onnxpb.ModelProto) {
			m.Graph.Initializer = []*onnxpb.TensorProto{tp}
			m.Graph.Node = []*onnxpb.NodeProto{node("Add", []string{"x", "w"}, []string{"y"})}
		})
	}
	good := marshal(t, protoModel(13, relu()))
	tests := []struct {
		name string
		data []byte
		opts []Option
		want error
		says string
	}{
		{"empty", nil, nil, ErrMalformed, "empty"},
		{"garbage", []byte("this is not a protobuf \xff\xff\xff"), nil, ErrMalformed, ""},
		{"truncated", good[:len(good)-3], nil, ErrMalformed, ""},
		{"over cap", good, []Option{WithMaxBytes(10)}, ErrTooLarge, "cap"},
		{"no graph", mod(func(m *onnxpb.ModelProto) { m.Graph = nil }), nil, ErrMalformed, "no graph"},
		{"no opset", mod(func(m *onnxpb.ModelProto) { m.OpsetImport = nil }), nil, ErrMalformed, "opset"},
		{"other domain", mod(func(m *onnxpb.ModelProto) { m.Graph.Node[0].Domain = ptr("com.microsoft") }), nil, ErrUnsupported, "com.microsoft"},
		{"subgraph op", mod(func(m *onnxpb.ModelProto) { m.Graph.Node[0].OpType = ptr("If") }), nil, ErrUnsupported, "If"},
		{"graph attribute", mod(func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].Attribute = []*onnxpb.AttributeProto{{Name: ptr("body"), Type: ptr(onnxpb.AttributeProto_GRAPH), G: &onnxpb.GraphProto{}}}
		}), nil, ErrUnsupported, "subgraph"},
		{"dangling input", mod(func(m *onnxpb.ModelProto) { m.Graph.Node[0].Input = []string{"nowhere"} }), nil, ErrMalformed, "nowhere"},
		{"output never produced", mod(func(m *onnxpb.ModelProto) { m.Graph.Node[0].Output = []string{"z"} }), nil, ErrMalformed, "\"y\""},
		{"cycle", mod(func(m *onnxpb.ModelProto) {
			m.Graph.Node = []*onnxpb.NodeProto{node("Add", []string{"x", "b"}, []string{"a"}), node("Relu", []string{"a"}, []string{"b"}), node("Relu", []string{"a"}, []string{"y"})}
		}), nil, ErrMalformed, "cycle"},
		{"external data", withInit(&onnxpb.TensorProto{DataType: ptr(int32(1)), Dims: []int64{2}, DataLocation: ptr(onnxpb.TensorProto_EXTERNAL),
			ExternalData: []*onnxpb.StringStringEntryProto{{Key: ptr("location"), Value: ptr("weights.bin")}}}), nil, ErrExternalData, "weights.bin"},
		{"huge claim", withInit(&onnxpb.TensorProto{DataType: ptr(int32(1)), Dims: []int64{1000000, 1000000}, RawData: rawF32(1)}), nil, ErrTooLarge, "\"w\""},
		{"short data", withInit(&onnxpb.TensorProto{DataType: ptr(int32(1)), Dims: []int64{1000, 1000}, RawData: rawF32(1)}), nil, ErrMalformed, "1000000 elements"},
		{"overflowing dims", withInit(&onnxpb.TensorProto{DataType: ptr(int32(1)), Dims: []int64{1 << 62, 1 << 62, 4}, RawData: rawF32(1)}), nil, ErrTooLarge, ""},
		{"negative dim", withInit(&onnxpb.TensorProto{DataType: ptr(int32(1)), Dims: []int64{-1}, RawData: rawF32(1)}), nil, ErrMalformed, "negative"},
		{"ragged raw", withInit(&onnxpb.TensorProto{DataType: ptr(int32(1)), Dims: []int64{1}, RawData: []byte{1, 2, 3}}), nil, ErrMalformed, "multiple"},
		{"string tensor", withInit(&onnxpb.TensorProto{DataType: ptr(int32(8)), Dims: []int64{1}, StringData: [][]byte{[]byte("a")}}), nil, ErrUnsupported, "STRING"},
		{"duplicate initializer", mod(func(m *onnxpb.ModelProto) {
			tp := &onnxpb.TensorProto{Name: ptr("w"), DataType: ptr(int32(1)), FloatData: []float32{1}}
			m.Graph.Initializer = []*onnxpb.TensorProto{tp, tp}
		}), nil, ErrMalformed, "twice"},
		{"sparse initializer", mod(func(m *onnxpb.ModelProto) {
			m.Graph.SparseInitializer = []*onnxpb.SparseTensorProto{{Values: &onnxpb.TensorProto{Name: ptr("s")}}}
		}), nil, ErrUnsupported, "sparse"},
		{"sequence input", mod(func(m *onnxpb.ModelProto) {
			m.Graph.Input[0].Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_SequenceType{SequenceType: &onnxpb.TypeProto_Sequence{}}}
		}), nil, ErrUnsupported, "not a tensor"},
		{"no op type", mod(func(m *onnxpb.ModelProto) { m.Graph.Node[0].OpType = nil }), nil, ErrMalformed, "op_type"},
		{"typeless attribute", mod(func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].Attribute = []*onnxpb.AttributeProto{{Name: ptr("a")}}
		}), nil, ErrMalformed, "no type"},
		{"strings attribute", mod(func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].Attribute = []*onnxpb.AttributeProto{{Name: ptr("a"), Type: ptr(onnxpb.AttributeProto_STRINGS), Strings: [][]byte{[]byte("s")}}}
		}), nil, ErrUnsupported, "STRINGS"},
		{"bad constant", mod(func(m *onnxpb.ModelProto) {
			m.Graph.Node = append([]*onnxpb.NodeProto{node("Constant", nil, []string{"k"})}, m.Graph.Node...)
		}), nil, ErrMalformed, "Constant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Decode(tc.data, tc.opts...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v (graph %v), want %v", err, g, tc.want)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %q does not mention %q", err, tc.says)
			}
		})
	}
}

// TestTruncatedNeverPanics decodes every prefix of a real model (and of the
// sample graph): each is an error or a graph, never a panic.
func TestTruncatedNeverPanics(t *testing.T) {
	data, err := Encode(sampleGraph())
	if err != nil {
		t.Fatal(err)
	}
	files := [][]byte{data}
	if b, err := os.ReadFile(conformanceRoot + "/pytorch-converted/test_Conv2d/model.onnx"); err == nil {
		files = append(files, b)
	}
	for _, f := range files {
		for n := 0; n < len(f); n++ {
			if _, err := Decode(f[:n], quiet); err == nil && n < len(f)/2 {
				// Protobuf prefixes can be valid messages; they must
				// then still be consistent graphs, which Decode checked.
				continue
			}
		}
		// Single-byte corruptions.
		c := bytes.Clone(f)
		for i := 0; i < len(c); i += 7 {
			old := c[i]
			c[i] ^= 0xa5
			_, _ = Decode(c, quiet)
			c[i] = old
		}
	}
}

// quiet discards warnings (old opsets in the test data).
var quiet = WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/m.onnx"
	if err := Save(path, sampleGraph()); err != nil {
		t.Fatal(err)
	}
	g, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := graphDiff(sampleGraph(), g); d != "" {
		t.Fatal(d)
	}
	if _, err := Load(path, WithMaxBytes(16)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Load over cap: %v", err)
	}
	if _, err := Load(dir + "/missing.onnx"); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}
