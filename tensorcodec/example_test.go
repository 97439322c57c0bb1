package tensorcodec_test

import (
	"bytes"
	"fmt"

	"github.com/edgesplit/edgesplit/tensorcodec"
	"gorgonia.org/tensor"
)

func Example() {
	act := tensor.New(tensor.WithShape(1, 2, 2, 2), tensor.WithBacking([]float32{0, 1.5, 0, 3, 0.25, 0, 0, 2}))

	enc, _ := tensorcodec.NewEncoder(tensorcodec.WithPreset(tensorcodec.PresetInt8SparseZstd))
	msg, st, err := enc.Encode(nil, act)
	if err != nil {
		panic(err)
	}
	dec, _ := tensorcodec.NewDecoder(tensorcodec.WithLimits(1<<20, 1<<24))
	out, err := dec.Decode(nil, msg)
	if err != nil {
		panic(err)
	}
	fmt.Println(out[0].Shape(), st.MaxAbsErr < 0.01, out[0].Float32s()[0])
	// Output: (1, 2, 2, 2) true 0
}

func ExampleWriter() {
	var stream bytes.Buffer // stands in for a network stream
	w, _ := tensorcodec.NewWriter(&stream, tensorcodec.WithPreset(tensorcodec.PresetLossless))
	r, _ := tensorcodec.NewReader(&stream)

	a := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))
	var out []*tensor.Dense
	for i := 0; i < 2; i++ {
		if _, err := w.WriteMessage(a); err != nil {
			panic(err)
		}
		var err error
		if out, err = r.ReadMessage(out); err != nil { // reuses out's tensor the second time
			panic(err)
		}
	}
	fmt.Println(out[0].Float32s())
	// Output: [1 2 3 4 5 6]
}

func ExampleParsePreset() {
	p, _ := tensorcodec.ParsePreset("int4-zstd")
	t, l, e, level := p.Stages()
	fmt.Println(p, t, l, e, level)
	fmt.Println(p.ErrorBound())
	// Output:
	// int4-zstd int4-channel plain zstd 1
	// |err| <= (max_c-min_c)/30 per channel; zeros exact
}
