package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"gorgonia.org/tensor"
)

// DefaultMaxBytes is the default cap on the array data of a file: 1 GiB.
const DefaultMaxBytes = 1 << 30

// maxHeader caps the header length (NumPy itself refuses headers over
// 10,000 bytes unless asked).
const maxHeader = 1 << 16

var magic = []byte("\x93NUMPY")

// Errors returned by Read, wrapped with details.
var (
	// ErrFormat reports bytes that are not a valid .npy file.
	ErrFormat = errors.New("npy: invalid file")
	// ErrUnsupported reports a valid .npy file edgesplit cannot use
	// (Fortran order, an object or complex dtype).
	ErrUnsupported = errors.New("npy: unsupported array")
	// ErrTooLarge reports an array over the size cap.
	ErrTooLarge = errors.New("npy: array too large")
)

// Option configures Read.
type Option func(*config)

type config struct{ maxBytes int64 }

// WithMaxBytes caps the array data size in bytes (default DefaultMaxBytes;
// n <= 0 selects the default).
func WithMaxBytes(n int64) Option { return func(c *config) { c.maxBytes = n } }

// Read decodes one .npy array from r into a float32 tensor. A 0-d array
// becomes a scalar tensor. Arrays with zero elements are refused (gorgonia
// tensors cannot hold them).
func Read(r io.Reader, opts ...Option) (*tensor.Dense, error) {
	c := config{maxBytes: DefaultMaxBytes}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxBytes
	}
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("%w: reading magic: %v", ErrFormat, err)
	}
	if !bytes.Equal(pre[:6], magic) {
		return nil, fmt.Errorf("%w: missing \\x93NUMPY magic", ErrFormat)
	}
	var hlen int
	switch pre[6] {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("%w: reading header length: %v", ErrFormat, err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("%w: reading header length: %v", ErrFormat, err)
		}
		h := binary.LittleEndian.Uint32(b[:])
		if h > maxHeader {
			return nil, fmt.Errorf("%w: header of %d bytes (cap %d)", ErrFormat, h, maxHeader)
		}
		hlen = int(h)
	default:
		return nil, fmt.Errorf("%w: format version %d.%d", ErrUnsupported, pre[6], pre[7])
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("%w: reading %d-byte header: %v", ErrFormat, hlen, err)
	}
	descr, fortran, shape, err := parseHeader(string(hdr))
	if err != nil {
		return nil, err
	}
	if fortran {
		return nil, fmt.Errorf("%w: Fortran-ordered array (save with np.ascontiguousarray)", ErrUnsupported)
	}
	order, width, kind, err := parseDescr(descr)
	if err != nil {
		return nil, err
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("%w: negative dimension in shape %v", ErrFormat, shape)
		}
		if d != 0 && n > c.maxBytes/int64(width)/int64(d) {
			return nil, fmt.Errorf("%w: shape %v of %s exceeds the %d-byte cap", ErrTooLarge, shape, descr, c.maxBytes)
		}
		n *= int64(d)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: array of shape %v has no elements", ErrUnsupported, shape)
	}
	// Read in chunks, growing with the data rather than trusting the
	// header: a short file fails before a large allocation.
	const chunk = 1 << 16
	out := make([]float32, 0, min(n, 1<<20))
	buf := make([]byte, chunk*width)
	for int64(len(out)) < n {
		k := int(min(n-int64(len(out)), chunk))
		if got, err := io.ReadFull(r, buf[:k*width]); err != nil {
			return nil, fmt.Errorf("%w: shape %v needs %d bytes of data, file has %d", ErrFormat, shape, n*int64(width), int64(len(out))*int64(width)+int64(got))
		}
		l := len(out)
		out = append(out, make([]float32, k)...)
		convert(out[l:], buf[:k*width], order, width, kind)
	}
	if len(shape) == 0 {
		return tensor.New(tensor.WithShape(), tensor.WithBacking(out)), nil
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(out)), nil
}

func convert(out []float32, raw []byte, order binary.ByteOrder, width int, kind byte) {
	if kind == 'f' && width == 4 && order == binary.ByteOrder(binary.LittleEndian) {
		// The common case, without a per-element switch or interface call.
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return
	}
	for i := range out {
		b := raw[i*width:]
		var v float32
		switch {
		case kind == 'f' && width == 4:
			v = math.Float32frombits(order.Uint32(b))
		case kind == 'f' && width == 8:
			v = float32(math.Float64frombits(order.Uint64(b)))
		case kind == 'f' && width == 2:
			v = halfToFloat32(order.Uint16(b))
		case kind == 'i' && width == 1:
			v = float32(int8(b[0]))
		case kind == 'i' && width == 2:
			v = float32(int16(order.Uint16(b)))
		case kind == 'i' && width == 4:
			v = float32(int32(order.Uint32(b)))
		case kind == 'i' && width == 8:
			v = float32(int64(order.Uint64(b)))
		case (kind == 'u' || kind == 'b') && width == 1:
			v = float32(b[0])
		case kind == 'u' && width == 2:
			v = float32(order.Uint16(b))
		case kind == 'u' && width == 4:
			v = float32(order.Uint32(b))
		case kind == 'u' && width == 8:
			v = float32(order.Uint64(b))
		}
		out[i] = v
	}
}

// parseDescr reads a dtype string such as "<f4" or "|u1".
func parseDescr(d string) (binary.ByteOrder, int, byte, error) {
	if len(d) < 3 {
		return nil, 0, 0, fmt.Errorf("%w: dtype %q", ErrUnsupported, d)
	}
	var order binary.ByteOrder
	switch d[0] {
	case '<', '|', '=':
		order = binary.LittleEndian
	case '>':
		order = binary.BigEndian
	default:
		return nil, 0, 0, fmt.Errorf("%w: dtype %q", ErrUnsupported, d)
	}
	kind := d[1]
	width, err := strconv.Atoi(d[2:])
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%w: dtype %q", ErrUnsupported, d)
	}
	ok := false
	switch kind {
	case 'f':
		ok = width == 2 || width == 4 || width == 8
	case 'i', 'u':
		ok = width == 1 || width == 2 || width == 4 || width == 8
	case 'b':
		ok = width == 1
	}
	if !ok {
		return nil, 0, 0, fmt.Errorf("%w: dtype %q (want a float, integer or bool type)", ErrUnsupported, d)
	}
	return order, width, kind, nil
}

// parseHeader reads the Python dict literal of a .npy header:
// {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 48, 192), }
func parseHeader(h string) (descr string, fortran bool, shape []int, err error) {
	s := strings.TrimSpace(h)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return "", false, nil, fmt.Errorf("%w: header %q is not a dict", ErrFormat, clip(h))
	}
	s = strings.TrimSpace(s[1 : len(s)-1])
	seen := map[string]bool{}
	for len(s) > 0 {
		key, rest, ok := pyString(s)
		if !ok {
			return "", false, nil, fmt.Errorf("%w: header %q: expected a quoted key", ErrFormat, clip(h))
		}
		rest = strings.TrimSpace(rest)
		if !strings.HasPrefix(rest, ":") {
			return "", false, nil, fmt.Errorf("%w: header %q: expected ':' after %q", ErrFormat, clip(h), key)
		}
		rest = strings.TrimSpace(rest[1:])
		if seen[key] {
			return "", false, nil, fmt.Errorf("%w: header key %q repeated", ErrFormat, key)
		}
		seen[key] = true
		switch key {
		case "descr":
			descr, rest, ok = pyString(rest)
			if !ok {
				return "", false, nil, fmt.Errorf("%w: header 'descr' is not a simple dtype string (structured arrays are not supported)", ErrUnsupported)
			}
		case "fortran_order":
			switch {
			case strings.HasPrefix(rest, "False"):
				fortran, rest = false, rest[5:]
			case strings.HasPrefix(rest, "True"):
				fortran, rest = true, rest[4:]
			default:
				return "", false, nil, fmt.Errorf("%w: header 'fortran_order' is not True or False", ErrFormat)
			}
		case "shape":
			if !strings.HasPrefix(rest, "(") {
				return "", false, nil, fmt.Errorf("%w: header 'shape' is not a tuple", ErrFormat)
			}
			end := strings.IndexByte(rest, ')')
			if end < 0 {
				return "", false, nil, fmt.Errorf("%w: header 'shape' tuple not closed", ErrFormat)
			}
			shape = []int{}
			for _, f := range strings.Split(rest[1:end], ",") {
				f = strings.TrimSpace(f)
				f = strings.TrimSuffix(f, "L")
				if f == "" {
					continue
				}
				d, err := strconv.Atoi(f)
				if err != nil || d < 0 {
					return "", false, nil, fmt.Errorf("%w: header shape entry %q", ErrFormat, f)
				}
				shape = append(shape, d)
				if len(shape) > 32 {
					return "", false, nil, fmt.Errorf("%w: shape has more than 32 dimensions", ErrUnsupported)
				}
			}
			rest = rest[end+1:]
		default:
			return "", false, nil, fmt.Errorf("%w: unknown header key %q", ErrFormat, key)
		}
		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, ",") {
			rest = strings.TrimSpace(rest[1:])
		} else if rest != "" {
			return "", false, nil, fmt.Errorf("%w: header %q: expected ','", ErrFormat, clip(h))
		}
		s = rest
	}
	if !seen["descr"] || !seen["fortran_order"] || !seen["shape"] {
		return "", false, nil, fmt.Errorf("%w: header lacks descr, fortran_order or shape", ErrFormat)
	}
	return descr, fortran, shape, nil
}

// pyString reads a single- or double-quoted Python string without escapes.
func pyString(s string) (string, string, bool) {
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') {
		return "", s, false
	}
	end := strings.IndexByte(s[1:], s[0])
	if end < 0 {
		return "", s, false
	}
	return s[1 : 1+end], s[2+end:], true
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Write encodes t as a version 1.0 .npy file of little-endian float32 in C
// order. t must hold float32 data; a view is materialised first.
func Write(w io.Writer, t *tensor.Dense) error {
	if t == nil {
		return fmt.Errorf("npy: nil tensor")
	}
	if !t.IsMaterializable() && !t.DataOrder().IsRowMajor() {
		return fmt.Errorf("npy: tensor is not in row-major order")
	}
	src := t
	if t.IsMaterializable() {
		if m, ok := t.Materialize().(*tensor.Dense); ok {
			src = m
		}
	}
	var data []float32
	switch d := src.Data().(type) {
	case []float32:
		data = d
	case float32:
		data = []float32{d}
	default:
		return fmt.Errorf("npy: tensor holds %v, want float32", t.Dtype())
	}
	shape := src.Shape()
	if src.IsScalar() {
		shape = nil
	}
	if n := shape.TotalSize(); len(shape) > 0 && n != len(data) {
		if n > len(data) {
			return fmt.Errorf("npy: shape %v needs %d values, tensor has %d", shape, n, len(data))
		}
		data = data[:n]
	}
	var sb strings.Builder
	sb.WriteString("{'descr': '<f4', 'fortran_order': False, 'shape': (")
	for i, d := range shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		sb.WriteString(",")
	}
	sb.WriteString("), }")
	// Pad with spaces so that magic+version+len+header+'\n' is a multiple
	// of 64 bytes.
	hl := sb.Len() + 1
	pad := (64 - (10+hl)%64) % 64
	hdr := sb.String() + strings.Repeat(" ", pad) + "\n"
	if len(hdr) > math.MaxUint16 {
		return fmt.Errorf("npy: header too long (%d dimensions)", len(shape))
	}
	buf := make([]byte, 0, 10+len(hdr)+4*len(data))
	buf = append(buf, magic...)
	buf = append(buf, 1, 0)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(hdr)))
	buf = append(buf, hdr...)
	for _, v := range data {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

// halfToFloat32 converts an IEEE 754 binary16 value to float32 exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}
