package tensorcodec

import (
	"errors"
	"sync"
	"testing"

	"gorgonia.org/tensor"
)

// TestDecodeReuse: tensors whose shape matches are decoded in place; others
// are replaced; a short dst grows.
func TestDecodeReuse(t *testing.T) {
	a := newDense([]int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	b := newDense([]int{4}, []float32{7, 8, 9, 10})
	msg, _, err := Encode(nil, a, b)
	if err != nil {
		t.Fatal(err)
	}
	keep := newDense([]int{2, 3}, make([]float32, 6))
	wrong := newDense([]int{2, 2}, make([]float32, 4))
	out, err := Decode([]*tensor.Dense{keep, wrong}, msg)
	if err != nil {
		t.Fatal(err)
	}
	if out[0] != keep || keep.Float32s()[5] != 6 {
		t.Errorf("matching tensor not reused in place")
	}
	if out[1] == wrong || !sameBits(out[1], b) || wrong.Float32s()[0] != 0 {
		t.Errorf("mismatched tensor reused or written")
	}
	out, err = Decode(out[:1], msg)
	if err != nil || len(out) != 2 || !sameBits(out[1], b) {
		t.Fatalf("grow dst: %v", err)
	}
	// A view is never written through.
	big := newDense([]int{4, 3}, make([]float32, 12))
	v, err := big.Slice(tensor.S(0, 2))
	if err != nil {
		t.Fatal(err)
	}
	view := v.(*tensor.Dense)
	out, err = Decode([]*tensor.Dense{view}, msg)
	if err != nil || out[0] == view || big.Float32s()[0] != 0 {
		t.Fatalf("view reused: %v", err)
	}
	// Views are accepted as encoder input (materialised).
	src := newDense([]int{4, 3}, []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	sv, _ := src.Slice(tensor.S(1, 3))
	msg, _, err = Encode(nil, sv.(*tensor.Dense))
	if err != nil {
		t.Fatal(err)
	}
	out, err = Decode(nil, msg)
	if err != nil || !sameShape(out[0].Shape(), []int{2, 3}) || out[0].Float32s()[0] != 3 {
		t.Fatalf("view input: %v %v", err, out[0])
	}
}

// TestConcurrentPools: the package-level functions are safe for concurrent use.
func TestConcurrentPools(t *testing.T) {
	a := SyntheticActivation(3, 4, 16, 16)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			p := Presets()[g%len(Presets())]
			var out []*tensor.Dense
			for i := 0; i < 20; i++ {
				msg, _, err := EncodePreset(nil, p, a)
				if err == nil {
					out, err = Decode(out, msg)
				}
				if err == nil && p == PresetLossless && !sameBits(out[0], a) {
					err = errors.New("lossless mismatch")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestEncodeAppends: Encode appends to dst and leaves its prefix alone; on
// error dst keeps its length.
func TestEncodeAppends(t *testing.T) {
	a := newDense([]int{3}, []float32{1, 2, 3})
	dst := []byte("prefix")
	msg, st, err := Encode(dst, a)
	if err != nil || string(msg[:6]) != "prefix" || st.Bytes != len(msg)-6 {
		t.Fatalf("append: %v %d", err, st.Bytes)
	}
	if _, err := Decode(nil, msg[6:]); err != nil {
		t.Fatal(err)
	}
	f64 := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{1}))
	msg, _, err = Encode(dst, a, f64)
	if err == nil || len(msg) != len(dst) {
		t.Fatalf("error path: %v, len %d", err, len(msg))
	}
}

// TestZeroValues: a zero Encoder, Decoder, Writer-free Reader work.
func TestZeroValues(t *testing.T) {
	var e Encoder
	var d Decoder
	a := newDense([]int{2, 2}, []float32{1, 0, -3, 4})
	msg, st, err := e.Encode(nil, a)
	if err != nil || st.Bytes != len(msg) {
		t.Fatal(err)
	}
	out, err := d.Decode(nil, msg)
	if err != nil || !sameBits(out[0], a) {
		t.Fatalf("zero Decoder: %v", err)
	}
	if d.Limits() != DefaultLimits() {
		t.Fatalf("zero Decoder limits %+v", d.Limits())
	}
}

// TestAutoAxis: per-channel parameters never dwarf the codes.
func TestAutoAxis(t *testing.T) {
	cases := []struct {
		shape []int
		want  int
	}{
		{[]int{1, 64, 56, 56}, 1},
		{[]int{1, 4096}, 0},
		{[]int{4096, 1}, 1},
		{[]int{8, 16, 2, 2}, 2}, // 32 elements per channel on axis 1
		{[]int{300}, 0},
	}
	for _, c := range cases {
		n := 1
		for _, d := range c.shape {
			n *= d
		}
		if got := autoAxis(c.shape, n); got != c.want {
			t.Errorf("autoAxis(%v) = %d, want %d", c.shape, got, c.want)
		}
	}
	fc := newDense([]int{1, 4096}, make([]float32, 4096))
	for i := range fc.Float32s() {
		fc.Float32s()[i] = float32(i%7) * 0.5
	}
	_, st, err := EncodePreset(nil, PresetInt8SparseZstd, fc)
	if err != nil || st.Ratio() < 4 {
		t.Fatalf("FC activation: ratio %.2f, %v", st.Ratio(), err)
	}
}
