package kern_test

import (
	"fmt"

	"github.com/edgesplit/edgesplit/model/internal/kern"
)

func ExampleSgemm() {
	// C (2×2) = A (2×3) · B (3×2).
	a := []float32{1, 2, 3, 4, 5, 6}
	b := []float32{1, 0, 0, 1, 1, 1}
	c := make([]float32, 4)
	kern.Sgemm(false, false, 2, 2, 3, a, 3, b, 2, c, 2, false)
	fmt.Println(c)
	// Output: [4 5 10 11]
}

func ExampleConv() {
	// A 3×3 box filter over a 4×4 image, padded by 1 on every side, with a
	// bias of -1 and ReLU fused.
	s := kern.ConvShape{
		InC: 1, InH: 4, InW: 4, OutC: 1, OutH: 4, OutW: 4,
		KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadT: 1, PadL: 1, DilH: 1, DilW: 1, Group: 1,
	}
	w := []float32{1, 1, 1, 1, 1, 1, 1, 1, 1}
	conv, err := kern.NewConv(s, w, []float32{-1}, kern.Activation{Kind: kern.ActRelu})
	if err != nil {
		fmt.Println(err)
		return
	}
	x := []float32{
		1, 0, 0, 0,
		0, 0, 0, 0,
		0, 0, 0, 0,
		0, 0, 0, 2,
	}
	y := make([]float32, 16)
	conv.Forward(x, y, make([]float32, conv.ScratchLen(1)), nil)
	for r := 0; r < 4; r++ {
		fmt.Println(y[r*4 : r*4+4])
	}
	// Output:
	// [0 0 0 0]
	// [0 0 0 0]
	// [0 0 1 1]
	// [0 0 1 1]
}
