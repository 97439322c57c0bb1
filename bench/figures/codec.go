package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/tensorcodec"
	"github.com/edgesplit/edgesplit/tensorcodec/calib"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// figCodec measures every tensorcodec preset at every single-tensor cut of
// the trained seed-cnn over MNIST test images (calib): compression ratio
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
	src, desc, err := calib.Open(ctx, "mnist", nm.Graph, &sc.Preprocess, samples)
	if err != nil {
		return fmt.Errorf("MNIST: %w", err)
	}
	n := src.Len()
	cfg := calib.Config{Graph: nm.Graph, ModelID: nm.ID, ModelVersion: nm.Version, Inputs: src, SourceName: desc, StopBelow: -1}
	pb := bar(n, "calibration inputs")
	cfg.Progress = func(done, total int) { _ = pb.Set(done) }
	res, err := calib.Run(ctx, cfg)
	_ = pb.Finish()
	if err != nil {
		return err
	}
	rows := res.Rows
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
			ff(r.RawBytes), ff(r.Bytes), ff(r.Ratio), ff(r.EncodeMBps), ff(r.DecodeMBps), ff(r.MaxAbsErr), ff(r.RelRMSE), ff(r.Rate())})
		a := per[r.Preset]
		if a == nil {
			a = &agg{minAgree: 1}
			per[r.Preset] = a
		}
		a.ratio += r.Ratio
		a.agree += r.Rate()
		a.minAgree = min(a.minAgree, r.Rate())
		a.n++
		pts[r.Preset] = append(pts[r.Preset], plotter.XY{X: r.Ratio, Y: 100 * r.Rate()})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	fmt.Printf("codec presets on trained seed-cnn, %d MNIST test images, %d cuts\n\n", n, len(rows)/max(len(per), 1))
	fmt.Println("| preset | mean ratio | mean top-1 agreement | worst cut agreement |")
	fmt.Println("|---|---|---|---|")
	p := plot.New()
	p.Title.Text = fmt.Sprintf("measured: codec presets at every cut of the trained MNIST CNN (%d test images)", n)
	p.X.Label.Text = "measured compression ratio (float32 bytes ÷ wire bytes)"
	p.Y.Label.Text = "measured top-1 agreement with unsplit model (%)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	p.Y.Max = 100.1 // the markers at 100 % whole, not cut by the frame
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
	return save(p, filepath.Join(e.out, "codec-presets.png"))
}
