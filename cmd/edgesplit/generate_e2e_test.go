package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/edgesplit/edgesplit/node"
)

// TestGenerateOnProcesses generates text with gpt-tiny on three
// `edgesplit node` OS processes (an edge 4× slower than its two clouds,
// real gossip, QUIC with mutual TLS, the edge's uplink an emulated LTE
// link) through `edgesplit generate --node`, a client of POST /v1/generate:
//   - cloud-only, split after block 1, edge-only and the edge's own plan
//     all print exactly the tokens that local, unsplit greedy decoding
//     prints (the window jumps too: more tokens than the context);
//   - a split generation's per-token bytes are one hidden state's;
//   - the cloud carrying a split generation is killed (SIGKILL) mid-way:
//     the edge replays the window to the other cloud and the printed text
//     is still the same.
func TestGenerateOnProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process generation test skipped with -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	const mdl = "gpt-tiny"
	cl := startEdgeAndClouds(t, bin, dir, mdl, "infer,override,cluster", "--link", "lte", "--device", "slowdown:4")
	c1, base, caCert, tokFile := cl.c1, cl.base, cl.caCert, cl.tokFile

	const prompt = "The edge and the cloud "
	const n = 90 // past gpt-tiny's 64-token context: the window jumps
	want := run(t, bin, "generate", "--model", mdl, "--prompt", prompt, "-n", strconv.Itoa(n))
	if !strings.HasPrefix(want, prompt) || len(want) < len(prompt)+n {
		t.Fatalf("local generate printed %q", want)
	}
	remote := func(t *testing.T, extra ...string) (string, node.GenerateResult) {
		t.Helper()
		res := filepath.Join(t.TempDir(), "result.json")
		args := append([]string{"generate", "--node", base, "--cacert", caCert, "--token-file", tokFile, "--prompt", prompt, "-n", strconv.Itoa(n), "--result", res}, extra...)
		cmd := exec.Command(bin, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("edgesplit %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		var r node.GenerateResult
		b, err := os.ReadFile(res)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s", strings.TrimSpace(stderr.String()))
		return string(out), r
	}
	for _, tc := range []struct {
		name string
		args []string
		cut  int
	}{
		{"cloud-only", []string{"--cut", "0"}, 0},
		{"cut 1", []string{"--cut", "1"}, 1},
		{"prefill in the cloud, decode at cut 1", []string{"--cut", "0", "--decode-cut", "1"}, 0},
		{"prefill in the cloud, decode at the edge", []string{"--cut", "0", "--decode-cut", "2"}, 0},
		{"edge-only", []string{"--cut", "2"}, 2},
		{"planned", nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, r := remote(t, tc.args...)
			if got != want {
				t.Fatalf("split generation printed\n%q\nwant (local, unsplit)\n%q", got, want)
			}
			if tc.cut >= 0 && r.Cut != tc.cut {
				t.Errorf("ran at cut %d, asked for %d", r.Cut, tc.cut)
			}
			if r.Blocks != 2 || len(r.Tokens) != n || r.Prefills < 2 {
				t.Errorf("report: %d blocks, %d tokens, %d prefills; want 2, %d, ≥ 2 (a window jump)", r.Blocks, len(r.Tokens), r.Prefills, n)
			}
			switch {
			case r.Cut == 2:
				if r.BytesUp != 0 || r.Cloud != "" {
					t.Errorf("edge-only sent %d bytes to %q", r.BytesUp, r.Cloud)
				}
			case r.Cut == 1 || r.DecodeCut == 1:
				// One 64-float hidden state, losslessly coded, and its header.
				if r.BytesPerStep < 64 || r.BytesPerStep > 4*64+128 {
					t.Errorf("%.0f bytes per decode step at cut 1, want about one hidden state (≤ %d)", r.BytesPerStep, 4*64+128)
				}
			}
			t.Logf("cuts %d/%d (%s): first token %.0f ms, %.1f tokens/s, %.0f B/token up, %.0f B/step, %d B down", r.Cut, r.DecodeCut, r.Cloud, r.FirstTokenMS, r.TokensPerSec, r.BytesPerToken, r.BytesPerStep, r.BytesDown)
		})
	}

	t.Run("cloud killed mid-generation", func(t *testing.T) {
		res := filepath.Join(t.TempDir(), "result.json")
		const long = 150
		wantLong := run(t, bin, "generate", "--model", mdl, "--prompt", prompt, "-n", strconv.Itoa(long))
		cmd := exec.Command(bin, "generate", "--node", base, "--cacert", caCert, "--token-file", tokFile, "--prompt", prompt,
			"-n", strconv.Itoa(long), "--cut", "1", "--cloud", "cloud1", "--result", res)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill cloud1 once a third of the tokens have come.
		var got strings.Builder
		rd := bufio.NewReader(stdout)
		for got.Len() < len(prompt)+long/3 {
			b, err := rd.ReadByte()
			if err != nil {
				t.Fatalf("stream ended after %q: %v\n%s", got.String(), err, stderr.String())
			}
			got.WriteByte(b)
		}
		if err := syscall.Kill(c1.pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		rest, err := readRest(rd)
		got.WriteString(rest)
		if werr := cmd.Wait(); err != nil || werr != nil {
			t.Fatalf("generation after the kill: %v, %v\n%s", err, werr, stderr.String())
		}
		if got.String() != wantLong {
			t.Fatalf("after the kill the generation printed\n%q\nwant\n%q", got.String(), wantLong)
		}
		var r node.GenerateResult
		b, err := os.ReadFile(res)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Failovers < 1 || r.Cloud != "cloud2" {
			t.Errorf("report: %d failovers, finished on %q; want ≥ 1 and cloud2", r.Failovers, r.Cloud)
		}
		t.Logf("killed cloud1 at token %d: %s", long/3, strings.TrimSpace(stderr.String()))
	})
}

// readRest reads the rest of r as a string.
func readRest(r *bufio.Reader) (string, error) {
	var b strings.Builder
	_, err := r.WriteTo(&b)
	return b.String(), err
}
