package kern

import (
	"fmt"
	"math"
)

// ActKind names an element-wise activation function.
type ActKind uint8

// The activation kinds a kernel can fuse into its epilogue.
const (
	ActNone        ActKind = iota
	ActRelu                // y = max(0, x)
	ActClip                // y = min(Beta, max(Alpha, x))
	ActLeakyRelu           // y = x if x ≥ 0 else Alpha·x
	ActHardSigmoid         // y = max(0, min(1, Alpha·x + Beta))
	ActHardSwish           // y = x · max(0, min(1, x/6 + 0.5))
	ActSigmoid             // y = 1 / (1 + e^-x)
	ActTanh                // y = tanh(x)
)

var actNames = [...]string{"None", "Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid", "Tanh"}

// String returns the kind's name, as the ONNX operator is spelled.
func (k ActKind) String() string {
	if int(k) < len(actNames) {
		return actNames[k]
	}
	return fmt.Sprintf("ActKind(%d)", uint8(k))
}

// Activation is an element-wise function fused into a kernel's epilogue.
// The zero value is the identity.
type Activation struct {
	Kind        ActKind
	Alpha, Beta float32
}

// Apply applies a in place to x.
func (a Activation) Apply(x []float32) {
	switch a.Kind {
	case ActNone:
	case ActRelu:
		for i, v := range x {
			if v < 0 {
				x[i] = 0
			}
		}
	case ActClip:
		lo, hi := a.Alpha, a.Beta
		for i, v := range x {
			if v < lo {
				v = lo
			}
			if v > hi {
				v = hi
			}
			x[i] = v
		}
	case ActLeakyRelu:
		al := a.Alpha
		for i, v := range x {
			if v < 0 {
				x[i] = v * al
			}
		}
	case ActHardSigmoid:
		al, be := a.Alpha, a.Beta
		for i, v := range x {
			v = float32(al*v) + be // two roundings, as the assembly epilogue
			if v < 0 {
				v = 0
			}
			if v > 1 {
				v = 1
			}
			x[i] = v
		}
	case ActHardSwish:
		for i, v := range x {
			t := float32(v*(1.0/6)) + 0.5 // two roundings, as the assembly epilogue
			if t < 0 {
				t = 0
			}
			if t > 1 {
				t = 1
			}
			x[i] = v * t
		}
	case ActSigmoid:
		for i, v := range x {
			x[i] = sigmoid(v)
		}
	case ActTanh:
		for i, v := range x {
			x[i] = float32(math.Tanh(float64(v)))
		}
	}
}

func sigmoid(v float32) float32 {
	if v >= 0 {
		return float32(1 / (1 + math.Exp(-float64(v))))
	}
	e := math.Exp(float64(v))
	return float32(e / (1 + e))
}

// valid reports whether a names a known kind.
func (a Activation) valid() bool { return a.Kind <= ActTanh }

// applyBiasAct adds bias b to every element of x and then applies a.
func (a Activation) applyBiasAct(x []float32, b float32) {
	if b != 0 {
		for i := range x {
			x[i] += b
		}
	}
	a.Apply(x)
}
