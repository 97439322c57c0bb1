package main

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/edgesplit/edgesplit/internal/plotaxis"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// budgetTicks labels the categorical budget axis.
type budgetTicks []string

func (t budgetTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for i, l := range t {
		ts = append(ts, plot.Tick{Value: float64(i), Label: l})
	}
	return ts
}

func budgetLabel(v float64) string {
	switch {
	case v == 0:
		return "exact"
	case v >= 1:
		return "any"
	}
	return strconv.FormatFloat(100*v, 'g', -1, 64) + "%"
}

// plotBudget draws, per model, the median latency (top) and the measured top-1
// agreement with the unsplit model (bottom) of the auto policy against the
// accuracy budget, one line per link profile, from summary.csv.
func plotBudget(summary, out string) error {
	f, err := os.Open(summary)
	if err != nil {
		return err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return err
	}
	if len(recs) < 2 {
		return fmt.Errorf("%s has no rows", summary)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	type key struct{ model, link string }
	type pt struct{ budget, ms, p95, agree float64 }
	var models, links []string
	var budgets []float64
	series := map[key][]pt{}
	for _, r := range recs[1:] {
		if r[col["max_loss"]] == "" {
			continue
		}
		b, _ := strconv.ParseFloat(r[col["max_loss"]], 64)
		ms, _ := strconv.ParseFloat(r[col["p50_ms"]], 64)
		p95, _ := strconv.ParseFloat(r[col["p95_ms"]], 64)
		ag, _ := strconv.ParseFloat(r[col["agreement"]], 64)
		k := key{r[col["model"]], r[col["link"]]}
		if !slices.Contains(models, k.model) {
			models = append(models, k.model)
		}
		if !slices.Contains(links, k.link) {
			links = append(links, k.link)
		}
		if !slices.Contains(budgets, b) {
			budgets = append(budgets, b)
		}
		series[k] = append(series[k], pt{b, ms, p95, 100 * ag})
	}
	slices.Sort(budgets)
	var labels budgetTicks
	for _, b := range budgets {
		labels = append(labels, budgetLabel(b))
	}
	pos := func(b float64) float64 { return float64(slices.Index(budgets, b)) }
	titles := map[string]string{"mnist": "MNIST CNN (seed-cnn-trained)", "fashion": "Fashion-MNIST seed-cnn", "ppocr": "PP-OCR direction classifier"}
	rows := [][]*plot.Plot{make([]*plot.Plot, len(models)), make([]*plot.Plot, len(models))}
	for j, m := range models {
		for i := range 2 {
			p := plot.New()
			p.X.Tick.Marker = labels
			p.X.Min, p.X.Max = -0.3, float64(len(budgets))-0.7
			p.X.Label.Text = "accuracy budget (max_loss)"
			p.Add(plotter.NewGrid())
			if i == 0 {
				t := titles[m]
				if t == "" {
					t = m
				}
				p.Title.Text = "measured: " + t
				p.Y.Label.Text = "measured median latency, ms (log)"
				p.Y.Scale = plot.LogScale{}
				p.Y.Tick.Marker = plotaxis.Ticks125{}
			} else {
				p.Y.Label.Text = "measured top-1 agreement, %"
				p.Y.Min, p.Y.Max = 99, 100.05
			}
			for li, l := range links {
				ps := series[key{m, l}]
				slices.SortFunc(ps, func(a, b pt) int {
					switch {
					case a.budget < b.budget:
						return -1
					case a.budget > b.budget:
						return 1
					}
					return 0
				})
				var xy plotter.XYs
				for _, q := range ps {
					y := q.ms
					if i == 1 {
						y = math.Max(q.agree, 99)
					}
					xy = append(xy, plotter.XY{X: pos(q.budget) + 0.04*float64(li-len(links)/2), Y: y})
				}
				if len(xy) == 0 {
					continue
				}
				line, sc, err := plotter.NewLinePoints(xy)
				if err != nil {
					return err
				}
				line.Color, sc.Color = plotutil.Color(li), plotutil.Color(li)
				line.Dashes = plotutil.Dashes(li % 4)
				sc.Shape = plotutil.Shape(li)
				p.Add(line, sc)
				if i == 1 {
					// In the agreement panel's empty lower part, off the data.
					p.Legend.Add(l, line, sc)
				}
			}
			if i == 0 {
				// Whole decades, so the 1-2-5 ticks are labelled.
				p.Y.Min = math.Pow(10, math.Floor(math.Log10(p.Y.Min)))
				p.Y.Max = math.Pow(10, math.Ceil(math.Log10(p.Y.Max)))
			}
			if i == 1 {
				ref, _ := plotter.NewLine(plotter.XYs{{X: -0.3, Y: 99.9}, {X: float64(len(budgets)) - 0.7, Y: 99.9}})
				ref.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
				p.Add(ref)
			}
			rows[i][j] = p
		}
	}
	w, h := vg.Length(len(models))*4.2*vg.Inch, 7*vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: len(models), PadX: vg.Millimeter * 2, PadY: vg.Millimeter * 2, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(rows, tiles, dc)
	for i := range rows {
		for j := range rows[i] {
			rows[i][j].Draw(canvases[i][j])
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	fo, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(fo); err != nil {
		fo.Close()
		return err
	}
	fmt.Fprintln(os.Stderr, "wrote", out)
	return fo.Close()
}

// printTables writes the Markdown tables of docs/benchmarks.md from a
// summary: per model × link the plan under the default budget, the best
// unconstrained plan, edge-only and cloud-only; then auto's mean latency
// per budget.
func printTables(summary string) error {
	f, err := os.Open(summary)
	if err != nil {
		return err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return err
	}
	if len(recs) < 2 {
		return fmt.Errorf("%s has no rows", summary)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	type key struct{ model, link, config string }
	rows := map[key][]string{}
	var pairs [][2]string
	for _, r := range recs[1:] {
		k := key{r[col["model"]], r[col["link"]], r[col["config"]]}
		rows[k] = r
		p := [2]string{k.model, k.link}
		if !slices.Contains(pairs, p) {
			pairs = append(pairs, p)
		}
	}
	get := func(p [2]string, cfg, c string) string {
		r, ok := rows[key{p[0], p[1], cfg}]
		if !ok {
			return "–"
		}
		return r[col[c]]
	}
	plan := func(p [2]string, cfg string) string {
		r, ok := rows[key{p[0], p[1], cfg}]
		if !ok {
			return "–"
		}
		s := r[col["plan"]]
		if cl := r[col["clouds"]]; cl != "" && s != "edge-only" {
			s += " @" + cl
		}
		if sh, _ := strconv.ParseFloat(r[col["plan_share"]], 64); sh < 1 {
			s = fmt.Sprintf("%s (%.0f %%; all: %s)", s, 100*sh, r[col["plans"]])
		}
		return s
	}
	pct := func(p [2]string, cfg string) string {
		v, err := strconv.ParseFloat(get(p, cfg, "agreement"), 64)
		if err != nil {
			return "–"
		}
		return fmt.Sprintf("%s/%s = %.1f %%", get(p, cfg, "agree"), get(p, cfg, "n"), 100*v)
	}
	lat := func(p [2]string, cfg string) string {
		return fmt.Sprintf("%s / %s / %s", get(p, cfg, "mean_ms"), get(p, cfg, "p50_ms"), get(p, cfg, "p95_ms"))
	}
	fmt.Println("| model | link | auto, default budget (0.1 %): plan | agreement | mean / p50 / p95 ms | auto, any codec: plan | agreement | mean / p50 / p95 ms | edge-only: mean / p50 / p95 ms | cloud-only, default budget: plan | agreement | mean / p50 / p95 ms |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range pairs {
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p[0], p[1],
			plan(p, "auto@default"), pct(p, "auto@default"), lat(p, "auto@default"),
			plan(p, "auto@any"), pct(p, "auto@any"), lat(p, "auto@any"),
			lat(p, "edge-only"),
			plan(p, "cloud-only@default"), pct(p, "cloud-only@default"), lat(p, "cloud-only@default"))
	}
	fmt.Println()
	var sweep []string
	for _, r := range recs[1:] {
		if r[col["max_loss"]] != "" && strings.HasPrefix(r[col["config"]], "auto@") && !slices.Contains(sweep, r[col["config"]]) {
			sweep = append(sweep, r[col["config"]])
		}
	}
	budgetOf := func(cfg string) float64 {
		for _, r := range recs[1:] {
			if r[col["config"]] == cfg {
				v, _ := strconv.ParseFloat(r[col["max_loss"]], 64)
				return v
			}
		}
		return 0
	}
	slices.SortFunc(sweep, func(a, b string) int {
		x, y := budgetOf(a), budgetOf(b)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	fmt.Print("| model | link |")
	for _, s := range sweep {
		fmt.Printf(" %s |", budgetLabel(budgetOf(s)))
	}
	fmt.Print("\n|---|---|")
	for range sweep {
		fmt.Print("---|")
	}
	fmt.Println()
	for _, p := range pairs {
		fmt.Printf("| %s | %s |", p[0], p[1])
		for _, s := range sweep {
			fmt.Printf(" %s ms · %s · %s |", get(p, s, "mean_ms"), get(p, s, "plan"), pct(p, s))
		}
		fmt.Println()
	}
	return nil
}
