package onnx

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/onnx/internal/onnxpb"
)

// The default-domain opset versions edgesplit is tested against: 9–17 by
// the ONNX 1.12 conformance suite (Debian libonnx-testdata), 18–20 by the
// engine's tests of the forms those opsets changed (axes as inputs of the
// reductions and Pad, Split's num_outputs, AveragePool dilations, Gelu)
// and by ONNX Runtime parity on the opset-20 transformers the trainer
// exports. Models outside the range are still tried, with a warning; for
// opsets before 7 the few node forms that changed (legacy broadcast
// attributes) are translated.
const (
	MinOpset = 9
	MaxOpset = 20
)

// subgraphOps are control-flow operators whose bodies are subgraphs.
var subgraphOps = map[string]bool{"If": true, "Loop": true, "Scan": true, "SequenceMap": true}

// Load reads and decodes the ONNX model file at path. The file size is
// checked against the cap (WithMaxBytes) before it is read.
func Load(path string, opts ...Option) (*model.Graph, error) {
	c := newConfig(opts)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > c.maxBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes, over the %d-byte cap", ErrTooLarge, path, st.Size(), c.maxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, c.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("onnx: reading %s: %w", path, err)
	}
	g, err := Decode(data, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// Decode parses a serialized ONNX ModelProto into a model.Graph.
//
// Initializers and Constant nodes become Graph.Initializers (float32 or
// int64); graph inputs that are also initializers are not listed in
// Graph.Inputs; symbolic or missing input dimensions become -1. Nodes are put
// in canonical topological order (model.Graph.Sort); nodes without a name get
// one made of their op type and position ("Conv_3"). Graph.Shapes is left
// empty for the engine's shape inference.
//
// Errors wrap ErrMalformed, ErrUnsupported, ErrExternalData or ErrTooLarge
// and name the node, tensor or field at fault.
func Decode(data []byte, opts ...Option) (*model.Graph, error) {
	c := newConfig(opts)
	if int64(len(data)) > c.maxBytes {
		return nil, fmt.Errorf("%w: model is %d bytes, over the %d-byte cap", ErrTooLarge, len(data), c.maxBytes)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrMalformed)
	}
	var m onnxpb.ModelProto
	if err := (proto.UnmarshalOptions{RecursionLimit: maxRecursion}).Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return fromModel(&m, &c)
}

func fromModel(m *onnxpb.ModelProto, c *config) (*model.Graph, error) {
	if m.Graph == nil {
		return nil, fmt.Errorf("%w: no graph (is this an ONNX model file?)", ErrMalformed)
	}
	opset := int64(-1)
	domains := map[string]int64{}
	for _, o := range m.GetOpsetImport() {
		d := o.GetDomain()
		if d == "ai.onnx" {
			d = ""
		}
		domains[d] = o.GetVersion()
		if d == "" {
			opset = o.GetVersion()
		}
	}
	switch {
	case opset < 0:
		if len(m.GetOpsetImport()) == 0 && m.GetIrVersion() < 3 {
			// IR versions 1 and 2 predate opset_import and mean opset 1.
			opset = 1
		} else {
			return nil, fmt.Errorf("%w: no opset_import entry for the default ONNX domain", ErrMalformed)
		}
	}
	if opset < MinOpset {
		// Older opsets are mostly the same for CNN operators; the forms that
		// differ are translated by upgradeLegacy or left to the engine.
		c.logger.Warn("onnx: opset older than tested; trying anyway", "opset", opset, "min_tested", MinOpset)
	}
	if opset > MaxOpset {
		c.logger.Warn("onnx: opset newer than tested; trying anyway", "opset", opset, "max_tested", MaxOpset)
	}
	if len(m.GetFunctions()) > 0 {
		c.logger.Warn("onnx: model-local functions are ignored", "count", len(m.GetFunctions()))
	}
	gp := m.Graph
	g := model.NewGraph(gp.GetName())
	g.OpsetVersion = opset

	if len(gp.GetSparseInitializer()) > 0 {
		return nil, fmt.Errorf("%w: sparse initializer %q", ErrUnsupported, gp.GetSparseInitializer()[0].GetValues().GetName())
	}
	// empties holds the names of zero-element constants: edgesplit cannot
	// represent them as tensors; where they stand for an omitted optional
	// input (Resize's roi and scales) they are replaced by "".
	empties := map[string]bool{}
	addConst := func(name string, t *tensor.Dense, err error, what string) error {
		if name == "" {
			return fmt.Errorf("%w: %s without a name", ErrMalformed, what)
		}
		if g.IsInitializer(name) || empties[name] {
			return fmt.Errorf("%w: %s %q is defined twice", ErrMalformed, what, name)
		}
		if errors.Is(err, errEmpty) {
			empties[name] = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		g.Initializers[name] = t
		return nil
	}
	for _, tp := range gp.GetInitializer() {
		t, err := decodeTensor(tp)
		if err := addConst(tp.GetName(), t, err, "initializer"); err != nil {
			return nil, err
		}
	}
	for _, vi := range gp.GetInput() {
		name := vi.GetName()
		if name == "" {
			return nil, fmt.Errorf("%w: graph input without a name", ErrMalformed)
		}
		if g.IsInitializer(name) || empties[name] {
			continue // an initializer with a default value (IR < 4 style)
		}
		shape, err := valueShape(vi)
		if err != nil {
			return nil, err
		}
		g.Inputs = append(g.Inputs, model.ValueInfo{Name: name, Shape: shape})
	}
	for _, vi := range gp.GetOutput() {
		shape, err := valueShape(vi)
		if err != nil {
			return nil, err
		}
		if vi.GetName() == "" {
			return nil, fmt.Errorf("%w: graph output without a name", ErrMalformed)
		}
		g.Outputs = append(g.Outputs, model.ValueInfo{Name: vi.GetName(), Shape: shape})
	}

	names := map[string]bool{}
	for _, np := range gp.GetNode() {
		if np.GetName() != "" {
			names[np.GetName()] = true
		}
	}
	for i, np := range gp.GetNode() {
		op := np.GetOpType()
		desc := fmt.Sprintf("node %d %q (%s)", i, np.GetName(), op)
		if op == "" {
			return nil, fmt.Errorf("%w: %s has no op_type", ErrMalformed, desc)
		}
		if d := np.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, fmt.Errorf("%w: %s is in operator domain %q; edgesplit runs only the default ONNX domain", ErrUnsupported, desc, d)
		}
		if subgraphOps[op] {
			return nil, fmt.Errorf("%w: %s has subgraphs (control flow), which edgesplit does not run", ErrUnsupported, desc)
		}
		n := &model.Node{
			Name:    np.GetName(),
			Op:      op,
			Inputs:  append([]string(nil), np.GetInput()...),
			Outputs: append([]string(nil), np.GetOutput()...),
		}
		if n.Name == "" {
			base := op + "_" + strconv.Itoa(i)
			name := base
			for k := 1; names[name]; k++ {
				name = base + "_" + strconv.Itoa(k)
			}
			names[name] = true
			n.Name = name
		}
		if len(np.GetAttribute()) > 0 {
			n.Attrs = make(map[string]model.Attribute, len(np.GetAttribute()))
		}
		for _, ap := range np.GetAttribute() {
			a, err := decodeAttr(ap)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", desc, err)
			}
			if _, dup := n.Attrs[ap.GetName()]; dup {
				return nil, fmt.Errorf("%w: %s has attribute %q twice", ErrMalformed, desc, ap.GetName())
			}
			n.Attrs[ap.GetName()] = a
		}
		if op == "Constant" {
			done, err := constantNode(g, n, c.keepConstants, empties, addConst)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", desc, err)
			}
			if done {
				continue
			}
		}
		g.Nodes = append(g.Nodes, n)
	}

	// Zero-element constants: only where an empty tensor means the same as
	// an omitted optional input (Resize's roi and scales, the axes of the
	// Reduce ops), where they become "".
	if len(empties) > 0 {
		for _, n := range g.Nodes {
			for k, in := range n.Inputs {
				if !empties[in] {
					continue
				}
				if n.Op == "Resize" && (k == 1 || k == 2) || strings.HasPrefix(n.Op, "Reduce") && k == 1 {
					n.Inputs[k] = ""
					continue
				}
				return nil, fmt.Errorf("%w: node %s reads tensor %q, which has zero elements; edgesplit cannot represent empty tensors", ErrUnsupported, n, in)
			}
		}
		for _, o := range g.Outputs {
			if empties[o.Name] {
				return nil, fmt.Errorf("%w: graph output %q has zero elements", ErrUnsupported, o.Name)
			}
		}
	}

	if err := upgradeLegacy(g); err != nil {
		return nil, err
	}
	if err := g.Sort(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	produced := g.Producers()
	inputs := map[string]bool{}
	for _, in := range g.Inputs {
		inputs[in.Name] = true
	}
	for _, o := range g.Outputs {
		if _, ok := produced[o.Name]; !ok && !inputs[o.Name] && !g.IsInitializer(o.Name) {
			return nil, fmt.Errorf("%w: graph output %q is not produced by any node, input or initializer", ErrMalformed, o.Name)
		}
	}
	return g, nil
}

// constantNode turns a Constant node into an initializer (returning true) or,
// with keep, normalises its value into the "value" tensor attribute and
// keeps it (returning false).
func constantNode(g *model.Graph, n *model.Node, keep bool, empties map[string]bool,
	addConst func(string, *tensor.Dense, error, string) error) (bool, error) {
	if len(n.Outputs) != 1 || n.Outputs[0] == "" {
		return false, fmt.Errorf("%w: Constant must have exactly one output", ErrMalformed)
	}
	if len(n.Attrs) != 1 {
		return false, fmt.Errorf("%w: Constant must have exactly one value attribute, has %d", ErrMalformed, len(n.Attrs))
	}
	var t *tensor.Dense
	var err error
	for name, a := range n.Attrs {
		switch {
		case name == "value" && a.Kind == model.AttrTensor:
			t = a.Tensor
			if t == nil {
				err = errEmpty
			}
		case name == "value_float" && a.Kind == model.AttrFloat:
			t = tensor.New(tensor.WithShape(), tensor.WithBacking([]float32{a.Float}))
		case name == "value_floats" && a.Kind == model.AttrFloats:
			if len(a.Floats) == 0 {
				err = errEmpty
			} else {
				t = tensor.New(tensor.WithShape(len(a.Floats)), tensor.WithBacking(append([]float32(nil), a.Floats...)))
			}
		case name == "value_int" && a.Kind == model.AttrInt:
			t = tensor.New(tensor.WithShape(), tensor.WithBacking([]int64{a.Int}))
		case name == "value_ints" && a.Kind == model.AttrInts:
			if len(a.Ints) == 0 {
				err = errEmpty
			} else {
				t = tensor.New(tensor.WithShape(len(a.Ints)), tensor.WithBacking(append([]int64(nil), a.Ints...)))
			}
		default:
			return false, fmt.Errorf("%w: Constant attribute %q of kind %v", ErrUnsupported, name, a.Kind)
		}
	}
	if keep && err == nil {
		n.Attrs = map[string]model.Attribute{"value": {Kind: model.AttrTensor, Tensor: t}}
		return false, nil
	}
	return true, addConst(n.Outputs[0], t, err, "Constant output")
}

// decodeAttr converts one AttributeProto.
func decodeAttr(ap *onnxpb.AttributeProto) (model.Attribute, error) {
	name := ap.GetName()
	if name == "" {
		return model.Attribute{}, fmt.Errorf("%w: attribute without a name", ErrMalformed)
	}
	if ap.GetRefAttrName() != "" {
		return model.Attribute{}, fmt.Errorf("%w: attribute %q refers to function attribute %q", ErrUnsupported, name, ap.GetRefAttrName())
	}
	typ := ap.GetType()
	if typ == onnxpb.AttributeProto_UNDEFINED {
		// Very old writers left the type out; infer it from the field set.
		switch {
		case ap.F != nil:
			typ = onnxpb.AttributeProto_FLOAT
		case ap.I != nil:
			typ = onnxpb.AttributeProto_INT
		case ap.S != nil:
			typ = onnxpb.AttributeProto_STRING
		case ap.T != nil:
			typ = onnxpb.AttributeProto_TENSOR
		case ap.G != nil || len(ap.Graphs) > 0:
			typ = onnxpb.AttributeProto_GRAPH
		case len(ap.Floats) > 0:
			typ = onnxpb.AttributeProto_FLOATS
		case len(ap.Ints) > 0:
			typ = onnxpb.AttributeProto_INTS
		case len(ap.Strings) > 0:
			typ = onnxpb.AttributeProto_STRINGS
		default:
			return model.Attribute{}, fmt.Errorf("%w: attribute %q has no type and no value", ErrMalformed, name)
		}
	}
	switch typ {
	case onnxpb.AttributeProto_INT:
		return model.Attribute{Kind: model.AttrInt, Int: ap.GetI()}, nil
	case onnxpb.AttributeProto_FLOAT:
		return model.Attribute{Kind: model.AttrFloat, Float: ap.GetF()}, nil
	case onnxpb.AttributeProto_STRING:
		return model.Attribute{Kind: model.AttrString, String: string(ap.GetS())}, nil
	case onnxpb.AttributeProto_INTS:
		return model.Attribute{Kind: model.AttrInts, Ints: append([]int64{}, ap.GetInts()...)}, nil
	case onnxpb.AttributeProto_FLOATS:
		return model.Attribute{Kind: model.AttrFloats, Floats: append([]float32{}, ap.GetFloats()...)}, nil
	case onnxpb.AttributeProto_TENSOR:
		if ap.GetT() == nil {
			return model.Attribute{}, fmt.Errorf("%w: tensor attribute %q has no tensor", ErrMalformed, name)
		}
		t, err := decodeTensor(ap.GetT())
		if errors.Is(err, errEmpty) {
			return model.Attribute{Kind: model.AttrTensor}, nil
		}
		if err != nil {
			return model.Attribute{}, fmt.Errorf("attribute %q: %w", name, err)
		}
		return model.Attribute{Kind: model.AttrTensor, Tensor: t}, nil
	case onnxpb.AttributeProto_GRAPH, onnxpb.AttributeProto_GRAPHS:
		return model.Attribute{}, fmt.Errorf("%w: attribute %q is a subgraph", ErrUnsupported, name)
	}
	return model.Attribute{}, fmt.Errorf("%w: attribute %q has type %v", ErrUnsupported, name, typ)
}

// valueShape reads the tensor shape of a graph input or output: nil when the
// rank is unknown, -1 for a symbolic or missing dimension.
func valueShape(vi *onnxpb.ValueInfoProto) ([]int, error) {
	tt := vi.GetType().GetTensorType()
	if vi.GetType() != nil && vi.GetType().GetValue() != nil && tt == nil {
		return nil, fmt.Errorf("%w: graph value %q is not a tensor", ErrUnsupported, vi.GetName())
	}
	sp := tt.GetShape()
	if sp == nil {
		return nil, nil
	}
	shape := make([]int, len(sp.GetDim()))
	for i, d := range sp.GetDim() {
		v, ok := d.GetValue().(*onnxpb.TensorShapeProto_Dimension_DimValue)
		switch {
		case !ok:
			shape[i] = -1
		case v.DimValue < 0 || v.DimValue > maxElements:
			return nil, fmt.Errorf("%w: graph value %q has dimension %d", ErrMalformed, vi.GetName(), v.DimValue)
		default:
			shape[i] = int(v.DimValue)
		}
	}
	return shape, nil
}
