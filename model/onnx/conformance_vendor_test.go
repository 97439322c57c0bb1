package onnx

import (
	"bufio"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/model"
)

var vendorConformance = flag.Bool("vendor-conformance", false,
	"rewrite "+vendoredConformance+" from the installed libonnx-testdata (go test ./model/onnx -run TestConformance -vendor-conformance)")

const (
	// vendorPerOp is how many passing cases are vendored per operator.
	vendorPerOp = 3
	// vendorMaxCase is the largest case (model and tensors) vendored.
	vendorMaxCase = 48 << 10
	// vendorMaxTotal bounds the whole vendored subset.
	vendorMaxTotal = 2 << 20
	// vendorOpsFile lists, per supported operator, the vendored cases that
	// use it ("-": the Debian set has no passing case for it).
	vendorOpsFile = "ops.tsv"
)

// TestVendoredConformanceCoversOps checks that the vendored subset was
// chosen for the operators the engine supports now: every one is listed in
// ops.tsv, with the cases that cover it present.
func TestVendoredConformanceCoversOps(t *testing.T) {
	f, err := os.Open(filepath.Join(vendoredConformance, vendorOpsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	listed := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		op, cases, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("%s: bad line %q", vendorOpsFile, line)
		}
		if cases != "-" {
			listed[op] = strings.Split(cases, ",")
		} else {
			listed[op] = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, op := range model.SupportedOps() {
		cases, ok := listed[op]
		if !ok {
			t.Errorf("the engine supports %s but %s does not list it: rerun go test ./model/onnx -run TestConformance -vendor-conformance with libonnx-testdata installed",
				op, filepath.Join(vendoredConformance, vendorOpsFile))
		}
		for _, c := range cases {
			if _, err := os.Stat(filepath.Join(vendoredConformance, c, "model.onnx")); err != nil {
				t.Errorf("%s: vendored case %s: %v", op, c, err)
			}
		}
	}
}

// writeVendoredConformance replaces the vendored subset with up to
// vendorPerOp passing cases of results (from root) per supported operator:
// node tests first, then those with the fewest distinct operators, then the
// smallest; it writes ops.tsv and README.md beside them.
func writeVendoredConformance(t *testing.T, root string, results []caseResult, supported map[string]bool) {
	t.Helper()
	size := map[string]int64{}
	var passing []caseResult
	for _, r := range results {
		if r.status != "pass" {
			continue
		}
		n, err := dirSize(filepath.Join(root, r.suite, r.name))
		if err != nil {
			t.Fatal(err)
		}
		if n > vendorMaxCase {
			continue
		}
		size[r.suite+"/"+r.name] = n
		passing = append(passing, r)
	}
	sort.SliceStable(passing, func(i, j int) bool {
		a, b := passing[i], passing[j]
		if (a.suite == "node") != (b.suite == "node") {
			return a.suite == "node"
		}
		if len(a.ops) != len(b.ops) {
			return len(a.ops) < len(b.ops)
		}
		if sa, sb := size[a.suite+"/"+a.name], size[b.suite+"/"+b.name]; sa != sb {
			return sa < sb
		}
		return a.suite+"/"+a.name < b.suite+"/"+b.name
	})
	ops := make([]string, 0, len(supported))
	for op := range supported {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	chosen := map[string]bool{}
	perOp := map[string][]string{}
	for _, op := range ops {
		for _, r := range passing {
			if len(perOp[op]) == vendorPerOp {
				break
			}
			if contains(r.ops, op) {
				key := r.suite + "/" + r.name
				perOp[op] = append(perOp[op], key)
				chosen[key] = true
			}
		}
	}
	var total int64
	keys := make([]string, 0, len(chosen))
	for k := range chosen {
		keys = append(keys, k)
		total += size[k]
	}
	sort.Strings(keys)
	if total > vendorMaxTotal {
		t.Fatalf("the chosen %d cases hold %d bytes, over %d", len(keys), total, vendorMaxTotal)
	}
	if err := os.RemoveAll(vendoredConformance); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := copyDir(filepath.Join(root, k), filepath.Join(vendoredConformance, k)); err != nil {
			t.Fatal(err)
		}
	}
	var tsv strings.Builder
	tsv.WriteString("# operator\tvendored cases that use it (- : none passes in the Debian set); written by -vendor-conformance\n")
	var none []string
	for _, op := range ops {
		if len(perOp[op]) == 0 {
			none = append(none, op)
			fmt.Fprintf(&tsv, "%s\t-\n", op)
			continue
		}
		fmt.Fprintf(&tsv, "%s\t%s\n", op, strings.Join(perOp[op], ","))
	}
	if err := os.WriteFile(filepath.Join(vendoredConformance, vendorOpsFile), []byte(tsv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	version := "unknown"
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "libonnx-testdata").Output(); err == nil && len(out) > 0 {
		version = string(out)
	}
	readme := fmt.Sprintf(`# Vendored ONNX conformance cases

%d of ONNX's backend test cases (%d KiB): up to %d per operator the engine supports, chosen among those that pass
(node tests first, then those with the fewest distinct operators, then the smallest; none over %d KiB).
TestConformance runs them on every `+"`go test`"+`, and every one must pass; it also runs the full set when Debian's
`+"`libonnx-testdata`"+` is installed. %s lists the cases per operator.

- Source: Debian package `+"`libonnx-testdata`"+` %s (%s),
  which packages `+"`onnx/backend/test/data`"+` of upstream ONNX (https://github.com/onnx/onnx); copied unchanged:
  `+"`model.onnx`"+` and `+"`test_data_set_*/{input,output}_N.pb`"+` per case.
- Licence: ONNX is licensed under the Apache License 2.0 (Copyright the ONNX Project Contributors); Debian's
  copyright file for the package lists these data files under the Expat (MIT) licence. Both permit redistribution.
- Operators supported by the engine with no passing case in the Debian set (they are listed with "-" in %s):
  %s.

Regenerate (with the package installed) by

    go test ./model/onnx -run 'TestConformance$' -vendor-conformance
`, len(keys), (total+1023)/1024, vendorPerOp, vendorMaxCase>>10, vendorOpsFile, version, root, vendorOpsFile, orNone(none))
	if err := os.WriteFile(filepath.Join(vendoredConformance, "README.md"), []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("vendored %d cases (%d bytes) into %s", len(keys), total, vendoredConformance)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	return n, err
}

// copyDir copies the regular files under src to dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
}
