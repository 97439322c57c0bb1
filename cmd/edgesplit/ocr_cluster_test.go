package main

import (
	"bufio"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/model/ocr"
	"github.com/edgesplit/edgesplit/model/ocr/ocrtest"
)

// ocrClusterLines is how many rendered text lines TestOCROnProcesses reads.
const ocrClusterLines = 200

// TestOCROnProcesses reads 200 rendered text lines (seeded text set in
// Debian's DejaVu Sans, Serif and Sans Mono at 20–30 px) with `edgesplit ocr
// --line`, each fitted to the recogniser width 320: unsplit on this
// process's engine, and through a 3-process cluster (`edgesplit node`: one
// edge 40× slower than its two clouds behind an emulated 5G mid-band link,
// real gossip and QUIC with mutual TLS) serving the PP-OCRv4 recogniser
// exported at 1×3×48×320 as the named model "rec", with `ocr --node`: the
// edge plans each line as usual (the default plan, budget 0.001). The
// character accuracies must agree within that budget.
func TestOCROnProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process OCR test skipped with -short")
	}
	cfg := ocr.CachedConfig()
	for _, f := range []string{cfg.Rec, cfg.Keys} {
		if _, err := os.Stat(f); err != nil {
			if os.Getenv("EDGESPLIT_REQUIRE_ORT") == "1" {
				t.Fatalf("%s not cached (scripts/fetch-models.sh): %v", f, err)
			}
			t.Skipf("%s not cached (scripts/fetch-models.sh): %v", f, err)
		}
	}
	fonts, err := ocrtest.DebianFonts()
	if err != nil {
		if os.Getenv("EDGESPLIT_REQUIRE_ORT") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	bin := buildBinary(t)
	dir := t.TempDir()

	// The lines, one PNG each.
	texts := ocrtest.Lines(ocrClusterLines, 20261204, 1, 3)
	imgs := make([]string, len(texts))
	for i, text := range texts {
		img, err := ocrtest.Line(fonts[i%len(fonts)], 20+float64(i%11), text)
		if err != nil {
			t.Fatal(err)
		}
		imgs[i] = filepath.Join(dir, fmt.Sprintf("line%03d.png", i))
		f, err := os.Create(imgs[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}

	// The recogniser with one input shape, as a node serves it.
	rec := filepath.Join(dir, "rec320.onnx")
	run(t, bin, "export", "--model", cfg.Rec, "--shape", fmt.Sprintf("1,3,%d,%d", ocr.RecHeight, ocr.DefaultFixedWidth), "--out", rec)

	cl := startEdgeAndClouds(t, bin, dir, "rec="+rec, "infer,cluster", "--link", "5g-midband", "--device", "slowdown:40")
	base, caCert, tokFile := cl.base, cl.caCert, cl.tokFile

	// ocrRun runs `edgesplit ocr --line` on every image and returns the
	// text read from each, what it printed on stderr, and its wall time.
	ocrRun := func(extra ...string) ([]string, string, time.Duration) {
		t.Helper()
		args := append(append([]string{"ocr", "--line", "--width", fmt.Sprint(ocr.DefaultFixedWidth), "--keys", cfg.Keys}, extra...), imgs...)
		cmd := exec.Command(bin, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		out, err := cmd.Output()
		wall := time.Since(start)
		if err != nil {
			t.Fatalf("edgesplit ocr %s: %v\n%s", strings.Join(extra, " "), err, stderr.String())
		}
		return parseOCRLines(t, string(out), imgs), strings.TrimSpace(stderr.String()), wall
	}
	local, _, localWall := ocrRun("--rec", cfg.Rec)
	remote, summary, remoteWall := ocrRun("--jobs", "4", "--node", base, "--cacert", caCert, "--token-file", tokFile, "--rec-model", "rec")

	var sl, sr ocrtest.Score
	differ := 0
	for i, want := range texts {
		sl.Add(local[i], want)
		sr.Add(remote[i], want)
		if local[i] != remote[i] {
			differ++
			t.Logf("line %d %q: unsplit %q, through the cluster %q", i, want, local[i], remote[i])
		}
	}
	t.Logf("unsplit (this process, width %d): %s; %.1f s", ocr.DefaultFixedWidth, sl, localWall.Seconds())
	t.Logf("through the cluster (edge slowdown:40 on 5g-midband, 2 clouds, 4 requests at a time): %s; %.1f s", sr, remoteWall.Seconds())
	t.Logf("%s", summary)
	t.Logf("%d of %d lines read differently", differ, len(texts))
	const budget = 0.001 // the node's default --max-accuracy-loss
	if d := sl.Accuracy() - sr.Accuracy(); d > budget || -d > budget {
		t.Errorf("character accuracy unsplit %.4f, through the cluster %.4f: differ by more than %v", sl.Accuracy(), sr.Accuracy(), budget)
	}
	if sl.AccuracyNoSpace() < 0.95 {
		t.Errorf("unsplit character accuracy (spaces aside) %.4f, want ≥ 0.95", sl.AccuracyNoSpace())
	}
	m := regexp.MustCompile(`^recognised (\d+) lines on `).FindStringSubmatch(summary)
	if m == nil || m[1] != fmt.Sprint(len(texts)) {
		t.Errorf("ocr --node summary %q, want %d lines recognised on the edge", summary, len(texts))
	}
}

// parseOCRLines splits the output of `edgesplit ocr --line` on several
// images ("# PATH" then the text, per image) into the text of each.
func parseOCRLines(t *testing.T, out string, imgs []string) []string {
	t.Helper()
	got := make([]string, 0, len(imgs))
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		h, ok := strings.CutPrefix(sc.Text(), "# ")
		if !ok || len(got) >= len(imgs) || h != imgs[len(got)] {
			t.Fatalf("ocr output line %q: want the header of %s", sc.Text(), imgs[min(len(got), len(imgs)-1)])
		}
		if !sc.Scan() {
			t.Fatalf("ocr output ends after the header of %s", h)
		}
		got = append(got, sc.Text())
	}
	if len(got) != len(imgs) {
		t.Fatalf("ocr printed %d lines for %d images", len(got), len(imgs))
	}
	return got
}

// TestOCRNodeFlagErrors checks `ocr --node`'s flags fail before any work,
// and an unreachable edge is an error naming the request (no models needed:
// with --node the recogniser is not loaded).
func TestOCRNodeFlagErrors(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.txt")
	if err := os.WriteFile(keys, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "line.png")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, image.NewGray(image.Rect(0, 0, 64, 24))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ocr", "--line", "--keys", keys, "--rec-model", "rec", img}, "apply to an edge node"},
		{[]string{"ocr", "--line", "--keys", keys, "--node", "ftp://host", img}, "want http:// or https://"},
		{[]string{"ocr", "--line", "--keys", keys, "--node", "https://127.0.0.1:1", "--cacert", filepath.Join(dir, "none.crt"), img}, "--cacert"},
		{[]string{"ocr", "--line", "--keys", keys, "--node", "127.0.0.1:1", "--width", "-3", img}, "FixedWidth"},
		{[]string{"ocr", "--line", "--keys", keys, "--node", "127.0.0.1:1", img}, `ocr: recogniser: Post "http://127.0.0.1:1/v1/infer"`},
	} {
		if out, err := runCLI(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want one naming %q\n%s", tc.args, err, tc.want, out)
		}
	}
}
