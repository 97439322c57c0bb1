package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model/onnx/internal/onnxpb"
)

// errEmpty marks a well-formed tensor with zero elements, which
// gorgonia.org/tensor cannot represent; callers decide what it means (an
// omitted optional input, or an error).
var errEmpty = errors.New("tensor has zero elements")

// dtypeName names an ONNX data type for error messages.
func dtypeName(dt int32) string {
	if s, ok := onnxpb.TensorProto_DataType_name[dt]; ok {
		return s
	}
	return fmt.Sprintf("data type %d", dt)
}

// elemCount checks dims and returns their product, refusing negative
// dimensions and products over maxElements.
func elemCount(dims []int64) (int, error) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension %d in %v", ErrMalformed, d, dims)
		}
		if d != 0 && n > maxElements/d {
			return 0, fmt.Errorf("%w: dimensions %v hold more than %d elements", ErrTooLarge, dims, int64(maxElements))
		}
		n *= d
	}
	if n > maxElements {
		return 0, fmt.Errorf("%w: dimensions %v hold more than %d elements", ErrTooLarge, dims, int64(maxElements))
	}
	return int(n), nil
}

// rawSize is the byte width of one element in raw_data, 0 for types without
// a fixed width (strings) or unsupported ones.
func rawSize(dt onnxpb.TensorProto_DataType) int {
	switch dt {
	case onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_INT32, onnxpb.TensorProto_UINT32:
		return 4
	case onnxpb.TensorProto_DOUBLE, onnxpb.TensorProto_INT64, onnxpb.TensorProto_UINT64:
		return 8
	case onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16, onnxpb.TensorProto_INT16, onnxpb.TensorProto_UINT16:
		return 2
	case onnxpb.TensorProto_INT8, onnxpb.TensorProto_UINT8, onnxpb.TensorProto_BOOL:
		return 1
	}
	return 0
}

// isFloatType reports whether dt becomes float32 in edgesplit.
func isFloatType(dt onnxpb.TensorProto_DataType) bool {
	switch dt {
	case onnxpb.TensorProto_FLOAT, onnxpb.TensorProto_DOUBLE, onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16:
		return true
	}
	return false
}

// decodeTensor converts a TensorProto into a float32 or int64 Dense tensor.
// It checks the element count implied by dims against the data present
// before allocating, so the allocation is bounded by the input size. A
// zero-element tensor yields errEmpty.
func decodeTensor(tp *onnxpb.TensorProto) (*tensor.Dense, error) {
	name := tp.GetName()
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL || len(tp.GetExternalData()) > 0 {
		loc := ""
		for _, kv := range tp.GetExternalData() {
			if kv.GetKey() == "location" {
				loc = kv.GetValue()
			}
		}
		return nil, fmt.Errorf("%w: tensor %q refers to external file %q; re-save the model with its weights inside the .onnx file", ErrExternalData, name, loc)
	}
	if tp.GetSegment() != nil {
		return nil, fmt.Errorf("%w: tensor %q is segmented", ErrUnsupported, name)
	}
	dt := onnxpb.TensorProto_DataType(tp.GetDataType())
	n, err := elemCount(tp.GetDims())
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	width := rawSize(dt)
	if width == 0 {
		return nil, fmt.Errorf("%w: tensor %q has type %s; edgesplit reads float and integer tensors only", ErrUnsupported, name, dtypeName(int32(dt)))
	}
	raw := tp.GetRawData()
	var have int
	var field string
	switch {
	case len(raw) > 0 || tp.RawData != nil && n == 0:
		if len(raw)%width != 0 {
			return nil, fmt.Errorf("%w: tensor %q (%s) has %d bytes of raw_data, not a multiple of %d", ErrMalformed, name, dtypeName(int32(dt)), len(raw), width)
		}
		have, field = len(raw)/width, "raw_data"
	default:
		switch dt {
		case onnxpb.TensorProto_FLOAT:
			have, field = len(tp.GetFloatData()), "float_data"
		case onnxpb.TensorProto_DOUBLE:
			have, field = len(tp.GetDoubleData()), "double_data"
		case onnxpb.TensorProto_INT64:
			have, field = len(tp.GetInt64Data()), "int64_data"
		case onnxpb.TensorProto_UINT32, onnxpb.TensorProto_UINT64:
			have, field = len(tp.GetUint64Data()), "uint64_data"
		default:
			have, field = len(tp.GetInt32Data()), "int32_data"
		}
	}
	if have != n {
		return nil, fmt.Errorf("%w: tensor %q has dims %v (%d elements) but %d elements in %s", ErrMalformed, name, tp.GetDims(), n, have, field)
	}
	if n == 0 {
		return nil, fmt.Errorf("tensor %q: %w", name, errEmpty)
	}
	shape := make([]int, len(tp.GetDims()))
	for i, d := range tp.GetDims() {
		shape[i] = int(d)
	}
	if isFloatType(dt) {
		out := make([]float32, n)
		if field == "raw_data" {
			rawToFloat32(out, raw, dt)
		} else {
			switch dt {
			case onnxpb.TensorProto_FLOAT:
				copy(out, tp.GetFloatData())
			case onnxpb.TensorProto_DOUBLE:
				for i, v := range tp.GetDoubleData() {
					out[i] = float32(v)
				}
			case onnxpb.TensorProto_FLOAT16:
				for i, v := range tp.GetInt32Data() {
					out[i] = halfToFloat32(uint16(v))
				}
			case onnxpb.TensorProto_BFLOAT16:
				for i, v := range tp.GetInt32Data() {
					out[i] = math.Float32frombits(uint32(uint16(v)) << 16)
				}
			}
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(out)), nil
	}
	out := make([]int64, n)
	if field == "raw_data" {
		rawToInt64(out, raw, dt)
	} else {
		switch dt {
		case onnxpb.TensorProto_INT64:
			copy(out, tp.GetInt64Data())
		case onnxpb.TensorProto_UINT32, onnxpb.TensorProto_UINT64:
			for i, v := range tp.GetUint64Data() {
				out[i] = int64(v)
			}
		case onnxpb.TensorProto_UINT16:
			for i, v := range tp.GetInt32Data() {
				out[i] = int64(uint16(v))
			}
		case onnxpb.TensorProto_UINT8:
			for i, v := range tp.GetInt32Data() {
				out[i] = int64(uint8(v))
			}
		case onnxpb.TensorProto_BOOL:
			for i, v := range tp.GetInt32Data() {
				if v != 0 {
					out[i] = 1
				}
			}
		default: // INT32, INT16, INT8
			for i, v := range tp.GetInt32Data() {
				out[i] = int64(v)
			}
		}
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(out)), nil
}

func rawToFloat32(out []float32, raw []byte, dt onnxpb.TensorProto_DataType) {
	le := binary.LittleEndian
	switch dt {
	case onnxpb.TensorProto_FLOAT:
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case onnxpb.TensorProto_DOUBLE:
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
		}
	case onnxpb.TensorProto_FLOAT16:
		for i := range out {
			out[i] = halfToFloat32(le.Uint16(raw[2*i:]))
		}
	case onnxpb.TensorProto_BFLOAT16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(le.Uint16(raw[2*i:])) << 16)
		}
	}
}

func rawToInt64(out []int64, raw []byte, dt onnxpb.TensorProto_DataType) {
	le := binary.LittleEndian
	for i := range out {
		switch dt {
		case onnxpb.TensorProto_INT64, onnxpb.TensorProto_UINT64:
			out[i] = int64(le.Uint64(raw[8*i:]))
		case onnxpb.TensorProto_INT32:
			out[i] = int64(int32(le.Uint32(raw[4*i:])))
		case onnxpb.TensorProto_UINT32:
			out[i] = int64(le.Uint32(raw[4*i:]))
		case onnxpb.TensorProto_INT16:
			out[i] = int64(int16(le.Uint16(raw[2*i:])))
		case onnxpb.TensorProto_UINT16:
			out[i] = int64(le.Uint16(raw[2*i:]))
		case onnxpb.TensorProto_INT8:
			out[i] = int64(int8(raw[i]))
		case onnxpb.TensorProto_UINT8:
			out[i] = int64(raw[i])
		case onnxpb.TensorProto_BOOL:
			if raw[i] != 0 {
				out[i] = 1
			}
		}
	}
}

// halfToFloat32 converts an IEEE 754 binary16 value to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value = mant * 2^-24.
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// encodeTensor converts a float32 or int64 Dense tensor into a TensorProto
// with little-endian raw_data.
func encodeTensor(name string, t *tensor.Dense) (*onnxpb.TensorProto, error) {
	if t == nil {
		return nil, fmt.Errorf("onnx: tensor %q is nil", name)
	}
	shape := t.Shape()
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	tp := &onnxpb.TensorProto{Name: &name, Dims: dims}
	le := binary.LittleEndian
	switch data := t.Data().(type) {
	case []float32:
		raw := make([]byte, 4*len(data))
		for i, v := range data {
			le.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		tp.DataType = ptr(int32(onnxpb.TensorProto_FLOAT))
		tp.RawData = raw
	case float32: // scalar
		raw := make([]byte, 4)
		le.PutUint32(raw, math.Float32bits(data))
		tp.DataType = ptr(int32(onnxpb.TensorProto_FLOAT))
		tp.RawData = raw
	case []int64:
		raw := make([]byte, 8*len(data))
		for i, v := range data {
			le.PutUint64(raw[8*i:], uint64(v))
		}
		tp.DataType = ptr(int32(onnxpb.TensorProto_INT64))
		tp.RawData = raw
	case int64:
		raw := make([]byte, 8)
		le.PutUint64(raw, uint64(data))
		tp.DataType = ptr(int32(onnxpb.TensorProto_INT64))
		tp.RawData = raw
	default:
		return nil, fmt.Errorf("%w: tensor %q has element type %v; edgesplit writes float32 and int64 tensors only", ErrUnsupported, name, t.Dtype())
	}
	if n, err := elemCount(dims); err != nil || n != t.Size() {
		return nil, fmt.Errorf("onnx: tensor %q: shape %v does not match its %d elements", name, shape, t.Size())
	}
	return tp, nil
}

func ptr[T any](v T) *T { return &v }
