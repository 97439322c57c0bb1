//go:build cgo

// Command ortbench times ONNX Runtime (1 intra-op thread, batch 1) on an ONNX
// model, printing the same line as `edgesplit bench model`:
// median_ms=<float> min_ms=<float>. It is the reference side of
// bench/engine.sh and needs cgo plus the shared library fetched by
// scripts/fetch-models.sh (-ort defaults to the cached one; set-up is
// internal/ortref's):
//
//	go run ./bench/ortbench -model M.onnx -ort ~/.cache/edgesplit/libonnxruntime.so.1
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/edgesplit/edgesplit/internal/ortref"
	"github.com/edgesplit/edgesplit/internal/stats"
	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/model/onnx"
)

func main() {
	modelPath := flag.String("model", "", "ONNX model")
	lib := flag.String("ort", "", "libonnxruntime.so path (default: the one scripts/fetch-models.sh caches)")
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
	if modelPath == "" || iters < 1 {
		return fmt.Errorf("-model and -iters ≥ 1 are required")
	}
	if lib == "" {
		var err error
		if lib, err = ortref.LibPath(); err != nil {
			return err
		}
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
	data, err := os.ReadFile(modelPath)
	if err != nil {
		return err
	}
	var inNames, outNames []string
	var inShapes [][]int
	for _, in := range sg.Inputs {
		inNames = append(inNames, in.Name)
		inShapes = append(inShapes, in.Shape)
	}
	for _, o := range sg.Outputs {
		outNames = append(outNames, o.Name)
	}
	outShapes, err := ortref.Shapes(sg, outNames...)
	if err != nil {
		return err
	}
	closeORT, err := ortref.Init(lib)
	if err != nil {
		return err
	}
	defer closeORT()
	sess, err := ortref.New(data, inNames, inShapes, outNames, outShapes, threads)
	if err != nil {
		return err
	}
	defer sess.Close()
	rng := rand.New(rand.NewPCG(1, 0x5eed))
	for i := range inNames {
		x := sess.Input(i)
		for j := range x {
			x[j] = rng.Float32()
		}
	}
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
	fmt.Printf("median_ms=%.4f min_ms=%.4f\n", float64(stats.Median(times))/1e6, float64(slices.Min(times))/1e6)
	return nil
}
