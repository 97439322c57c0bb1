package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/model/dataset"
)

// runCLI runs the edgesplit command line in-process and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestDemoFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an in-process cluster")
	}
	out, err := runCLI(t, "demo", "--model", "seed-cnn-trained", "--requests", "3", "--baseline", "1")
	if err != nil {
		t.Fatalf("demo --model seed-cnn-trained: %v\n%s", err, out)
	}
	for _, want := range []string{"embedded calibration table", "demo requests: mnist:test", "accuracy budget max loss 0.1%",
		"top-1 = unsplit", "3/3", "vs edge, vs cloud:"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "--clouds", "0"}, "--clouds 0"},
		{[]string{"demo", "--max-accuracy-loss", "2"}, "--max-accuracy-loss"},
		{[]string{"demo", "--model", "no-such-model"}, "no-such-model"},
	} {
		if out, err := runCLI(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want one naming %q\n%s", tc.args, err, tc.want, out)
		}
	}
}

func TestInferFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"infer", "--model", "lenet5", "--policy", "auto", "x.npy"}, "--policy applies to a request to an edge node"},
		{[]string{"infer", "--node", "127.0.0.1:1", "--cut", "2", "--policy", "auto", "x.npy"}, "give one"},
		{[]string{"infer", "--node", "ftp://host", "x.npy"}, "want http:// or https://"},
		{[]string{"infer", "x.npy"}, "needs --model"},
		{[]string{"infer"}, "no input"},
	} {
		if out, err := runCLI(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want one naming %q\n%s", tc.args, err, tc.want, out)
		}
	}
}

func TestCAIssueRefusesOverwriteAndBadValidity(t *testing.T) {
	dir := t.TempDir()
	if _, err := runCLI(t, "ca", "init", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "ca", "issue", "--dir", dir, "--node", "edge", "--role", "edge"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "ca", "issue", "--dir", dir, "--node", "edge", "--role", "edge"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second issue: %v, want a refusal naming --force", err)
	}
	if _, err := runCLI(t, "ca", "issue", "--dir", dir, "--node", "edge", "--role", "edge", "--force"); err != nil {
		t.Errorf("issue --force: %v", err)
	}
	if _, err := runCLI(t, "ca", "issue", "--dir", dir, "--node", "other", "--role", "cloud", "--validity", "-1h"); err == nil || !strings.Contains(err.Error(), "--validity") {
		t.Errorf("negative validity: %v", err)
	}
}

func TestExportAndSplitKeepTheSidecar(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "m.onnx")
	if out, err := runCLI(t, "export", "--model", "seed-cnn-trained", "--out", m); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "split", "--model", m, "--cut", "3", "--out", filepath.Join(dir, "sp")); err != nil {
		t.Fatalf("split: %v\n%s", err, out)
	}
	for _, f := range []string{"m.json", "sp/head.json", "sp/tail.json"} {
		sc, err := dataset.ReadSidecar(filepath.Join(dir, f))
		if err != nil || len(sc.Labels) != 10 {
			t.Errorf("%s: %v, %d labels", f, err, len(sc.Labels))
		}
	}
}

// TestNodeSecureByDefault: a node refuses a key on argv, a certificate for
// another role, and no gossip key at all unless --insecure-gossip.
func TestNodeSecureByDefault(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if _, err := runCLI(t, "ca", "init", "--dir", ca); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "ca", "issue", "--dir", ca, "--node", "c", "--role", "cloud"); err != nil {
		t.Fatal(err)
	}
	base := []string{"node", "--role", "cloud", "--name", "c", "--ca", ca, "--model", "lenet5", "--bind", "127.0.0.1:0"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--gossip-key", "000102030405060708090a0b0c0d0e0f"}, "never go on the command line"},
		{[]string{"--gossip-key-file", filepath.Join(dir, "missing.key")}, "missing.key"},
	} {
		if _, err := runCLI(t, append(slices.Clone(base), tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
	edgeArgs := slices.Clone(base)
	edgeArgs[2] = "edge"
	if _, err := runCLI(t, edgeArgs...); err == nil || !strings.Contains(err.Error(), "for role \"cloud\", not edge") {
		t.Errorf("a cloud certificate for an edge: %v", err)
	}
	if err := os.Remove(filepath.Join(ca, "gossip.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, base...); err == nil || !strings.Contains(err.Error(), "no gossip key") {
		t.Errorf("no key: %v, want a refusal", err)
	}
}

func TestPlanObjective(t *testing.T) {
	if testing.Short() {
		t.Skip("profiles a model")
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--objective", "energy", "--profile", "3g"}, []string{"objective energy", "total_mJ", "radio 3g", ", objective energy: edge-only"}},
		{[]string{"--objective", "weighted", "--profile", "wifi", "--interval", "10ms", "--compute-w", "20"}, []string{"objective weighted", "radio wifi", "mJ"}},
		{[]string{"--profile", "ethernet"}, []string{"objective latency", "none (wired)", "cpu_mJ"}},
	} {
		args := append([]string{"plan", "--model", "lenet5", "--runs", "1", "--codecs", "lossless"}, tc.args...)
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", args, w, out)
			}
		}
	}
	if _, err := runCLI(t, "plan", "--model", "lenet5", "--objective", "joules"); err == nil || !strings.Contains(err.Error(), "--objective") {
		t.Errorf("--objective joules: err %v", err)
	}
}

func TestSimObjective(t *testing.T) {
	out, err := runCLI(t, "sim", "--devices", "3", "--model", "lenet5", "--duration", "5s", "--objective", "energy")
	if err != nil {
		t.Fatalf("sim --objective energy: %v\n%s", err, out)
	}
	for _, w := range []string{"objective            energy", "mJ/request: compute"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	out, err = runCLI(t, "sim", "--scenario", "../../docs/scenarios/energy.yaml", "--objective", "weighted", "--energy-weight", "1")
	if err != nil || !strings.Contains(out, "objective            weighted\n") {
		t.Errorf("--objective over a scenario: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"sim", "--devices", "1", "--model", "lenet5", "--duration", "1s", "--objective", "joules"},
		{"sim", "--scenario", "../../docs/scenarios/energy.yaml", "--objective", "joules"},
		{"sim", "--scenario", "../../docs/scenarios/energy.yaml", "--energy-weight", "-1"},
	} {
		if _, err := runCLI(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestTrainPatchFlag(t *testing.T) {
	for args, want := range map[string]string{
		"train --arch lenet5 --patch 4":   "--patch applies to --arch vit-tiny, not lenet5",
		"train --arch vit-tiny --patch 5": "--patch 5: want a divisor of the 28-pixel image side",
		"train --arch vit-tiny --patch 0": "--patch 0: want a divisor",
	} {
		o, err := runCLI(t, append(strings.Fields(args), "--out", filepath.Join(t.TempDir(), "m.onnx"))...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("edgesplit %s: %v, want an error containing %q\n%s", args, err, want, o)
		}
	}
}
