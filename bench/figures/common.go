package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/edgesplit/edgesplit/internal/plotaxis"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"github.com/edgesplit/edgesplit/sim"
	"github.com/schollz/progressbar/v3"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// env holds the flags every figure shares.
type env struct {
	out       string // CSV + PNG folder (docs/figures)
	cache     string // profile cache folder (bench/out)
	runs      int    // profiling runs per node
	edge      float64
	cloud     float64
	rttMs     float64
	downMult  float64
	models    []string
	linkCheck bool
}

// graphFor resolves a model spec (zoo.Load: zoo names, seed-cnn-trained,
// ONNX files).
func graphFor(name string) (*model.Graph, error) {
	g, _, err := zoo.Load(name)
	return g, err
}

// loadModel returns the engine-measured profile (reference device: this
// machine, slowdown 1) and DAG of a zoo model, from the JSON cache in
// e.cache when present.
func (e *env) loadModel(ctx context.Context, name string) (sim.Model, error) {
	path := filepath.Join(e.cache, "profile-"+name+".json")
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		m, err := sim.ReadModel(f)
		if err == nil {
			return m, nil
		}
		fmt.Fprintf(os.Stderr, "cached profile %s unreadable (%v); measuring again\n", path, err)
	}
	g, err := graphFor(name)
	if err != nil {
		return sim.Model{}, err
	}
	nm, err := node.NewModel(name, "", g, nil) // simplifies the graph as the nodes do
	if err != nil {
		return sim.Model{}, err
	}
	g = nm.Graph
	start := time.Now()
	fmt.Fprintf(os.Stderr, "profiling %s with the engine (%d runs per node)...\n", name, e.runs)
	p, err := partition.MeasureSynthetic(ctx, g, partition.ProfileConfig{Runs: e.runs, Warmup: 1, Device: "reference"})
	if err != nil {
		return sim.Model{}, fmt.Errorf("profile %s: %w", name, err)
	}
	p.Model = name
	dag, err := scheduler.NewDAG(g, p)
	if err != nil {
		return sim.Model{}, fmt.Errorf("dag %s: %w", name, err)
	}
	fmt.Fprintf(os.Stderr, "profiled %s in %v: whole model %v on this machine\n", name, time.Since(start).Round(time.Millisecond), p.HeadLatency(len(p.Nodes)))
	m := sim.Model{Profile: p, DAG: dag}
	if err := os.MkdirAll(e.cache, 0o755); err != nil {
		return m, err
	}
	f, err := os.Create(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	return m, sim.WriteModel(f, m)
}

// loadCodecs returns the codec cost table (node.MeasureCodecs), cached.
func (e *env) loadCodecs(ctx context.Context) ([]scheduler.CodecModel, error) {
	path := filepath.Join(e.cache, "codecs.json")
	if b, err := os.ReadFile(path); err == nil {
		var cs []scheduler.CodecModel
		if err := json.Unmarshal(b, &cs); err == nil && len(cs) > 0 {
			return cs, nil
		}
	}
	cs, err := node.MeasureCodecs(ctx, nil)
	if err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(cs, "", "  ")
	if err := os.MkdirAll(e.cache, 0o755); err != nil {
		return cs, err
	}
	return cs, os.WriteFile(path, b, 0o644)
}

// scaled returns a copy of p with every latency multiplied by f.
func scaled(p *partition.Profile, f float64, device string) *partition.Profile {
	q := *p
	q.Device = device
	q.Nodes = slices.Clone(p.Nodes)
	for i := range q.Nodes {
		q.Nodes[i].Latency = time.Duration(float64(q.Nodes[i].Latency) * f)
	}
	return &q
}

// codecSpecs turns measured codec costs into sim's form.
func codecSpecs(cs []scheduler.CodecModel) []sim.CodecSpec {
	out := make([]sim.CodecSpec, len(cs))
	for i, c := range cs {
		out[i] = sim.CodecSpec{Name: c.Name, Ratio: c.Ratio, EncodeMBps: c.EncodeBps / 1e6, DecodeMBps: c.DecodeBps / 1e6, MaxRelErr: c.MaxRelErr,
			CutRatios: slices.Clone(c.CutRatios)}
	}
	return out
}

func bar(n int, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions(n, progressbar.OptionSetDescription(desc), progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100*time.Millisecond))
}

// logSpace returns n values from lo to hi, evenly spaced on a log scale.
func logSpace(lo, hi float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Exp(math.Log(lo) + (math.Log(hi)-math.Log(lo))*float64(i)/float64(n-1))
	}
	return out
}

// series is one line of a plot.
type series struct {
	name string
	xy   plotter.XYs
}

// linePlot draws series as lines with points and saves the PNG.
func linePlot(path, title, xl, yl string, logX, logY bool, ss []series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xl
	p.Y.Label.Text = yl
	if logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plotaxis.Ticks125{}
	}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plotaxis.Ticks125{}
	}
	p.Add(plotter.NewGrid())
	for i, s := range ss {
		var pts plotter.XYs
		for _, v := range s.xy {
			if math.IsNaN(v.Y) || math.IsInf(v.Y, 0) || (logY && v.Y <= 0) || (logX && v.X <= 0) {
				continue
			}
			pts = append(pts, v)
		}
		if len(pts) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i % 4)
		sc.Color = plotutil.Color(i)
		sc.Shape = plotutil.Shape(i)
		p.Add(l, sc)
		p.Legend.Add(s.name, l, sc)
	}
	return save(p, path)
}

// save writes p as a 7.0 × 4.5 inch PNG (wider by the legend's width when it
// has one). The legend is drawn in a column of its own to the right of the
// plot, so it never covers data.
func save(p *plot.Plot, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	w, h := 7*vg.Inch, 4.5*vg.Inch
	leg := p.Legend
	p.Legend = plot.NewLegend()
	legW := leg.Rectangle(draw.Canvas{}).Size().X
	if legW > 0 {
		legW += 3 * vg.Millimeter
	}
	img := vgimg.New(w+legW, h)
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, 0, -legW, 0, 0))
	if legW > 0 {
		leg.Left, leg.Top = true, true
		// Level with the top of the data area, below the title.
		leg.YOffs = -p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y - p.Title.Padding - vg.Millimeter
		leg.Draw(draw.Crop(dc, w, 0, 0, 0))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", path)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
