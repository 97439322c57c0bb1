//go:build cgo

package ortref

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/model"
)

// maxElems bounds one tensor (4 GiB of float32), so that a bad shape gets an
// error instead of an allocation that cannot succeed.
const maxElems = 1 << 30

// Session is a model loaded into ONNX Runtime together with preallocated
// float32 input and output tensors of fixed shapes. Fill [Session.Input],
// call [Session.Run], read [Session.Output]; the buffers are reused by
// every run, so a loop of runs allocates nothing. A Session is not safe for
// concurrent use.
type Session struct {
	sess *ort.AdvancedSession
	ins  []*ort.Tensor[float32]
	outs []*ort.Tensor[float32]
}

// New loads onnxBytes (a serialised ONNX model, e.g. from onnx.Encode or
// os.ReadFile) into ONNX Runtime with threads intra-op threads (≥ 1) and one
// inter-op thread. Inputs and outputs are named by inputNames and
// outputNames, with the shapes in inputShapes and outputShapes (one per
// name, every dimension ≥ 1; see [Shapes]); the input buffers start zeroed.
// [Init] must have been called.
func New(onnxBytes []byte, inputNames []string, inputShapes [][]int, outputNames []string, outputShapes [][]int, threads int) (_ *Session, err error) {
	if !ort.IsInitialized() {
		return nil, ErrNotInitialized
	}
	if threads < 1 {
		return nil, fmt.Errorf("ortref: %d threads, want ≥ 1", threads)
	}
	if len(onnxBytes) == 0 {
		return nil, errors.New("ortref: empty ONNX model")
	}
	if len(outputNames) == 0 {
		return nil, errors.New("ortref: no outputs named")
	}
	s := &Session{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.ins, err = newTensors("input", inputNames, inputShapes); err != nil {
		return nil, err
	}
	if s.outs, err = newTensors("output", outputNames, outputShapes); err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ortref: session options: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("ortref: intra-op threads: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("ortref: inter-op threads: %w", err)
	}
	s.sess, err = ort.NewAdvancedSessionWithONNXData(onnxBytes, inputNames, outputNames, values(s.ins), values(s.outs), opts)
	if err != nil {
		return nil, fmt.Errorf("ortref: ONNX Runtime rejects the model: %w", err)
	}
	return s, nil
}

// newTensors makes one zeroed float32 tensor per name, checking the shapes.
func newTensors(what string, names []string, shapes [][]int) ([]*ort.Tensor[float32], error) {
	if len(names) != len(shapes) {
		return nil, fmt.Errorf("ortref: %d %s names but %d shapes", len(names), what, len(shapes))
	}
	ts := make([]*ort.Tensor[float32], 0, len(names))
	for i, shape := range shapes {
		dims, err := ortShape(shape)
		if err != nil {
			destroy(ts)
			return nil, fmt.Errorf("ortref: %s %q: %w", what, names[i], err)
		}
		t, err := ort.NewEmptyTensor[float32](dims)
		if err != nil {
			destroy(ts)
			return nil, fmt.Errorf("ortref: %s %q: %w", what, names[i], err)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// ortShape converts and checks a shape: at least one dimension, each ≥ 1,
// at most maxElems elements.
func ortShape(shape []int) (ort.Shape, error) {
	if len(shape) == 0 {
		return nil, errors.New("empty shape")
	}
	dims := make(ort.Shape, len(shape))
	n := 1
	for i, d := range shape {
		if d < 1 || d > maxElems || n > maxElems/d {
			return nil, fmt.Errorf("bad shape %v (dimensions must be ≥ 1, at most %d elements)", shape, maxElems)
		}
		n *= d
		dims[i] = int64(d)
	}
	return dims, nil
}

func values(ts []*ort.Tensor[float32]) []ort.Value {
	vs := make([]ort.Value, len(ts))
	for i, t := range ts {
		vs[i] = t
	}
	return vs
}

func destroy(ts []*ort.Tensor[float32]) {
	for _, t := range ts {
		t.Destroy()
	}
}

// Input returns the buffer ONNX Runtime reads input i from (row-major, of
// the shape given to [New]). It panics if i is out of range, like a slice
// index.
func (s *Session) Input(i int) []float32 { return s.ins[i].GetData() }

// Output returns the buffer the last [Session.Run] wrote output i to. It is
// overwritten by the next run and freed by [Session.Close]; copy it to keep
// it. It panics if i is out of range, like a slice index.
func (s *Session) Output(i int) []float32 { return s.outs[i].GetData() }

// Run runs the model once on the current inputs.
func (s *Session) Run() error {
	if s.sess == nil {
		return errors.New("ortref: Run on a closed Session")
	}
	if err := s.sess.Run(); err != nil {
		return fmt.Errorf("ortref: ONNX Runtime run: %w", err)
	}
	return nil
}

// Close frees the session and its tensors. Closing twice is harmless.
func (s *Session) Close() error {
	var err error
	if s.sess != nil {
		if e := s.sess.Destroy(); e != nil {
			err = fmt.Errorf("ortref: destroy session: %w", e)
		}
		s.sess = nil
	}
	destroy(s.ins)
	destroy(s.outs)
	s.ins, s.outs = nil, nil
	return err
}

// Run runs onnxBytes once in ONNX Runtime (see [New]) on inputs, float32
// tensors named by inputNames, and returns the outputs named by
// outputNames, of the shapes in outputShapes, as fresh tensors.
func Run(onnxBytes []byte, inputNames []string, inputs []*tensor.Dense, outputNames []string, outputShapes [][]int, threads int) ([]*tensor.Dense, error) {
	if len(inputNames) != len(inputs) {
		return nil, fmt.Errorf("ortref: %d input names but %d inputs", len(inputNames), len(inputs))
	}
	inputShapes := make([][]int, len(inputs))
	data := make([][]float32, len(inputs))
	for i, x := range inputs {
		if x == nil {
			return nil, fmt.Errorf("ortref: input %q is nil", inputNames[i])
		}
		d, ok := x.Data().([]float32)
		if !ok || len(d) != x.Shape().TotalSize() {
			return nil, fmt.Errorf("ortref: input %q: want a contiguous float32 tensor, have %v %v", inputNames[i], x.Dtype(), x.Shape())
		}
		inputShapes[i], data[i] = x.Shape().Clone(), d
	}
	s, err := New(onnxBytes, inputNames, inputShapes, outputNames, outputShapes, threads)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	for i, d := range data {
		copy(s.Input(i), d)
	}
	if err := s.Run(); err != nil {
		return nil, err
	}
	outs := make([]*tensor.Dense, len(outputNames))
	for i := range outs {
		outs[i] = tensor.New(tensor.WithShape(outputShapes[i]...), tensor.WithBacking(append([]float32(nil), s.Output(i)...)))
	}
	return outs, nil
}

// Shapes returns the shape g.Shapes records for each name (as model.Simplify
// infers them), for the output shapes ONNX Runtime's binding wants
// preallocated. The error names the first tensor with no recorded shape.
func Shapes(g *model.Graph, names ...string) ([][]int, error) {
	shapes := make([][]int, len(names))
	for i, name := range names {
		s, ok := g.Shapes[name]
		if !ok {
			return nil, fmt.Errorf("ortref: no inferred shape for %q", name)
		}
		shapes[i] = s
	}
	return shapes, nil
}
