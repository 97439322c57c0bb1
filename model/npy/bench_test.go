package npy_test

import (
	"bytes"
	"testing"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model/npy"
)

// BenchmarkRead reads a 1×3×224×224 float32 array; copy-reference copies the
// same bytes in the same run, for a ratio.
func BenchmarkRead(b *testing.B) {
	x := tensor.New(tensor.WithShape(1, 3, 224, 224), tensor.WithBacking(make([]float32, 3*224*224)))
	var buf bytes.Buffer
	if err := npy.Write(&buf, x); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.Run("read", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := npy.Read(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var w bytes.Buffer
		for b.Loop() {
			w.Reset()
			if err := npy.Write(&w, x); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("copy-reference", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		dst := make([]byte, len(data))
		for b.Loop() {
			copy(dst, data)
		}
	})
}
