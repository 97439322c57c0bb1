package zoo_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// TestThreadsBitIdentical checks that the worker pool's partitioning (output
// channels, GEMM column blocks, row panels) keeps every output's summation
// order: 1, 2 and 3 threads give exactly the same bits, and a steady-state
// Run allocates nothing at any thread count.
func TestThreadsBitIdentical(t *testing.T) {
	names := []string{"mobilenetv2", "resnet18"}
	if testing.Short() {
		names = names[:1]
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			g, err := zoo.Build(name, 1)
			if err != nil {
				t.Fatal(err)
			}
			var x *tensor.Dense
			var want []float32
			for _, threads := range []int{1, 2, 3} {
				net, err := model.Compile(g, model.Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				defer net.Close()
				if x == nil {
					in := net.Inputs()[0]
					r := rand.New(rand.NewPCG(7, 7))
					d := make([]float32, tensor.Shape(in.Shape).TotalSize())
					for i := range d {
						d[i] = r.Float32()
					}
					x = tensor.New(tensor.WithShape(in.Shape...), tensor.WithBacking(d))
				}
				ex := net.NewExtractor()
				ctx := context.Background()
				out, err := ex.Run(ctx, x)
				if err != nil {
					t.Fatal(err)
				}
				got := out[0].Float32s()
				if want == nil {
					want = append([]float32(nil), got...)
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("threads=%d: output %d is %v, want %v (1 thread)", threads, i, got[i], want[i])
					}
				}
				allocs := testing.AllocsPerRun(5, func() {
					if _, err := ex.Run(ctx, x); err != nil {
						t.Fatal(err)
					}
				})
				if allocs != 0 {
					t.Errorf("threads=%d: a steady-state Run allocates %v times", threads, allocs)
				}
			}
		})
	}
}

// TestSharedPool runs two Nets on one caller-owned Pool from two goroutines:
// whichever finds the pool busy runs that op on its own goroutine, with the
// same bits.
func TestSharedPool(t *testing.T) {
	g, err := zoo.Build("mobilenetv2", 1)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := model.Compile(g, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := model.NewPool(2)
	defer pool.Close()
	shared, err := model.Compile(g, model.Options{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	in := serial.Inputs()[0]
	x := tensor.New(tensor.WithShape(in.Shape...), tensor.WithBacking(make([]float32, tensor.Shape(in.Shape).TotalSize())))
	out, err := serial.NewExtractor().Run(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), out[0].Float32s()...)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			ex := shared.NewExtractor()
			for range 3 {
				out, err := ex.Run(context.Background(), x)
				if err != nil {
					errs <- err
					return
				}
				for i, v := range out[0].Float32s() {
					if v != want[i] {
						errs <- &mismatch{i, v, want[i]}
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

type mismatch struct {
	i         int
	got, want float32
}

func (m *mismatch) Error() string { return "output differs from the serial Net" }
