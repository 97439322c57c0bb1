package npy_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model/npy"
)

// npyBytes builds a file the way NumPy writes it: version 1.0 (or v), the
// header padded with spaces to a 64-byte boundary and ended by '\n'.
func npyBytes(version byte, header string, data []byte) []byte {
	pre := 10
	if version > 1 {
		pre = 12
	}
	pad := (64 - (pre+len(header)+1)%64) % 64
	h := header + strings.Repeat(" ", pad) + "\n"
	b := append([]byte("\x93NUMPY"), version, 0)
	if version > 1 {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(h)))
	} else {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(h)))
	}
	b = append(b, h...)
	return append(b, data...)
}

func f32le(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func TestReadNumPyLayouts(t *testing.T) {
	f64 := binary.LittleEndian.AppendUint64(nil, math.Float64bits(2.5))
	f64 = binary.LittleEndian.AppendUint64(f64, math.Float64bits(-1))
	be := binary.BigEndian.AppendUint32(nil, math.Float32bits(1.5))
	be = binary.BigEndian.AppendUint32(be, math.Float32bits(-3))
	tests := []struct {
		name  string
		file  []byte
		shape []int
		want  []float32
	}{
		{"f4 2x3", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32le(1, 2, 3, 4, 5, 6)), []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}},
		{"f4 1-d", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f32le(7, 8)), []int{2}, []float32{7, 8}},
		{"f4 scalar", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f32le(9)), nil, []float32{9}},
		{"f8", npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", f64), []int{2}, []float32{2.5, -1}},
		{"big-endian f4", npyBytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", be), []int{2}, []float32{1.5, -3}},
		{"u1", npyBytes(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", []byte{0, 128, 255}), []int{3}, []float32{0, 128, 255}},
		{"f2", npyBytes(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", []byte{0x00, 0x3c, 0x00, 0xc0}), []int{2}, []float32{1, -2}},
		{"v2 key order", npyBytes(2, "{'shape': (1, 2), 'fortran_order': False, 'descr': '<f4'}", f32le(1, 2)), []int{1, 2}, []float32{1, 2}},
		{"v3", npyBytes(3, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1,)}", f32le(4)), []int{1}, []float32{4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := npy.Read(bytes.NewReader(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if tc.shape == nil {
				if !got.IsScalar() {
					t.Fatalf("shape %v, want scalar", got.Shape())
				}
			} else if !got.Shape().Eq(tensor.Shape(tc.shape)) {
				t.Fatalf("shape %v, want %v", got.Shape(), tc.shape)
			}
			var data []float32
			switch d := got.Data().(type) {
			case []float32:
				data = d
			case float32:
				data = []float32{d}
			}
			if len(data) != len(tc.want) {
				t.Fatalf("data %v, want %v", data, tc.want)
			}
			for i := range data {
				if data[i] != tc.want[i] {
					t.Fatalf("data %v, want %v", data, tc.want)
				}
			}
		})
	}
}

func TestWriteMatchesNumPyBytes(t *testing.T) {
	x := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))
	var buf bytes.Buffer
	if err := npy.Write(&buf, x); err != nil {
		t.Fatal(err)
	}
	// np.save of np.arange(1,7,dtype=np.float32).reshape(2,3) with NumPy >= 1.x
	// writes exactly this: a 64-byte-aligned v1.0 header.
	want := npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32le(1, 2, 3, 4, 5, 6))
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("Write bytes\n%q\nwant\n%q", buf.Bytes(), want)
	}
	if (buf.Len()-24)%64 != 0 {
		t.Fatalf("header not 64-byte aligned: file %d bytes", buf.Len())
	}
}

func TestRoundTrip(t *testing.T) {
	shapes := [][]int{{1}, {5}, {1, 3, 48, 192}, {2, 1, 4}}
	for _, s := range shapes {
		n := 1
		for _, d := range s {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)*0.5 - 3
		}
		x := tensor.New(tensor.WithShape(s...), tensor.WithBacking(data))
		var buf bytes.Buffer
		if err := npy.Write(&buf, x); err != nil {
			t.Fatal(err)
		}
		y, err := npy.Read(&buf)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		if !y.Shape().Eq(x.Shape()) {
			t.Fatalf("shape %v, want %v", y.Shape(), x.Shape())
		}
		got := y.Data().([]float32)
		for i := range data {
			if got[i] != data[i] {
				t.Fatalf("%v: element %d = %v, want %v", s, i, got[i], data[i])
			}
		}
	}
	// A transposed view is materialised before writing.
	x := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))
	if err := x.T(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := npy.Write(&buf, x); err != nil {
		t.Fatal(err)
	}
	y, err := npy.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 4, 2, 5, 3, 6}
	for i, v := range y.Data().([]float32) {
		if v != want[i] {
			t.Fatalf("transposed write: got %v, want %v", y.Data(), want)
		}
	}
}

func TestReadErrors(t *testing.T) {
	hdr := func(h string, data []byte) []byte { return npyBytes(1, h, data) }
	tests := []struct {
		name string
		file []byte
		opts []npy.Option
		want error
	}{
		{"empty", nil, nil, npy.ErrFormat},
		{"bad magic", []byte("\x93NUMPX\x01\x00\x00\x00"), nil, npy.ErrFormat},
		{"version 9", []byte("\x93NUMPY\x09\x00\x00\x00"), nil, npy.ErrUnsupported},
		{"truncated header", []byte("\x93NUMPY\x01\x00\x40\x00{'descr'"), nil, npy.ErrFormat},
		{"fortran", hdr("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", f32le(1, 2)), nil, npy.ErrUnsupported},
		{"object dtype", hdr("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", nil), nil, npy.ErrUnsupported},
		{"complex", hdr("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", nil), nil, npy.ErrUnsupported},
		{"structured", hdr("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", nil), nil, npy.ErrUnsupported},
		{"short data", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", f32le(1)), nil, npy.ErrFormat},
		{"huge claim", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000, 1000000), }", f32le(1)), nil, npy.ErrTooLarge},
		{"over cap", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (300,), }", make([]byte, 1200)), []npy.Option{npy.WithMaxBytes(1000)}, npy.ErrTooLarge},
		{"zero elements", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", nil), nil, npy.ErrUnsupported},
		{"missing key", hdr("{'descr': '<f4', 'shape': (2,), }", f32le(1, 2)), nil, npy.ErrFormat},
		{"bad shape", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }", f32le(1, 2)), nil, npy.ErrFormat},
		{"not a dict", hdr("descr", nil), nil, npy.ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := npy.Read(bytes.NewReader(tc.file), tc.opts...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	f.Add(npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32le(1, 2, 3, 4, 5, 6)))
	f.Add(npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", make([]byte, 8)))
	f.Add(npyBytes(2, "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", []byte{1, 2, 3, 4}))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := npy.Read(bytes.NewReader(data), npy.WithMaxBytes(1<<20))
		if err != nil {
			return
		}
		// Whatever reads must write and read back identically.
		var buf bytes.Buffer
		if err := npy.Write(&buf, x); err != nil {
			t.Fatalf("Write after Read: %v", err)
		}
		y, err := npy.Read(&buf)
		if err != nil {
			t.Fatalf("Read after Write: %v", err)
		}
		if !y.Shape().Eq(x.Shape()) {
			t.Fatalf("shape %v became %v", x.Shape(), y.Shape())
		}
	})
}

func ExampleWrite() {
	x := tensor.New(tensor.WithShape(1, 2), tensor.WithBacking([]float32{0.5, -1}))
	var buf bytes.Buffer
	if err := npy.Write(&buf, x); err != nil {
		panic(err)
	}
	y, err := npy.Read(&buf)
	if err != nil {
		panic(err)
	}
	fmt.Println(y.Shape(), y.Data())
	// Output: (1, 2) [0.5 -1]
}
