package scheduler

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testCalibration() *Calibration {
	c := NewCalibration("m", "v1", 3, CalibrationData{Source: "test", Samples: 100, Digest: "ab"}, time.Unix(0, 0))
	c.Codecs = []CalibratedCodec{{Name: "lossless", Fidelity: "exact", EncodeMBps: 500, DecodeMBps: 900},
		{Name: "int8", Fidelity: "lossy", EncodeMBps: 1500, DecodeMBps: 3000, MaxRelErr: 0.004}}
	c.Cuts = []CalibratedCut{
		{K: 0, Boundary: []string{"x"}, RawBytes: 3136, Codecs: map[string]CutMeasure{
			"lossless": {Ratio: 5, Agreement: Agreement{Agree: 100, Samples: 100}},
			"int8":     {Ratio: 6, Agreement: Agreement{Agree: 99, Samples: 100, MaxProbDelta: 0.3}}}},
		{K: 2, Boundary: []string{"h"}, RawBytes: 400, Codecs: map[string]CutMeasure{
			"int8": {Ratio: 4, Agreement: Agreement{Agree: 100, Samples: 100, MaxProbDelta: 0.01}}}},
	}
	return c
}

func TestCalibrationRoundTrip(t *testing.T) {
	c := testCalibration()
	path := filepath.Join(t.TempDir(), "m.calib.json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCalibration(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest() != c.Digest() || got.Digest() == "" {
		t.Errorf("digest %q after a round trip, want %q", got.Digest(), c.Digest())
	}
	if err := got.Check("v1", 3); err != nil {
		t.Error(err)
	}
	if err := got.Check("v2", 3); !errors.Is(err, ErrCalibration) {
		t.Errorf("other version: %v", err)
	}
	cs := got.Apply([]CodecModel{{Name: "lossless", Ratio: 1.1, Fidelity: Exact}, {Name: "int8", Ratio: 4}, {Name: "other", Ratio: 3}})
	if cs[1].CutAgreement[0] != (Agreement{Agree: 99, Samples: 100, MaxProbDelta: 0.3}) || cs[1].CutRatios[2] != 4 || cs[1].Ratio != 5 {
		t.Errorf("int8 after Apply: %+v", cs[1])
	}
	if cs[1].EncodeBps != 1500e6 || cs[1].Fidelity != Lossy || cs[0].Fidelity != Exact {
		t.Errorf("speeds or fidelity: %+v / %+v", cs[0], cs[1])
	}
	if cs[2].CutAgreement != nil || cs[2].Ratio != 3 {
		t.Errorf("codec not in the table changed: %+v", cs[2])
	}
	if CalibrationPath("dir/model.onnx") != "dir/model.calib.json" {
		t.Error(CalibrationPath("dir/model.onnx"))
	}
}

func TestCalibrationRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Calibration)
		want string
	}{
		{"format", func(c *Calibration) { c.Format = "x" }, "format"},
		{"version", func(c *Calibration) { c.Version = 9 }, "version 9"},
		{"agree above samples", func(c *Calibration) {
			c.Cuts[0].Codecs["int8"] = CutMeasure{Ratio: 2, Agreement: Agreement{Agree: 101, Samples: 100}}
		}, "101 of 100"},
		{"more samples than the table", func(c *Calibration) {
			c.Cuts[0].Codecs["int8"] = CutMeasure{Ratio: 2, Agreement: Agreement{Agree: 200, Samples: 200}}
		}, "table has 100"},
		{"unknown codec", func(c *Calibration) { c.Cuts[1].Codecs["zz"] = CutMeasure{Ratio: 1} }, `"zz"`},
		{"zero ratio", func(c *Calibration) { c.Cuts[1].Codecs["int8"] = CutMeasure{} }, "ratio 0"},
		{"cut order", func(c *Calibration) { c.Cuts[1].K = 0 }, "ascending"},
		{"cut beyond model", func(c *Calibration) { c.Cuts[1].K = 3 }, "ascending"},
		{"fidelity", func(c *Calibration) { c.Codecs[0].Fidelity = "great" }, "fidelity"},
	}
	for _, tc := range tests {
		c := testCalibration()
		tc.edit(c)
		b, _ := c.Marshal()
		_, err := ReadCalibration(bytes.NewReader(b))
		if !errors.Is(err, ErrCalibration) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an ErrCalibration naming %q", tc.name, err, tc.want)
		}
	}
	if _, err := ReadCalibration(strings.NewReader(`{"format":"edgesplit-calibration","version":1,"extra":1}`)); !errors.Is(err, ErrCalibration) {
		t.Errorf("unknown field: %v", err)
	}
}

func FuzzReadCalibration(f *testing.F) {
	b, _ := testCalibration().Marshal()
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"edgesplit-calibration","version":1,"model":{"nodes":1},"data":{"samples":1},"cuts":[{"k":0,"codecs":{"a":{}}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ReadCalibration(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrCalibration) {
				t.Fatalf("error %v does not wrap ErrCalibration", err)
			}
			return
		}
		// Whatever was accepted applies without panicking and yields
		// inputs that validate.
		cs := c.Apply([]CodecModel{{Name: "a", Ratio: 1}, RawCodec})
		for _, cm := range cs {
			for _, a := range cm.CutAgreement {
				if a.Agree > a.Samples || a.Samples < 0 {
					t.Fatalf("accepted impossible agreement %+v", a)
				}
			}
		}
	})
}
