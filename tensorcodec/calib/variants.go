package calib

import (
	"context"
	"fmt"

	"github.com/edgesplit/edgesplit/tensorcodec"
)

// VariantRow is one cut × variant in detail: what [Row] is for a preset.
// Row.Preset and Row.Exact are unused (zero): a variant's agreement is
// always measured through the tail, and its speeds are always those at
// this cut.
type VariantRow struct {
	Row
	// Variant is the variant's name (tensorcodec.Variant.Name).
	Variant string
	// NA is set when the variant cannot encode this cut's boundary (e.g. a
	// channel axis beyond its rank; tensorcodec.ErrShape); the measurements
	// are then zero.
	NA bool
}

// Variants measures encoder variants at cfg's cuts on cfg.Inputs as [Run]
// does the presets: per input, one run of the whole model gives every
// boundary and the unsplit answer, and each cut's boundary is encoded by
// each variant, decoded and run through the cut's tail, whose top-1 answer
// is compared with the unsplit one. Each variant is timed at each cut on the
// first input (cfg.SpeedTime shared among the cuts, at least 5 ms each;
// cfg.SpeedPerCut is not needed). cfg.Graph, Inputs, Cuts, AllCuts,
// StopBelow, Workers and Progress apply as for Run; Presets, ModelID,
// ModelVersion, SourceName and Now are unused. Rows come cut by cut, in
// the order of variants within a cut.
func Variants(ctx context.Context, cfg Config, variants []tensorcodec.Variant) ([]VariantRow, error) {
	if len(variants) == 0 {
		return nil, fmt.Errorf("%w: no variants to measure", ErrConfig)
	}
	s, err := newSession(cfg, func() ([]codecState, error) {
		cs := make([]codecState, len(variants))
		for i := range variants {
			e, err := variants[i].NewEncoder()
			if err != nil {
				for _, c := range cs[:i] {
					c.e.Close()
				}
				return nil, fmt.Errorf("calib: variant %s: %w", variants[i].Name, err)
			}
			cs[i] = codecState{v: &variants[i], e: e}
		}
		return cs, nil
	})
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := s.run(ctx, nil, func() error { return s.cutSpeeds(ctx) }); err != nil {
		return nil, err
	}
	var rows []VariantRow
	for _, st := range s.states {
		for j := range st.codecs {
			cs := &st.codecs[j]
			rows = append(rows, VariantRow{Row: cs.row(st), Variant: cs.v.Name, NA: cs.na})
		}
	}
	return rows, nil
}
