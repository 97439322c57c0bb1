package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMECommands runs every command of README's table (and the seed
// pipeline's train → infer → eval) at test size and checks each says what
// the README promises. demo, node, infer --node, ca, token, plan, sim,
// split, export and ocr have their own tests (cli_test.go, e2e_test.go,
// token_test.go).
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model and runs every command")
	}
	dir := t.TempDir()
	x := filepath.Join(dir, "x.npy")
	writeRandomNPY(t, x, []int{1, 1, 28, 28})
	seed := filepath.Join(dir, "seed.onnx")
	y := filepath.Join(dir, "y.npy")
	digit := filepath.Join("..", "..", "docs", "digit7.png")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		// The seed pipeline: preprocess, train, write ONNX + sidecar, predict, evaluate.
		{[]string{"train", "--arch", "seed-cnn", "--dataset", "mnist", "--epochs", "1", "--limit", "3000", "--out", seed},
			[]string{"test accuracy", "wrote " + seed}},
		{[]string{"infer", "--model", seed, "--input", digit, "--output", y}, []string{"argmax"}},
		{[]string{"eval", "--model", seed, "--dataset", "mnist"}, []string{"accuracy"}},
		{[]string{"inspect", "--model", "lenet5"}, []string{"Conv", "MACs"}},
		{[]string{"inspect", "--model", "lenet5", "--json"}, []string{`"op"`}},
		{[]string{"profile", "--model", "lenet5", "--input", x, "--runs", "2"}, []string{"Conv"}},
		{[]string{"bench", "model", "--model", "lenet5", "--input", x, "--iters", "5"}, []string{"median_ms=", "min_ms="}},
		{[]string{"codec", "bench", "--model", "lenet5", "--input", x, "--cuts", "all"}, []string{"lossless", "ratio"}},
		{[]string{"link", "test", "--profile", "lte", "--bytes", "20000"}, []string{"measured"}},
	} {
		out, err := runCLI(t, tc.args...)
		if err != nil {
			t.Errorf("edgesplit %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("edgesplit %s: output lacks %q:\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
	}
	// The README's predict step writes the model's output.
	if st, err := os.Stat(y); err != nil || st.Size() == 0 {
		t.Errorf("infer --output wrote nothing: %v", err)
	}
	// The sidecar travels with the trained model.
	if _, err := os.Stat(strings.TrimSuffix(seed, ".onnx") + ".json"); err != nil {
		t.Errorf("train wrote no sidecar beside %s: %v", seed, err)
	}
}
