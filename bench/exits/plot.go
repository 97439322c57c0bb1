package main

import (
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotCurves draws, per link (columns), the measured accuracy (top) and
// SLO hit rate (bottom) against the deadline, early exits beside the final
// exit alone.
func plotCurves(out string, rows []summary, c config) error {
	var links []string
	byLink := map[string][]summary{}
	for _, r := range rows {
		if _, ok := byLink[r.link]; !ok {
			links = append(links, r.link)
		}
		byLink[r.link] = append(byLink[r.link], r)
	}
	grid := [][]*plot.Plot{make([]*plot.Plot, len(links)), make([]*plot.Plot, len(links))}
	for j, link := range links {
		top, bottom := plot.New(), plot.New()
		top.Title.Text = fmt.Sprintf("measured: %s, %s test, edge %s, %s", c.arch, c.data, c.device, link)
		top.Y.Label.Text = "measured accuracy, %"
		bottom.Y.Label.Text = "measured SLO hit rate (latency ≤ deadline), %"
		for _, p := range []*plot.Plot{top, bottom} {
			p.X.Label.Text = "deadline, ms"
			p.Add(plotter.NewGrid())
		}
		series := map[string][]summary{}
		var modes []string
		for _, r := range byLink[link] {
			if _, ok := series[r.mode]; !ok {
				modes = append(modes, r.mode)
			}
			series[r.mode] = append(series[r.mode], r)
		}
		var lo, hi float64 = 1e9, 0
		for i, m := range modes {
			var acc, hit plotter.XYs
			for _, r := range series[m] {
				x := ms(r.deadline)
				lo, hi = min(lo, x), max(hi, x)
				acc = append(acc, plotter.XY{X: x, Y: 100 * r.accuracy})
				hit = append(hit, plotter.XY{X: x, Y: 100 * r.hit})
			}
			for k, xy := range []plotter.XYs{acc, hit} {
				l, s, err := plotter.NewLinePoints(xy)
				if err != nil {
					return err
				}
				l.Color, s.Color, s.Shape = plotutil.Color(i), plotutil.Color(i), plotutil.Shape(i)
				l.Dashes = plotutil.Dashes(i)
				p := []*plot.Plot{top, bottom}[k]
				p.Add(l, s)
				p.Legend.Add(m, l, s)
			}
		}
		target, err := plotter.NewLine(plotter.XYs{{X: lo, Y: 99}, {X: hi, Y: 99}})
		if err != nil {
			return err
		}
		target.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		bottom.Add(target)
		bottom.Legend.Add("99 % target", target)
		bottom.Legend.Top, bottom.Legend.Left = false, false
		top.Legend.Top, top.Legend.Left = false, false
		bottom.Y.Min, bottom.Y.Max = 0, 101
		grid[0][j], grid[1][j] = top, bottom
	}
	img := vgimg.New(vg.Length(len(links))*5.5*vg.Inch, 7*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: len(links), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(grid, tiles, dc)
	for i := range grid {
		for j := range grid[i] {
			grid[i][j].Draw(canvases[i][j])
		}
	}
	fo, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(fo); err != nil {
		fo.Close()
		return err
	}
	fmt.Println("wrote", out)
	return fo.Close()
}
