package calib

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/tensorcodec"
)

// TestVariants measures encoder variants on the trained seed-cnn with real
// MNIST digits: a lossless variant agrees everywhere (measured through the
// tail, not by construction) and compresses; a per-channel variant on axis
// 3 is not applicable exactly where the boundary has rank below 4; bad
// configurations are errors naming what is wrong.
func TestVariants(t *testing.T) {
	g := seedCNN(t)
	const n = 6
	src, _, err := Open(context.Background(), "mnist", g, nil, n)
	if err != nil {
		t.Fatal(err)
	}
	variant := func(spec string) tensorcodec.Variant {
		v, err := tensorcodec.ParseVariant(spec)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	rank := func(r VariantRow) int { return len(g.Shapes[r.Boundary[0]]) }
	nodes := len(g.Nodes)
	for _, tc := range []struct {
		name     string
		cuts     []int
		variants []string
		check    func(t *testing.T, rows []VariantRow)
		err      string // substring of the error wanted (with ErrConfig)
	}{
		{name: "lossless", variants: []string{"lossless"}, check: func(t *testing.T, rows []VariantRow) {
			if len(rows) == 0 || rows[0].K != 0 {
				t.Fatalf("rows %+v, want every single-tensor cut from 0", rows)
			}
			for _, r := range rows {
				if r.Variant != "lossless" || r.NA || r.Exact || r.Stopped {
					t.Errorf("cut %d: %+v", r.K, r)
				}
				if r.Samples != n || r.Agree != n || r.MaxProbDelta != 0 || r.MaxAbsErr != 0 {
					t.Errorf("cut %d: agreement %+v, max error %v", r.K, r.Agreement, r.MaxAbsErr)
				}
				if r.Ratio <= 0 || r.RawBytes <= 0 || r.EncodeMBps <= 0 || r.DecodeMBps <= 0 {
					t.Errorf("cut %d: ratio %v, speeds %v/%v", r.K, r.Ratio, r.EncodeMBps, r.DecodeMBps)
				}
			}
		}},
		{name: "axis beyond rank", variants: []string{"int8-channel/plain/huff0@3", "int8"}, check: func(t *testing.T, rows []VariantRow) {
			var na, ok int
			for _, r := range rows {
				want := r.Variant == "int8-channel/plain/huff0@3" && rank(r) < 4
				if r.NA != want {
					t.Errorf("cut %d %s (rank %d): NA %v, want %v", r.K, r.Variant, rank(r), r.NA, want)
				}
				if r.NA {
					na++
					if r.Samples != 0 || r.Ratio != 0 || r.EncodeMBps != 0 {
						t.Errorf("cut %d %s n/a but measured: %+v", r.K, r.Variant, r)
					}
				} else {
					ok++
					if r.Samples != n || r.Ratio <= 0 {
						t.Errorf("cut %d %s: %d samples, ratio %v", r.K, r.Variant, r.Samples, r.Ratio)
					}
				}
			}
			if na == 0 || ok == 0 {
				t.Errorf("%d rows n/a, %d measured: want both", na, ok)
			}
		}},
		{name: "chosen cuts", cuts: []int{3, 1, 3}, variants: []string{"int8", "fast"}, check: func(t *testing.T, rows []VariantRow) {
			var got []string
			for _, r := range rows {
				got = append(got, fmt.Sprint(r.K, r.Variant))
			}
			if s := strings.Join(got, ","); s != "1int8,1fast,3int8,3fast" {
				t.Errorf("rows %s", s)
			}
		}},
		{name: "edge-only cut", cuts: []int{1, nodes}, variants: []string{"int8"}, err: fmt.Sprintf("cut %d outside", nodes)},
		{name: "negative cut", cuts: []int{-1}, variants: []string{"int8"}, err: "cut -1 outside"},
		{name: "no variants", err: "no variants"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var vs []tensorcodec.Variant
			for _, s := range tc.variants {
				vs = append(vs, variant(s))
			}
			var progress []int
			rows, err := Variants(context.Background(), Config{Graph: g, Inputs: src, Cuts: tc.cuts, SpeedTime: 5 * time.Millisecond,
				Progress: func(done, total int) { progress = append(progress, done) }}, vs)
			if tc.err != "" {
				if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want ErrConfig with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(progress) != n || progress[n-1] != n {
				t.Errorf("progress %v, want 1..%d", progress, n)
			}
			tc.check(t, rows)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Variants(ctx, Config{Graph: g, Inputs: src}, []tensorcodec.Variant{variant("int8")}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
