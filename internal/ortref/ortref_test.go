//go:build cgo

package ortref_test

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/internal/ortref"
	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/onnx"
)

// reluAdd is y = Relu(x) + b, x and y of shape [2 3], b = 0.5.
func reluAdd(t *testing.T) []byte {
	t.Helper()
	g := model.NewGraph("relu-add")
	g.Inputs = []model.ValueInfo{{Name: "x", Shape: []int{2, 3}}}
	g.Outputs = []model.ValueInfo{{Name: "y", Shape: []int{2, 3}}}
	g.Initializers["b"] = tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{0.5}))
	g.Nodes = []*model.Node{
		{Name: "relu", Op: "Relu", Inputs: []string{"x"}, Outputs: []string{"r"}},
		{Name: "add", Op: "Add", Inputs: []string{"r", "b"}, Outputs: []string{"y"}},
	}
	data, err := onnx.Encode(g)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLibPathNamesPathAndScript(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("EDGESPLIT_CACHE", dir)
	if got := ortref.CacheDir(); got != dir {
		t.Errorf("CacheDir() = %q with EDGESPLIT_CACHE=%q", got, dir)
	}
	_, err := ortref.LibPath()
	if err == nil {
		t.Fatal("LibPath found a library in an empty cache")
	}
	want := filepath.Join(dir, ortref.LibName)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "scripts/fetch-models.sh") {
		t.Errorf("error %q does not name %s and the fetch script", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %q does not wrap fs.ErrNotExist", err)
	}
}

// fakeTB records whether a helper skipped or failed the test, stopping the
// helper's goroutine as the real ones do.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.skipped, f.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestLibPathTestSkipsOrFails(t *testing.T) {
	t.Setenv("EDGESPLIT_CACHE", t.TempDir())
	for _, require := range []string{"", "1"} {
		t.Setenv(ortref.RequireEnv, require)
		f := &fakeTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			ortref.LibPathTest(f)
		}()
		<-done
		if want := require == "1"; f.failed != want || f.skipped == want {
			t.Errorf("%s=%q, no library: failed %v, skipped %v (%s); want failed %v", ortref.RequireEnv, require, f.failed, f.skipped, f.msg, want)
		}
		if !strings.Contains(f.msg, "scripts/fetch-models.sh") {
			t.Errorf("%s=%q: message %q does not name the fetch script", ortref.RequireEnv, require, f.msg)
		}
	}
}

func TestNewBeforeInit(t *testing.T) {
	_, err := ortref.New([]byte{1}, []string{"x"}, [][]int{{1}}, []string{"y"}, [][]int{{1}}, 1)
	if !errors.Is(err, ortref.ErrNotInitialized) {
		t.Fatalf("New before Init: err = %v, want ErrNotInitialized", err)
	}
}

func TestORTRun(t *testing.T) {
	ortref.InitTest(t)
	x := []float32{-1, 0, 1, 2, -3, 4}
	outs, err := ortref.Run(reluAdd(t), []string{"x"}, []*tensor.Dense{tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(x))},
		[]string{"y"}, [][]int{{2, 3}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || !outs[0].Shape().Eq(tensor.Shape{2, 3}) {
		t.Fatalf("outputs %v, want one of shape (2, 3)", outs)
	}
	want := []float32{0.5, 0.5, 1.5, 2.5, 0.5, 4.5}
	for i, v := range outs[0].Data().([]float32) {
		if v != want[i] {
			t.Fatalf("y = %v, want %v", outs[0].Data(), want)
		}
	}
}

func TestORTSessionReusesBuffers(t *testing.T) {
	ortref.InitTest(t)
	s, err := ortref.New(reluAdd(t), []string{"x"}, [][]int{{2, 3}}, []string{"y"}, [][]int{{2, 3}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for run := range 3 {
		in := s.Input(0)
		for i := range in {
			in[i] = float32(i - run)
		}
		if err := s.Run(); err != nil {
			t.Fatal(err)
		}
		for i, v := range s.Output(0) {
			if want := max(float32(i-run), 0) + 0.5; v != want {
				t.Fatalf("run %d: y[%d] = %v, want %v", run, i, v, want)
			}
		}
	}
	if allocs := testing.AllocsPerRun(10, func() { _ = s.Run() }); allocs != 0 {
		t.Errorf("Session.Run allocates %v times per run, want 0", allocs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Run(); err == nil {
		t.Error("Run after Close succeeded")
	}
}

// TestORTInitIdempotent checks that nested Init/close pairs share one
// environment and that it can be brought up again after the last close.
func TestORTInitIdempotent(t *testing.T) {
	lib := ortref.LibPathTest(t)
	data := reluAdd(t)
	run := func() error {
		_, err := ortref.Run(data, []string{"x"}, []*tensor.Dense{tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float32, 6)))},
			[]string{"y"}, [][]int{{2, 3}}, 1)
		return err
	}
	for round := range 2 {
		close1, err := ortref.Init(lib)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		close2, err := ortref.Init(lib)
		if err != nil {
			t.Fatalf("round %d, second Init: %v", round, err)
		}
		if _, err := ortref.Init(lib + ".other"); err == nil {
			t.Errorf("round %d: Init from another library succeeded", round)
		}
		close2()
		close2() // a second call must not drop close1's reference
		if err := run(); err != nil {
			t.Fatalf("round %d, after one close: %v", round, err)
		}
		close1()
		if err := run(); !errors.Is(err, ortref.ErrNotInitialized) {
			t.Fatalf("round %d, after the last close: err = %v, want ErrNotInitialized", round, err)
		}
	}
}

func TestORTBadArguments(t *testing.T) {
	ortref.InitTest(t)
	data := reluAdd(t)
	x := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]float32, 6)))
	for _, tc := range []struct {
		name     string
		onnx     []byte
		inNames  []string
		inputs   []*tensor.Dense
		outNames []string
		outShape [][]int
		threads  int
		want     string
	}{
		{"no model", nil, []string{"x"}, []*tensor.Dense{x}, []string{"y"}, [][]int{{2, 3}}, 1, "empty ONNX model"},
		{"garbage model", []byte("not onnx"), []string{"x"}, []*tensor.Dense{x}, []string{"y"}, [][]int{{2, 3}}, 1, "rejects the model"},
		{"zero threads", data, []string{"x"}, []*tensor.Dense{x}, []string{"y"}, [][]int{{2, 3}}, 0, "threads"},
		{"names vs inputs", data, []string{"x", "z"}, []*tensor.Dense{x}, []string{"y"}, [][]int{{2, 3}}, 1, "2 input names but 1 inputs"},
		{"names vs shapes", data, []string{"x"}, []*tensor.Dense{x}, []string{"y"}, nil, 1, "1 output names but 0 shapes"},
		{"no outputs", data, []string{"x"}, []*tensor.Dense{x}, nil, nil, 1, "no outputs"},
		{"bad dim", data, []string{"x"}, []*tensor.Dense{x}, []string{"y"}, [][]int{{2, 0}}, 1, `output "y": bad shape`},
		{"huge", data, []string{"x"}, []*tensor.Dense{x}, []string{"y"}, [][]int{{1 << 20, 1 << 20}}, 1, `output "y": bad shape`},
		{"nil input", data, []string{"x"}, []*tensor.Dense{nil}, []string{"y"}, [][]int{{2, 3}}, 1, `input "x" is nil`},
		{"int input", data, []string{"x"}, []*tensor.Dense{tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(make([]int64, 6)))},
			[]string{"y"}, [][]int{{2, 3}}, 1, "float32"},
		{"unknown output", data, []string{"x"}, []*tensor.Dense{x}, []string{"nope"}, [][]int{{2, 3}}, 1, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ortref.Run(tc.onnx, tc.inNames, tc.inputs, tc.outNames, tc.outShape, tc.threads)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestShapes(t *testing.T) {
	g := model.NewGraph("g")
	g.Shapes["a"] = []int{1, 2}
	got, err := ortref.Shapes(g, "a")
	if err != nil || len(got) != 1 || len(got[0]) != 2 || got[0][1] != 2 {
		t.Fatalf("Shapes(a) = %v, %v", got, err)
	}
	if _, err := ortref.Shapes(g, "a", "b"); err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("Shapes(a, b): err = %v, want one naming b", err)
	}
}
