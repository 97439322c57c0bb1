//go:build cgo

// Command refgen writes the reference tensors that model/onnx's PP-OCR test
// compares edgesplit against: a seeded input and ONNX Runtime's outputs for
// it, as NumPy .npy files, plus a manifest.
//
// It runs ONNX Runtime (the shared library from npm onnxruntime-node@1.30.0,
// fetched by scripts/fetch-models.sh) through internal/ortref with one
// intra-op thread. Besides the model's own output it records a few
// intermediate tensors ("taps"): the model is re-exported by onnx.Encode with
// those tensors added as graph outputs, which also checks that ONNX Runtime
// accepts edgesplit's exporter output.
//
// It needs cgo (it is built only with cgo on):
//
//	scripts/fetch-models.sh
//	go run ./model/onnx/internal/refgen \
//	    -model ~/.cache/edgesplit/ch_ppocr_mobile_v2.0_cls_infer.onnx \
//	    -ort ~/.cache/edgesplit/libonnxruntime.so.1 -out model/onnx/testdata/ppocr
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"gorgonia.org/tensor"

	"github.com/edgesplit/edgesplit/internal/ortref"
	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/model/onnx"
)

func main() {
	modelPath := flag.String("model", "", "ONNX model file")
	ortLib := flag.String("ort", "", "path to libonnxruntime.so (default: the one scripts/fetch-models.sh caches)")
	outDir := flag.String("out", "model/onnx/testdata/ppocr", "output folder")
	shapeFlag := flag.String("shape", "1,3,48,192", "input shape")
	seed := flag.Uint64("seed", 20261128, "PRNG seed (PCG, stream 1) for the input, uniform in [-1, 1)")
	taps := flag.String("taps", "hardswish_0.tmp_0,relu_1.tmp_0,p2o.Mul.51,hardswish_17.tmp_0,p2o.GlobalAveragePool.19,p2o.Add.87",
		"comma-separated intermediate tensors to record as well")
	flag.Parse()
	if *modelPath == "" {
		log.Fatal("refgen: -model is required")
	}
	if *ortLib == "" {
		lib, err := ortref.LibPath()
		if err != nil {
			log.Fatal("refgen: ", err)
		}
		*ortLib = lib
	}
	if err := run(*modelPath, *ortLib, *outDir, *shapeFlag, *seed, splitList(*taps)); err != nil {
		log.Fatal("refgen: ", err)
	}
}

func splitList(s string) []string {
	var r []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			r = append(r, f)
		}
	}
	return r
}

// SeededInput is the input refgen writes: uniform in [-1, 1) from PCG(seed, 1).
func seededInput(shape []int, seed uint64) []float32 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.Float64()*2 - 1)
	}
	return x
}

func run(modelPath, ortLib, outDir, shapeFlag string, seed uint64, taps []string) error {
	var shape []int
	for _, f := range splitList(shapeFlag) {
		var d int
		if _, err := fmt.Sscan(f, &d); err != nil || d <= 0 {
			return fmt.Errorf("bad -shape %q", shapeFlag)
		}
		shape = append(shape, d)
	}
	g, err := onnx.Load(modelPath)
	if err != nil {
		return err
	}
	if len(g.Inputs) != 1 {
		return fmt.Errorf("model has %d inputs, want 1", len(g.Inputs))
	}
	finalOut := g.Outputs[0].Name
	// Fix the input shape and add the taps as graph outputs, then export.
	g.Inputs[0].Shape = shape
	for _, t := range taps {
		g.Outputs = append(g.Outputs, model.ValueInfo{Name: t})
	}
	data, err := onnx.Encode(g)
	if err != nil {
		return err
	}
	// The engine tells the output shapes (ONNX Runtime's Go binding wants
	// preallocated outputs).
	sg, err := model.Simplify(g, nil)
	if err != nil {
		return fmt.Errorf("shape inference: %w", err)
	}
	var outNames []string
	for _, o := range g.Outputs {
		outNames = append(outNames, o.Name)
	}
	outShapes, err := ortref.Shapes(sg, outNames...)
	if err != nil {
		return err
	}
	orig, err := os.ReadFile(modelPath)
	if err != nil {
		return err
	}

	closeORT, err := ortref.Init(ortLib)
	if err != nil {
		return err
	}
	defer closeORT()
	x := seededInput(shape, seed)
	in := []*tensor.Dense{tensor.New(tensor.WithShape(shape...), tensor.WithBacking(x))}
	inNames := []string{g.Inputs[0].Name}
	outs, err := ortref.Run(data, inNames, in, outNames, outShapes, 1)
	if err != nil {
		return fmt.Errorf("exported model: %w", err)
	}
	// The unmodified model too: its output must equal the tapped export's.
	final, err := ortref.Run(orig, inNames, in, []string{finalOut}, outShapes[:1], 1)
	if err != nil {
		return fmt.Errorf("original model: %w", err)
	}
	// ONNX Runtime fuses differently when intermediate tensors are outputs,
	// so the two may differ in the last bits; the recorded final output is
	// the original model's.
	worst := 0.0
	tapped := outs[0].Data().([]float32)
	for i, v := range final[0].Data().([]float32) {
		d := math.Abs(float64(v-tapped[i])) / math.Max(1, math.Abs(float64(v)))
		worst = math.Max(worst, d)
	}
	if worst > 1e-5 {
		return fmt.Errorf("exported model's output differs from the original model's by %g", worst)
	}
	log.Printf("refgen: exported (tapped) model vs original in ONNX Runtime: max scaled diff %g", worst)
	outs[0] = final[0]

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	var manifest strings.Builder
	fmt.Fprintf(&manifest, "# Written by model/onnx/internal/refgen (ONNX Runtime 1.30, 1 thread) for %s\n", filepath.Base(modelPath))
	fmt.Fprintf(&manifest, "# input: x.npy, shape %v, uniform [-1,1) from PCG(%d, 1); outputs: tensor name, file\n", shape, seed)
	if err := writeNpy(filepath.Join(outDir, "x.npy"), in[0]); err != nil {
		return err
	}
	for i, name := range outNames {
		file := fmt.Sprintf("out%d.npy", i)
		if err := writeNpy(filepath.Join(outDir, file), outs[i]); err != nil {
			return err
		}
		fmt.Fprintf(&manifest, "%s %s\n", name, file)
	}
	return os.WriteFile(filepath.Join(outDir, "manifest.txt"), []byte(manifest.String()), 0o644)
}

func writeNpy(path string, t *tensor.Dense) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := npy.Write(f, t); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
