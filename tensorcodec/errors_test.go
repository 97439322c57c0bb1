package tensorcodec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"runtime"
	"testing"

	"gorgonia.org/tensor"
)

// record is a hand-made tensor record for hostile-input tests.
type record struct {
	dtype, transform, layout, entropy byte
	dims                              []uint64
	axis                              *uint64
	params                            []byte
	rawLen, payloadLen                uint64
	payload                           []byte
	badCRC                            bool
}

func (r record) append(b []byte) []byte {
	start := len(b)
	b = append(b, r.dtype, r.transform, r.layout, r.entropy)
	b = binary.AppendUvarint(b, uint64(len(r.dims)))
	for _, d := range r.dims {
		b = binary.AppendUvarint(b, d)
	}
	if r.axis != nil {
		b = binary.AppendUvarint(b, *r.axis)
	}
	b = append(b, r.params...)
	b = binary.AppendUvarint(b, r.rawLen)
	b = binary.AppendUvarint(b, r.payloadLen)
	crc := crc32.Update(crc32.Checksum(b[start:], castagnoli), castagnoli, r.payload)
	if r.badCRC {
		crc++
	}
	b = binary.LittleEndian.AppendUint32(b, crc)
	return append(b, r.payload...)
}

func message(count uint64, rs ...record) []byte {
	b := append([]byte(Magic), Version)
	b = binary.AppendUvarint(b, count)
	for _, r := range rs {
		b = r.append(b)
	}
	return b
}

func u64(v uint64) *uint64 { return &v }

func param(scale float32, zero byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, math.Float32bits(scale)), zero)
}

func TestHostileInput(t *testing.T) {
	ok := record{dtype: 1, dims: []uint64{2, 3}, rawLen: 24, payloadLen: 24, payload: make([]byte, 24)}
	mod := func(f func(*record)) record { r := ok; f(&r); return r }
	valid, _, _ := Encode(nil, newDense([]int{4, 5}, make([]float32, 20)))
	cases := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"magic only", []byte("ESTC"), ErrTruncated},
		{"bad magic", append([]byte("XSTC\x01"), 0), ErrCorrupt},
		{"future version", append([]byte("ESTC\x02"), 0), ErrVersion},
		{"too many tensors", message(1 << 40), ErrLimit},
		{"count overflows varint", append([]byte("ESTC\x01"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), ErrCorrupt},
		{"count but no record", message(1), ErrTruncated},
		{"valid control", message(1, ok), nil},
		{"bad crc", message(1, mod(func(r *record) { r.badCRC = true })), ErrChecksum},
		{"dtype", message(1, mod(func(r *record) { r.dtype = 2 })), ErrCorrupt},
		{"transform code", message(1, mod(func(r *record) { r.transform = 9 })), ErrCorrupt},
		{"layout code", message(1, mod(func(r *record) { r.layout = 3 })), ErrCorrupt},
		{"entropy code", message(1, mod(func(r *record) { r.entropy = 4 })), ErrCorrupt},
		{"rank 0", message(1, mod(func(r *record) { r.dims = nil })), ErrCorrupt},
		{"rank 9", message(1, mod(func(r *record) { r.dims = []uint64{1, 1, 1, 1, 1, 1, 1, 1, 1} })), ErrCorrupt},
		{"zero dim", message(1, mod(func(r *record) { r.dims = []uint64{2, 0} })), ErrCorrupt},
		{"absurd dims", message(1, mod(func(r *record) { r.dims = []uint64{1 << 62, 1 << 62} })), ErrLimit},
		{"dims overflow int", message(1, mod(func(r *record) { r.dims = []uint64{1 << 20, 1 << 20, 1 << 20, 1 << 20} })), ErrLimit},
		{"raw length mismatch", message(1, mod(func(r *record) { r.rawLen, r.payloadLen = 23, 23; r.payload = r.payload[:23] })), ErrCorrupt},
		{"payload length mismatch", message(1, mod(func(r *record) { r.payloadLen = 25 })), ErrCorrupt},
		{"payload truncated", message(1, mod(func(r *record) { r.payload = r.payload[:10] })), ErrTruncated},
		{"payload length huge", message(1, mod(func(r *record) { r.entropy = 1; r.payloadLen = 1 << 40 })), ErrLimit},
		{"trailing bytes", append(message(1, ok), 0), ErrCorrupt},
		{"second record missing", message(2, ok), ErrTruncated},
		{"zero scale", message(1, mod(func(r *record) {
			r.transform, r.params, r.rawLen, r.payloadLen, r.payload = 3, param(0, 0), 6, 6, make([]byte, 6)
		})), ErrCorrupt},
		{"NaN scale", message(1, mod(func(r *record) {
			r.transform, r.params, r.rawLen, r.payloadLen, r.payload = 3, param(float32(math.NaN()), 0), 6, 6, make([]byte, 6)
		})), ErrCorrupt},
		{"int4 zero point", message(1, mod(func(r *record) {
			r.transform, r.axis, r.params, r.rawLen, r.payloadLen, r.payload = 5, u64(0), append(param(1, 16), param(1, 0)...), 3, 3, make([]byte, 3)
		})), ErrCorrupt},
		{"axis out of rank", message(1, mod(func(r *record) {
			r.transform, r.axis, r.params, r.rawLen, r.payloadLen, r.payload = 4, u64(2), param(1, 0), 6, 6, make([]byte, 6)
		})), ErrCorrupt},
		{"params truncated", message(1, mod(func(r *record) {
			r.transform, r.axis, r.params, r.rawLen, r.payloadLen, r.payload = 4, u64(1), param(1, 0), 6, 6, nil
		})), ErrTruncated},
		{"sparse popcount mismatch", message(1, mod(func(r *record) {
			r.transform, r.layout, r.params = 3, 2, param(1, 0)
			r.rawLen, r.payloadLen, r.payload = 3, 3, []byte{0x07, 1, 2} // 3 bits set, 2 values
		})), ErrCorrupt},
		{"sparse bits past end", message(1, mod(func(r *record) {
			r.transform, r.layout, r.params = 3, 2, param(1, 0)
			r.rawLen, r.payloadLen, r.payload = 2, 2, []byte{0x40, 1} // bit 6 of 6 elements
		})), ErrCorrupt},
		{"int4 padding nibble", message(1, mod(func(r *record) {
			r.dims = []uint64{3}
			r.transform, r.axis, r.params = 5, u64(0), append(append(param(1, 0), param(1, 0)...), param(1, 0)...)
			r.rawLen, r.payloadLen, r.payload = 2, 2, []byte{0x11, 0x31}
		})), ErrCorrupt},
		{"s2 garbage", message(1, mod(func(r *record) { r.entropy, r.payloadLen, r.payload = 1, 5, []byte{24, 0xff, 0xff, 0xff, 0xff} })), ErrCorrupt},
		{"s2 wrong length", message(1, mod(func(r *record) { r.entropy, r.payloadLen, r.payload = 1, 2, []byte{5, 0} })), ErrCorrupt},
		{"zstd garbage", message(1, mod(func(r *record) { r.entropy, r.payloadLen, r.payload = 2, 5, []byte{1, 2, 3, 4, 5} })), ErrCorrupt},
		{"huff0 garbage", message(1, mod(func(r *record) { r.entropy, r.payloadLen, r.payload = 3, 4, []byte{2, 2, 9, 9} })), ErrCorrupt},
		{"huff0 bad mode", message(1, mod(func(r *record) { r.entropy, r.payloadLen, r.payload = 3, 1, []byte{7} })), ErrCorrupt},
	}
	for i := range valid {
		cases = append(cases, struct {
			name string
			msg  []byte
			want error
		}{"valid message cut at " + string(rune('0'+i%10)), valid[:i], ErrTruncated})
	}
	dec, _ := NewDecoder()
	for _, c := range cases {
		_, err := dec.Decode(nil, c.msg)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Decode error %v, want %v", c.name, err, c.want)
		}
		_, ierr := Inspect(c.msg, Limits{})
		if c.want != nil && ierr == nil && err != nil && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Inspect accepted input Decode rejected with %v", c.name, err)
		}
		rd, _ := NewReader(bytes.NewReader(c.msg))
		_, serr := rd.ReadMessage(nil)
		if c.name == "trailing bytes" {
			serr = errors.New("fine: the Reader stops at the message's end")
		}
		if c.want == nil && serr != nil || c.want != nil && serr == nil {
			t.Errorf("%s: Reader error %v, Decode error %v", c.name, serr, err)
		}
		if c.want != nil && err != nil && len(err.Error()) < len("tensorcodec: ") {
			t.Errorf("%s: error message %q too terse", c.name, err)
		}
	}
}

// TestLimitsBeforeAllocation: a message that declares a huge tensor but
// exceeds the caller's limits is refused without allocating its size.
func TestLimitsBeforeAllocation(t *testing.T) {
	big := record{dtype: 1, dims: []uint64{1 << 24}, rawLen: 1 << 26, payloadLen: 1 << 26}
	msg := message(1, big)
	dec, _ := NewDecoder(WithLimits(1<<20, 1<<22))
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for i := 0; i < 10; i++ {
		if _, err := dec.Decode(nil, msg); !errors.Is(err, ErrLimit) {
			t.Fatalf("want ErrLimit, got %v", err)
		}
		rd, _ := NewReader(bytes.NewReader(msg), WithLimits(1<<20, 1<<22))
		if _, err := rd.ReadMessage(nil); !errors.Is(err, ErrLimit) {
			t.Fatalf("reader: want ErrLimit, got %v", err)
		}
	}
	runtime.ReadMemStats(&ms1)
	if d := ms1.TotalAlloc - ms0.TotalAlloc; d > 1<<20 {
		t.Fatalf("refusing 10 oversized messages allocated %d bytes", d)
	}
	// The element limit counts all tensors of a message.
	six := record{dtype: 1, dims: []uint64{2, 3}, rawLen: 24, payloadLen: 24, payload: make([]byte, 24)}
	small, _ := NewDecoder(WithLimits(10, 0))
	if _, err := small.Decode(nil, message(1, six)); err != nil {
		t.Fatalf("one tensor of 6 elements: %v", err)
	}
	if _, err := small.Decode(nil, message(2, six, six)); !errors.Is(err, ErrLimit) {
		t.Fatalf("two tensors of 6 elements, limit 10: %v", err)
	}
	if _, err := NewDecoder(WithMaxTensors(1)); err != nil {
		t.Fatal(err)
	}
	one, _ := NewDecoder(WithMaxTensors(1))
	if _, err := one.Decode(nil, message(2, six, six)); !errors.Is(err, ErrLimit) {
		t.Fatalf("two tensors, limit 1: %v", err)
	}
	// Within limits but the stream ends early: the Reader must not allocate
	// the declared 64 MiB up front.
	rd, _ := NewReader(bytes.NewReader(msg))
	runtime.ReadMemStats(&ms0)
	if _, err := rd.ReadMessage(nil); !errors.Is(err, ErrTruncated) {
		t.Fatalf("want ErrTruncated, got %v", err)
	}
	runtime.ReadMemStats(&ms1)
	if d := ms1.TotalAlloc - ms0.TotalAlloc; d > 4<<20 {
		t.Fatalf("truncated 64 MiB claim allocated %d bytes", d)
	}
}

// TestEncodeRejects: the encoder names what it cannot carry.
func TestEncodeRejects(t *testing.T) {
	f64 := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{1, 2}))
	if _, _, err := Encode(nil, f64); !errors.Is(err, ErrDType) {
		t.Errorf("float64: %v", err)
	}
	if _, _, err := Encode(nil, nil); !errors.Is(err, ErrShape) {
		t.Errorf("nil: %v", err)
	}
	nine := tensor.New(tensor.WithShape(1, 1, 1, 1, 1, 1, 1, 1, 1), tensor.WithBacking([]float32{1}))
	if _, _, err := Encode(nil, nine); !errors.Is(err, ErrShape) {
		t.Errorf("rank 9: %v", err)
	}
	e, _ := NewEncoder(WithPreset(PresetInt8SparseZstd), WithChannelAxis(3))
	if _, _, err := e.Encode(nil, newDense([]int{2, 2}, make([]float32, 4))); !errors.Is(err, ErrShape) {
		t.Errorf("axis beyond rank: %v", err)
	}
	for _, o := range []EOption{WithPreset(99), WithTransform(9), WithLayout(7), WithEntropy(9, 0), WithEntropy(EntropyZstd, 5), WithChannelAxis(-2)} {
		if _, err := NewEncoder(o); !errors.Is(err, ErrOption) {
			t.Errorf("option accepted: %v", err)
		}
	}
	if _, err := NewDecoder(WithLimits(-1, 0)); !errors.Is(err, ErrOption) {
		t.Errorf("negative limit: %v", err)
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	if _, err := w.WriteMessage(newDense([]int{2}, []float32{1, 2}), f64); !errors.Is(err, ErrDType) || buf.Len() != 0 {
		t.Errorf("Writer: %v, wrote %d bytes", err, buf.Len())
	}
	if _, err := ParsePreset("int9"); !errors.Is(err, ErrOption) {
		t.Errorf("ParsePreset: %v", err)
	}
}

// TestStreamReader checks several messages back to back on one stream, a
// clean io.EOF at the end, no read-ahead, and view inputs.
func TestStreamReader(t *testing.T) {
	var buf bytes.Buffer
	a := SyntheticActivation(2, 8, 9, 10)
	b := newDense([]int{3, 1}, []float32{1, float32(math.NaN()), -0.0})
	for _, p := range Presets() {
		w, err := NewWriter(&buf, WithPreset(p))
		if err != nil {
			t.Fatal(err)
		}
		st, err := w.WriteMessage(a, b)
		if err != nil {
			t.Fatal(err)
		}
		one, _, _ := EncodePreset(nil, p, a, b)
		if st.Bytes != len(one) {
			t.Fatalf("%s: stream wrote %d bytes, one-shot %d", p, st.Bytes, len(one))
		}
	}
	buf.WriteString("tail")
	r, _ := NewReader(onlyReader{&buf})
	var out []*tensor.Dense
	for _, p := range Presets() {
		var err error
		out, err = r.ReadMessage(out)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(out) != 2 || !sameShape(out[0].Shape(), a.Shape()) || !sameShape(out[1].Shape(), b.Shape()) {
			t.Fatalf("%s: shapes %v %v", p, out[0].Shape(), out[1].Shape())
		}
	}
	if buf.String() != "tail" {
		t.Fatalf("reader consumed past the last message: %q left", buf.String())
	}
	buf.Reset()
	if _, err := r.ReadMessage(out); err != io.EOF {
		t.Fatalf("want io.EOF, got %v", err)
	}
}

type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
