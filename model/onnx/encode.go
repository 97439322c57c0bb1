package onnx

import (
	"fmt"
	"os"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/onnx/internal/onnxpb"
)

// ExportOpset is the default-domain opset Encode declares for a graph that
// does not carry its own (Graph.OpsetVersion == 0).
const ExportOpset = 13

// Save writes g to path as an ONNX model (see Encode).
func Save(path string, g *model.Graph) error {
	data, err := Encode(g)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("onnx: %w", err)
	}
	return nil
}

// Encode serializes g — a whole model or any piece of one — as a standalone
// ONNX model: IR version 7 (8 for opsets above 13), the graph's opset (or
// ExportOpset when it has none), initializers that nodes or outputs use as
// little-endian raw_data (float32 or int64), and value_info with element type
// and shape for each graph input and output (a -1 dimension is written as a
// symbolic one). Nodes are written in g's order, which must be topological;
// initializers are sorted by name so the output depends only on g.
func Encode(g *model.Graph) ([]byte, error) {
	if g == nil {
		return nil, fmt.Errorf("onnx: nil graph")
	}
	opset := g.OpsetVersion
	if opset <= 0 {
		opset = ExportOpset
	}
	ir := int64(7)
	if opset > 13 {
		ir = 8
	}
	gp := &onnxpb.GraphProto{Name: ptr(g.Name)}
	if g.Name == "" {
		gp.Name = ptr("edgesplit")
	}

	avail := map[string]bool{"": true}
	for _, in := range g.Inputs {
		avail[in.Name] = true
	}
	used := map[string]bool{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			used[in] = true
		}
	}
	for _, o := range g.Outputs {
		used[o.Name] = true
	}
	inits := make([]string, 0, len(g.Initializers))
	for name := range g.Initializers {
		if used[name] {
			inits = append(inits, name)
		}
		avail[name] = true
	}
	sort.Strings(inits)
	for _, name := range inits {
		tp, err := encodeTensor(name, g.Initializers[name])
		if err != nil {
			return nil, err
		}
		gp.Initializer = append(gp.Initializer, tp)
	}

	// emptyFloat names a zero-element float32 initializer, added once.
	empty := ""
	emptyFloat := func() string {
		if empty == "" {
			empty = "edgesplit.empty_float"
			for avail[empty] || used[empty] {
				empty += "_"
			}
			gp.Initializer = append(gp.Initializer, &onnxpb.TensorProto{Name: ptr(empty), Dims: []int64{0}, DataType: ptr(int32(onnxpb.TensorProto_FLOAT))})
			avail[empty] = true
		}
		return empty
	}
	for i, n := range g.Nodes {
		np := &onnxpb.NodeProto{
			Name:   ptr(n.Name),
			OpType: ptr(n.Op),
			Input:  append([]string(nil), n.Inputs...),
			Output: append([]string(nil), n.Outputs...),
		}
		for _, in := range n.Inputs {
			if !avail[in] {
				return nil, fmt.Errorf("onnx: node %d %s reads %q before anything produces it (graph not in topological order, or a piece missing an input)", i, n, in)
			}
		}
		for _, o := range n.Outputs {
			avail[o] = true
		}
		if n.Op == "Resize" && opset >= 11 && opset < 13 {
			// roi and scales are required inputs before opset 13 (an empty
			// tensor stands for "none"); Decode turns such empty constants
			// into "", so write one back.
			for k := 1; k <= 2 && k < len(np.Input); k++ {
				if np.Input[k] == "" {
					np.Input[k] = emptyFloat()
				}
			}
		}
		keys := make([]string, 0, len(n.Attrs))
		for k := range n.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ap, err := encodeAttr(k, n.Attrs[k])
			if err != nil {
				return nil, fmt.Errorf("onnx: node %s: %w", n, err)
			}
			np.Attribute = append(np.Attribute, ap)
		}
		gp.Node = append(gp.Node, np)
	}

	for _, in := range g.Inputs {
		gp.Input = append(gp.Input, valueInfo(g, in, onnxpb.TensorProto_FLOAT))
	}
	for _, o := range g.Outputs {
		if !avail[o.Name] {
			return nil, fmt.Errorf("onnx: graph output %q is not produced by any node, input or initializer", o.Name)
		}
		et := onnxpb.TensorProto_FLOAT
		if t, ok := g.Initializers[o.Name]; ok {
			if _, isInt := t.Data().([]int64); isInt {
				et = onnxpb.TensorProto_INT64
			}
		}
		gp.Output = append(gp.Output, valueInfo(g, o, et))
	}

	m := &onnxpb.ModelProto{
		IrVersion:    ptr(ir),
		ProducerName: ptr("edgesplit"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: ptr(""), Version: ptr(opset)}},
		Graph:        gp,
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	return data, nil
}

// valueInfo describes a graph input or output: its own shape, or the
// inferred one from g.Shapes, or none.
func valueInfo(g *model.Graph, v model.ValueInfo, et onnxpb.TensorProto_DataType) *onnxpb.ValueInfoProto {
	shape := v.Shape
	if shape == nil {
		shape = g.Shapes[v.Name]
	}
	tt := &onnxpb.TypeProto_Tensor{ElemType: ptr(int32(et))}
	if shape != nil {
		sp := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{}}
		for i, d := range shape {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			if d < 0 {
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: fmt.Sprintf("%s_d%d", v.Name, i)}
			} else {
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
			}
			sp.Dim = append(sp.Dim, dim)
		}
		tt.Shape = sp
	}
	return &onnxpb.ValueInfoProto{
		Name: ptr(v.Name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}},
	}
}

func encodeAttr(name string, a model.Attribute) (*onnxpb.AttributeProto, error) {
	ap := &onnxpb.AttributeProto{Name: ptr(name)}
	switch a.Kind {
	case model.AttrInt:
		ap.Type, ap.I = ptr(onnxpb.AttributeProto_INT), ptr(a.Int)
	case model.AttrFloat:
		ap.Type, ap.F = ptr(onnxpb.AttributeProto_FLOAT), ptr(a.Float)
	case model.AttrString:
		ap.Type, ap.S = ptr(onnxpb.AttributeProto_STRING), []byte(a.String)
	case model.AttrInts:
		ap.Type, ap.Ints = ptr(onnxpb.AttributeProto_INTS), append([]int64(nil), a.Ints...)
	case model.AttrFloats:
		ap.Type, ap.Floats = ptr(onnxpb.AttributeProto_FLOATS), append([]float32(nil), a.Floats...)
	case model.AttrTensor:
		if a.Tensor == nil {
			// A zero-element tensor (Decode's nil): written as float [0].
			ap.Type = ptr(onnxpb.AttributeProto_TENSOR)
			ap.T = &onnxpb.TensorProto{DataType: ptr(int32(onnxpb.TensorProto_FLOAT)), Dims: []int64{0}}
			return ap, nil
		}
		tp, err := encodeTensor("", a.Tensor)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", name, err)
		}
		tp.Name = nil
		ap.Type, ap.T = ptr(onnxpb.AttributeProto_TENSOR), tp
	default:
		return nil, fmt.Errorf("%w: attribute %q has kind %v", ErrUnsupported, name, a.Kind)
	}
	return ap, nil
}
