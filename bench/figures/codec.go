package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/tensorcodec/cutbench"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gorgonia.org/tensor"
)

// figCodec measures every tensorcodec preset at every single-tensor cut of
// the trained seed-cnn over MNIST test images (cutbench): compression ratio
// against top-1 agreement with the unsplit model.
func figCodec(ctx context.Context, e *env, samples int) error {
	g, sc, err := zoo.SeedCNNTrained()
	if err != nil {
		return err
	}
	nm, err := node.NewModel("seed-cnn", "", g, &sc)
	if err != nil {
		return err
	}
	ds, err := dataset.Load(ctx, "mnist", dataset.Options{Preprocess: &sc.Preprocess, Limit: 6 * samples})
	if err != nil {
		return fmt.Errorf("MNIST: %w", err)
	}
	test := ds.Test
	n := min(samples, test.Len())
	cfg := cutbench.Config{Graph: nm.Graph}
	shape := []int{1, test.C, test.H, test.W}
	for i := range n {
		img := append([]float32(nil), test.Image(i)...)
		cfg.Inputs = append(cfg.Inputs, []*tensor.Dense{tensor.New(tensor.WithShape(shape...), tensor.WithBacking(img))})
	}
	pb := bar(1, "codec cuts")
	cfg.Progress = func(done, total int) { pb.ChangeMax(total); _ = pb.Set(done) }
	rows, err := cutbench.Run(ctx, cfg)
	_ = pb.Finish()
	if err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(e.out, "codec-presets.csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"model", "samples", "cut", "boundary", "preset", "raw_bytes", "bytes", "ratio", "encode_mbps", "decode_mbps", "max_abs_err", "rel_rmse", "top1_agreement"})
	type agg struct {
		ratio, agree, minAgree float64
		n                      int
	}
	per := map[tensorcodec.Preset]*agg{}
	pts := map[tensorcodec.Preset]plotter.XYs{}
	for _, r := range rows {
		w.Write([]string{"seed-cnn-trained", strconv.Itoa(r.Samples), strconv.Itoa(r.K), strings.Join(r.Boundary, "+"), r.Preset.String(),
			ff(r.RawBytes), ff(r.Bytes), ff(r.Ratio), ff(r.EncodeMBps), ff(r.DecodeMBps), ff(r.MaxAbsErr), ff(r.RelRMSE), ff(r.Agreement)})
		a := per[r.Preset]
		if a == nil {
			a = &agg{minAgree: 1}
			per[r.Preset] = a
		}
		a.ratio += r.Ratio
		a.agree += r.Agreement
		a.minAgree = min(a.minAgree, r.Agreement)
		a.n++
		pts[r.Preset] = append(pts[r.Preset], plotter.XY{X: r.Ratio, Y: 100 * r.Agreement})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	fmt.Printf("codec presets on trained seed-cnn, %d MNIST test images, %d cuts\n\n", n, len(rows)/max(len(per), 1))
	fmt.Println("| preset | mean ratio | mean top-1 agreement | worst cut agreement |")
	fmt.Println("|---|---|---|---|")
	p := plot.New()
	p.Title.Text = fmt.Sprintf("codec presets at every cut of the trained MNIST CNN (%d test images)", n)
	p.X.Label.Text = "compression ratio (float32 bytes ÷ wire bytes)"
	p.Y.Label.Text = "top-1 agreement with unsplit model (%)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	for i, pr := range tensorcodec.Presets() {
		a := per[pr]
		if a == nil {
			continue
		}
		fmt.Printf("| %s | %.2f× | %.2f %% | %.2f %% |\n", pr, a.ratio/float64(a.n), 100*a.agree/float64(a.n), 100*a.minAgree)
		s, err := plotter.NewScatter(pts[pr])
		if err != nil {
			return err
		}
		s.Color = plotutil.Color(i)
		s.Shape = plotutil.Shape(i)
		s.Radius = vg.Points(4)
		p.Add(s)
		p.Legend.Add(pr.String(), s)
	}
	p.Legend.Left = true
	p.Legend.Top = false
	return save(p, filepath.Join(e.out, "codec-presets.png"))
}
