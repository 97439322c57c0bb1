package model

import (
	"math/rand/v2"

	"gorgonia.org/tensor"
)

// UniformTensor returns a float32 tensor of the given shape filled with
// uniform values in [0,1) from a PCG generator seeded with seed: the
// deterministic stand-in input for profiling, benchmarks, demos and tests.
// Unknown (negative) dimensions are taken as 1.
func UniformTensor(shape []int, seed uint64) *tensor.Dense {
	s := make([]int, len(shape))
	n := 1
	for i, d := range shape {
		s[i] = max(d, 1)
		n *= s[i]
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	data := make([]float32, n)
	for i := range data {
		data[i] = rng.Float32()
	}
	return tensor.New(tensor.WithShape(s...), tensor.WithBacking(data))
}
