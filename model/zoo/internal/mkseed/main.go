// Command mkseed trains the embedded seed-cnn (3 epochs of MNIST, batch 32,
// Adam with the learning rate ×0.3 after each epoch, seed 1) and writes
// model/zoo/assets/seed-cnn.onnx.gz and its sidecar
// (assets/seed-cnn.json). Run it from model/zoo with `go generate`.
//
// To fit the 1 MB budget, the trained float32 weights are rounded to
// -mantissa significant bits (float32 range kept) before export, which makes
// the ONNX file compress well; the test accuracy in the sidecar is measured
// again on the rounded weights.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/model/train"
	"gorgonia.org/tensor"
)

func main() {
	out := flag.String("out", "assets/seed-cnn.onnx.gz", "output path (.onnx, or .onnx.gz for gzip); the sidecar goes beside it")
	arch := flag.String("arch", "seed-cnn", "zoo architecture")
	ds := flag.String("dataset", "mnist", "dataset")
	epochs := flag.Int("epochs", 3, "epochs")
	seed := flag.Uint64("seed", 1, "seed")
	initKind := flag.String("init", "", "re-initialise weights: he or glorot (default: the zoo's He init)")
	decay := flag.Float64("lr-decay", 0.3, "per-epoch learning-rate factor")
	mantissa := flag.Int("mantissa", 10, "explicit mantissa bits kept in exported weights (23 = exact)")
	flag.Parse()
	if err := run(*out, *arch, *ds, *epochs, *seed, *initKind, *decay, *mantissa); err != nil {
		fmt.Fprintln(os.Stderr, "mkseed:", err)
		os.Exit(1)
	}
}

func run(out, arch, ds string, epochs int, seed uint64, initKind string, decay float64, mantissa int) error {
	ctx := context.Background()
	start := time.Now()
	last := time.Time{}
	data, err := dataset.Load(ctx, ds, dataset.Options{Seed: seed})
	if err != nil {
		return err
	}
	res, err := train.Run(ctx, train.Config{
		Arch: arch, Dataset: ds, Data: data, Epochs: epochs, Batch: 32, Optimizer: "adam", Seed: seed,
		Init: train.InitKind(initKind), LRDecay: decay,
		Progress: func(p train.Progress) {
			if time.Since(last) > 5*time.Second || p.Batch == p.Batches {
				last = time.Now()
				fmt.Fprintf(os.Stderr, "epoch %d/%d batch %d/%d loss %.4f acc %.4f %.0f img/s ETA %s\n",
					p.Epoch+1, p.Epochs, p.Batch, p.Batches, p.Loss, p.Accuracy, p.ImagesPerSec, p.ETA.Round(time.Second))
			}
		},
	})
	if err != nil {
		return err
	}
	for _, e := range res.Epochs {
		fmt.Printf("epoch %d: loss %.4f train acc %.4f, %.1f s (%.0f images/s)\n", e.Epoch+1, e.Loss, e.Accuracy, e.Duration.Seconds(), e.ImagesPerSec)
	}
	res.Test.Format(os.Stdout, res.Sidecar.Labels)
	g := res.Graph
	if mantissa < 23 {
		roundWeights(g, mantissa)
		ev, err := train.EvaluateGraph(ctx, g, data.Test, 2, 0)
		if err != nil {
			return err
		}
		fmt.Printf("test accuracy with weights rounded to %d mantissa bits: %.2f%% (full precision %.2f%%)\n",
			mantissa, 100*ev.Accuracy, 100*res.Test.Accuracy)
		res.Sidecar.Accuracy = ev.Accuracy
		if len(ev.Outputs) > 1 {
			res.Sidecar.ExitAccuracy = ev.ExitAccuracy
		}
	}
	b, err := onnx.Encode(g)
	if err != nil {
		return err
	}
	onnxLen := len(b)
	if strings.HasSuffix(out, ".gz") {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		if err := zw.Close(); err != nil {
			return err
		}
		b = buf.Bytes()
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return err
	}
	sp := dataset.SidecarPath(strings.TrimSuffix(out, ".gz"))
	if err := dataset.WriteSidecar(sp, res.Sidecar); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%d bytes; ONNX %d bytes) and %s (total %.1f s)\n", out, len(b), onnxLen, sp, time.Since(start).Seconds())
	return nil
}

// roundWeights rounds every float32 initializer to bits explicit mantissa
// bits (round half to even), in new tensors.
func roundWeights(g *model.Graph, bits int) {
	shift := uint(23 - bits)
	for name, t := range g.Initializers {
		d, ok := t.Data().([]float32)
		if !ok || t.Dims() == 0 {
			continue
		}
		r := make([]float32, len(d))
		for i, v := range d {
			u := math.Float32bits(v)
			half := uint32(1)<<(shift-1) - 1 + (u>>shift)&1
			u = (u + half) &^ (uint32(1)<<shift - 1)
			r[i] = math.Float32frombits(u)
		}
		g.Initializers[name] = tensor.New(tensor.WithShape(t.Shape().Clone()...), tensor.WithBacking(r))
	}
}
