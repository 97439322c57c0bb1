//go:build ortref

// Command ortbench times ONNX Runtime (1 intra-op thread, batch 1) on an ONNX
// model, printing the same line as `edgesplit bench model`:
// median_ms=<float> min_ms=<float>. It is the reference side of
// bench/engine.sh and needs cgo plus the shared library fetched by
// scripts/fetch-models.sh:
//
//	go run -tags ortref ./bench/ortbench -model M.onnx -ort ~/.cache/edgesplit/libonnxruntime.so.1
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/model/onnx"
)

func main() {
	modelPath := flag.String("model", "", "ONNX model")
	lib := flag.String("ort", "", "libonnxruntime.so path")
	iters := flag.Int("iters", 50, "timed runs")
	warmup := flag.Int("warmup", 5, "untimed runs first")
	threads := flag.Int("threads", 1, "intra-op threads")
	input := flag.String("input", "", "input .npy fixing the input shape (default: the model's, unknown dims = 1)")
	flag.Parse()
	if err := run(*modelPath, *lib, *input, *iters, *warmup, *threads); err != nil {
		log.Fatal("ortbench: ", err)
	}
}

func run(modelPath, lib, input string, iters, warmup, threads int) error {
	if modelPath == "" || lib == "" || iters < 1 {
		return fmt.Errorf("-model, -ort and -iters ≥ 1 are required")
	}
	g, err := onnx.Load(modelPath)
	if err != nil {
		return err
	}
	// edgesplit's shape inference gives the output shapes ONNX Runtime's Go
	// binding wants preallocated.
	var shapes map[string][]int
	if input != "" {
		f, err := os.Open(input)
		if err != nil {
			return err
		}
		x, err := npy.Read(f)
		f.Close()
		if err != nil {
			return err
		}
		shapes = map[string][]int{g.Inputs[0].Name: x.Shape().Clone()}
	}
	sg, err := model.Simplify(g, shapes)
	if err != nil {
		return err
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(); err != nil {
		return err
	}
	defer ort.DestroyEnvironment()
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return err
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return err
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return err
	}
	var ins, outs []ort.Value
	var inNames, outNames []string
	rng := rand.New(rand.NewPCG(1, 0x5eed))
	for _, in := range sg.Inputs {
		n := 1
		for _, d := range in.Shape {
			n *= d
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = rng.Float32()
		}
		t, err := ort.NewTensor(ort.NewShape(int64s(in.Shape)...), x)
		if err != nil {
			return err
		}
		defer t.Destroy()
		ins = append(ins, t)
		inNames = append(inNames, in.Name)
	}
	for _, o := range sg.Outputs {
		t, err := ort.NewEmptyTensor[float32](ort.NewShape(int64s(sg.Shapes[o.Name])...))
		if err != nil {
			return err
		}
		defer t.Destroy()
		outs = append(outs, t)
		outNames = append(outNames, o.Name)
	}
	sess, err := ort.NewAdvancedSession(modelPath, inNames, outNames, ins, outs, opts)
	if err != nil {
		return err
	}
	defer sess.Destroy()
	for range warmup {
		if err := sess.Run(); err != nil {
			return err
		}
	}
	times := make([]time.Duration, iters)
	for i := range times {
		start := time.Now()
		if err := sess.Run(); err != nil {
			return err
		}
		times[i] = time.Since(start)
	}
	slices.Sort(times)
	fmt.Printf("median_ms=%.4f min_ms=%.4f\n", float64(times[len(times)/2])/1e6, float64(times[0])/1e6)
	return nil
}

func int64s(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}
