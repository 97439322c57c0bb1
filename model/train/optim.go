package train

import (
	"fmt"
	"math"
)

// Optimizer updates parameters in place from their gradients (the mean over
// the mini-batch). Implementations keep per-parameter state sized on the
// first call and are not safe for concurrent use.
type Optimizer interface {
	// Update applies one step; params[i] and grads[i] have equal lengths,
	// and the slices are the same ones (same order) on every call.
	Update(params, grads [][]float32)
	// Name is "sgd" or "adam".
	Name() string
	// LearningRate is the step size.
	LearningRate() float64
	// SetLearningRate changes the step size (for schedules).
	SetLearningRate(lr float64)
}

// SGD is stochastic gradient descent with (heavy-ball) momentum and L2
// weight decay: v ← μ·v + g + λ·w; w ← w − η·v.
type SGD struct {
	LR          float64 // η; New* fills 0.01 when 0
	Momentum    float64 // μ, e.g. 0.9; 0 = plain SGD
	WeightDecay float64 // λ
	v           [][]float32
}

// NewSGD returns SGD with learning rate lr (0 → 0.01) and momentum.
func NewSGD(lr, momentum float64) *SGD {
	if lr == 0 {
		lr = 0.01
	}
	return &SGD{LR: lr, Momentum: momentum}
}

// Name implements Optimizer.
func (o *SGD) Name() string { return "sgd" }

// LearningRate implements Optimizer.
func (o *SGD) LearningRate() float64 { return o.LR }

// SetLearningRate implements Optimizer.
func (o *SGD) SetLearningRate(lr float64) { o.LR = lr }

// Update implements Optimizer.
func (o *SGD) Update(params, grads [][]float32) {
	if o.v == nil {
		o.v = make([][]float32, len(params))
		for i, p := range params {
			o.v[i] = make([]float32, len(p))
		}
	}
	lr, mu, wd := float32(o.LR), float32(o.Momentum), float32(o.WeightDecay)
	for i, p := range params {
		g, v := grads[i], o.v[i]
		for j := range p {
			v[j] = mu*v[j] + g[j] + wd*p[j]
			p[j] -= lr * v[j]
		}
	}
}

// Adam is the Adam optimiser (Kingma & Ba) with bias correction and
// optional decoupled weight decay (AdamW when WeightDecay > 0).
type Adam struct {
	LR           float64 // default 0.001
	Beta1, Beta2 float64 // default 0.9, 0.999
	Eps          float64 // default 1e-7 (as Keras)
	WeightDecay  float64
	m, v         [][]float32
	t            int
}

// NewAdam returns Adam with learning rate lr (0 → 0.001) and the default
// betas and epsilon.
func NewAdam(lr float64) *Adam {
	if lr == 0 {
		lr = 0.001
	}
	return &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-7}
}

// Name implements Optimizer.
func (o *Adam) Name() string { return "adam" }

// LearningRate implements Optimizer.
func (o *Adam) LearningRate() float64 { return o.LR }

// SetLearningRate implements Optimizer.
func (o *Adam) SetLearningRate(lr float64) { o.LR = lr }

// Update implements Optimizer.
func (o *Adam) Update(params, grads [][]float32) {
	if o.m == nil {
		o.m = make([][]float32, len(params))
		o.v = make([][]float32, len(params))
		for i, p := range params {
			o.m[i] = make([]float32, len(p))
			o.v[i] = make([]float32, len(p))
		}
	}
	o.t++
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	c1 := 1 - math.Pow(o.Beta1, float64(o.t))
	c2 := 1 - math.Pow(o.Beta2, float64(o.t))
	step := float32(o.LR * math.Sqrt(c2) / c1)
	eps := float32(o.Eps * math.Sqrt(c2))
	wd := float32(o.LR * o.WeightDecay)
	for i, p := range params {
		g, m, v := grads[i], o.m[i], o.v[i]
		for j := range p {
			gj := g[j]
			m[j] = b1*m[j] + (1-b1)*gj
			v[j] = b2*v[j] + (1-b2)*gj*gj
			p[j] -= step*m[j]/(float32(math.Sqrt(float64(v[j])))+eps) + wd*p[j]
		}
	}
}

// NewOptimizer returns the optimiser named "adam" (default when name is
// empty) or "sgd" (momentum 0.9) with learning rate lr (0 = its default).
func NewOptimizer(name string, lr float64) (Optimizer, error) {
	if lr < 0 || math.IsNaN(lr) || math.IsInf(lr, 0) {
		return nil, fmt.Errorf("train: learning rate %v, want > 0", lr)
	}
	switch name {
	case "", "adam":
		return NewAdam(lr), nil
	case "sgd":
		return NewSGD(lr, 0.9), nil
	}
	return nil, fmt.Errorf("train: unknown optimizer %q (want adam or sgd)", name)
}
