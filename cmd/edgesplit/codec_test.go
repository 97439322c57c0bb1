package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCodecBenchVariants runs codec bench on vit-tiny (seeded weights) with
// stage combinations only (--presets none): per-token and per-feature int8
// and a 63-step variant at a block boundary, the per-feature one marked n/a
// at the rank-2 pool output, with the Markdown and CSV tables written.
func TestCodecBenchVariants(t *testing.T) {
	dir := t.TempDir()
	x := filepath.Join(dir, "x.npy")
	writeRandomNPY(t, x, []int{1, 1, 28, 28})
	md, csv := filepath.Join(dir, "c.md"), filepath.Join(dir, "c.csv")
	out, err := runCLI(t, "codec", "bench", "--model", "vit-tiny", "--input", x, "--cuts", "33,122", "--presets", "none",
		"--variants", "int8-channel/plain/huff0@1,int8-channel/plain/huff0@2,int8-channel:63/plain/huff0@1",
		"--markdown", md, "--csv", csv)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, w := range []string{"add2.out", "pool.out", "int8-channel:63/plain/huff0@1", "n/a", "100.00% (1/1)"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "lossless") {
		t.Errorf("--presets none measured the presets:\n%s", out)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[2], "| 33 add2.out (4096) | ") || !strings.Contains(lines[3], "| n/a |") {
		t.Errorf("markdown table:\n%s", b)
	}
	if c, err := os.ReadFile(csv); err != nil || strings.Count(string(c), "\n") != 7 {
		t.Errorf("csv (%v):\n%s", err, c)
	}
	for _, bad := range [][]string{
		{"--presets", "none"},
		{"--variants", "int8/diagonal"},
		{"--presets", "none", "--variants", "int8", "--write-calibration", filepath.Join(dir, "t.json")},
	} {
		args := append([]string{"codec", "bench", "--model", "vit-tiny", "--input", x, "--cuts", "33"}, bad...)
		if out, err := runCLI(t, args...); err == nil {
			t.Errorf("%v accepted:\n%s", bad, out)
		}
	}
}
