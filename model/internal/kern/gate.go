package kern

import "math"

// Gate is the parameters of [AffineClipGate]: v ← v·PS + PB, then
// v·clip(v + A, 0, Hi)·M, then ·QS + QB. An absent affine step is PS = 1,
// PB = −0 (which changes no value, −0 included).
type Gate struct {
	PS, PB, A, Hi, M, QS, QB float32
}

// AffineClipGate computes, in place for every v in x,
//
//	v = (v·PS) + PB
//	u = clip(v + A, 0, Hi)
//	x = (((v·u)·M)·QS) + QB
//
// each operation rounded to float32 on its own (never an FMA) — the
// arithmetic of the ONNX nodes a PP-LCNetV3-style affine block around a
// decomposed HardSwish is made of (Mul, Add, Add, Clip, Mul, Div|Mul, Mul,
// Add). The clip works on the bits, as edgesplit's standalone Clip with
// min 0 does: negative values, −0 and negative NaN become +0, then an
// integer min against Hi's bits (a positive NaN becomes Hi). Hi must be
// ≥ 0. With AVX2 it runs 8 lanes at a time; the results are the same.
func AffineClipGate(x []float32, g Gate) {
	n := affineClipGateAsm(x, &g)
	affineClipGateGo(x[n:], g)
}

func affineClipGateGo(x []float32, g Gate) {
	hi := int32(math.Float32bits(g.Hi))
	for i, v := range x {
		v = float32(v*g.PS) + g.PB
		u := int32(math.Float32bits(v + g.A))
		u &^= u >> 31
		w := v * math.Float32frombits(uint32(min(u, hi)))
		w = w * g.M
		x[i] = float32(w*g.QS) + g.QB
	}
}
