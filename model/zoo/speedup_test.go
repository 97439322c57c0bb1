package zoo_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/internal/stats"
	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/zoo"
	"gorgonia.org/tensor"
)

// TestThreadSpeedup measures 1-thread vs 2-thread inference interleaved run
// by run, so load from other jobs hits both alike, and logs the ratio of
// medians and of minima. It only runs with EDGESPLIT_SPEEDUP set, to a
// comma-separated list of zoo.Load specs (e.g. "mobilenetv2,resnet18,
// ~/.cache/edgesplit/ch_ppocr_mobile_v2.0_cls_infer.onnx"); EDGESPLIT_ITERS
// sets the runs per thread count (default 100).
func TestThreadSpeedup(t *testing.T) {
	specs := os.Getenv("EDGESPLIT_SPEEDUP")
	if specs == "" {
		t.Skip("set EDGESPLIT_SPEEDUP to a list of models to measure")
	}
	iters := 100
	if s := os.Getenv("EDGESPLIT_ITERS"); s != "" {
		if _, err := fmt.Sscan(s, &iters); err != nil {
			t.Fatal(err)
		}
	}
	for _, spec := range strings.Split(specs, ",") {
		if strings.HasPrefix(spec, "~/") {
			home, _ := os.UserHomeDir()
			spec = filepath.Join(home, spec[2:])
		}
		g, _, err := zoo.Load(spec)
		if err != nil {
			t.Fatal(err)
		}
		in := g.Inputs[0]
		shape := slices.Clone(in.Shape)
		for i, d := range shape {
			if d <= 0 { // a dynamic dimension: batch 1, else the PP-OCR classifier's 48×192
				shape[i] = []int{1, 3, 48, 192}[min(i, 3)]
			}
		}
		if g, err = model.Simplify(g, map[string][]int{in.Name: shape}); err != nil {
			t.Fatal(err)
		}
		var exs [2]*model.Extractor
		for i, th := range []int{1, 2} {
			net, err := model.Compile(g, model.Options{Threads: th})
			if err != nil {
				t.Fatal(err)
			}
			defer net.Close()
			exs[i] = net.NewExtractor()
		}
		x := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, tensor.Shape(shape).TotalSize())))
		ctx := context.Background()
		var times [2][]time.Duration
		for it := -5; it < iters; it++ {
			for i, ex := range exs {
				t0 := time.Now()
				if _, err := ex.Run(ctx, x); err != nil {
					t.Fatal(err)
				}
				if it >= 0 {
					times[i] = append(times[i], time.Since(t0))
				}
			}
		}
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		for i := range times {
			slices.Sort(times[i])
		}
		med := func(i int) time.Duration { return stats.Median(times[i]) }
		t.Logf("%s: 1 thread median %.3f ms min %.3f ms; 2 threads median %.3f ms min %.3f ms; speed-up median %.2f× min %.2f×",
			filepath.Base(spec), ms(med(0)), ms(times[0][0]), ms(med(1)), ms(times[1][0]),
			float64(med(0))/float64(med(1)), float64(times[0][0])/float64(times[1][0]))
	}
}
