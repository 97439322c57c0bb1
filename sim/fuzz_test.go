package sim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseScenario: any input either parses into a scenario that passes
// validation or fails with a one-line *ScenarioError; never a panic.
func FuzzParseScenario(f *testing.F) {
	for _, name := range []string{"demo", "cell-1000", "lte-exits"} {
		if b, err := os.ReadFile(filepath.Join("..", "docs", "scenarios", name+".yaml")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(base))
	f.Add([]byte(busy))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseScenario(bytes.NewReader(b), "fuzz.yaml")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if s.Duration <= 0 || len(s.Edges) == 0 || len(s.Models) == 0 {
			t.Fatalf("invalid scenario accepted: %+v", s)
		}
	})
}

// FuzzParseTrace: a parsed trace has a positive period and non-decreasing
// timestamps, and transfers on it finish no earlier than they start; an
// error is one line starting "trace".
func FuzzParseTrace(f *testing.F) {
	f.Add([]byte("1\n1\n3\n4\n"))
	f.Add([]byte("# x\n\n5\n10\n"))
	f.Add([]byte("0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ParseTrace(bytes.NewReader(b))
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "trace") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q", msg)
			}
			return
		}
		if tr.period <= 0 {
			t.Fatal("period ≤ 0")
		}
		for _, start := range []int64{0, 1, 1_500_000, 7 * tr.period * 1_000_000} {
			if end := tr.finish(start, 0, 4000); end < start {
				t.Fatalf("finish %d before start %d", end, start)
			}
		}
	})
}

// FuzzReadModel: a model file either reads into a model that validates or
// fails; never a panic.
func FuzzReadModel(f *testing.F) {
	m, _ := SyntheticModel("seed-cnn")
	var buf bytes.Buffer
	WriteModel(&buf, m)
	f.Add(buf.Bytes())
	f.Add([]byte(`{"profile":{"Nodes":[{"Latency":-1}],"Cuts":[{},{}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadModel(bytes.NewReader(b))
		if err != nil {
			return
		}
		if m.check() != nil {
			t.Fatal("invalid model accepted")
		}
	})
}

func TestModelFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m, _ := SyntheticModel("resnet18")
	f, err := os.Create(filepath.Join(dir, "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteModel(f, m); err != nil {
		t.Fatal(err)
	}
	f.Close()
	scen := strings.Replace(base, "synthetic: seed-cnn", "profile: r.json", 1)
	if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte(scen), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadScenario(filepath.Join(dir, "s.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := RunDir(context.Background(), s, filepath.Join(dir, "out"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := os.ReadFile(filepath.Join(dir, "out", "requests.csv"))
	if n := bytes.Count(csv, []byte("\n")) - 1; int64(n) != sum.Requests || n == 0 {
		t.Errorf("%d CSV rows, %d requests", n, sum.Requests)
	}
	// The same model through the resolver gives the same run.
	scen2 := strings.Replace(base, "{name: m, synthetic: seed-cnn}", "{name: m}", 1)
	s2, err := ParseScenario(strings.NewReader(scen2), "resolver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), s2, Config{}); err == nil || !strings.Contains(err.Error(), "models[0]") {
		t.Errorf("model without a source ran: %v", err)
	}
	sum2, err := Run(context.Background(), s2, Config{Resolve: func(string) (Model, error) { return SyntheticModel("resnet18") }})
	if err != nil || sum2.Mean != sum.Mean {
		t.Errorf("resolver run: %v, mean %v vs %v", err, sum2.Mean, sum.Mean)
	}
	q, err := QuickScenario(Quick{Devices: 20, Model: "vgg16", Link: "5g-midband", Duration: 5e9})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), q, Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := QuickScenario(Quick{Link: "6g"}); err == nil || !strings.Contains(err.Error(), "link.profile") {
		t.Errorf("bad quick link: %v", err)
	}
}
