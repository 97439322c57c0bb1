package arch

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/edgesplit/edgesplit"

// chain is the one-way order of the layers: a package may import only
// packages of its own layer or of layers before it.
var chain = []string{"model", "partition", "scheduler", "tensorcodec", "transport", "node"}

// layer returns the rank of a package path (relative to the module) and
// whether it is in the chain.
func layer(pkg string) (int, bool) {
	top, _, _ := strings.Cut(pkg, "/")
	i := slices.Index(chain, top)
	return i, i >= 0
}

// allowed reports whether package from may import package to.
func allowed(from, to string) bool {
	top, _, _ := strings.Cut(from, "/")
	toTop, _, _ := strings.Cut(to, "/")
	switch top {
	case "cmd", "bench":
		return toTop != "cmd" && toTop != "bench" || strings.HasPrefix(to, from+"/")
	case "internal":
		// Shared helpers (trace format, link table) import nothing of
		// ours; the test-only ONNX Runtime reference reads model graphs.
		return toTop == "model" && from == "internal/ortref"
	case "sim":
		r, ok := layer(to)
		return toTop == "internal" || ok && r <= slices.Index(chain, "scheduler")
	}
	rf, ok := layer(from)
	if !ok {
		return false
	}
	if toTop == "internal" {
		return true
	}
	rt, ok := layer(to)
	return ok && rt <= rf
}

// packages maps every package directory of the module (relative path) to
// the edgesplit packages its non-test files import.
func packages(t *testing.T, root string) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		if _, ok := pkgs[rel]; !ok {
			pkgs[rel] = nil
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if q, ok := strings.CutPrefix(p, module+"/"); ok && !slices.Contains(pkgs[rel], q) {
				pkgs[rel] = append(pkgs[rel], q)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestImportsFlowOneWay(t *testing.T) {
	pkgs := packages(t, "../..")
	if len(pkgs) < 10 {
		t.Fatalf("found %d packages; is the test run from internal/arch?", len(pkgs))
	}
	for from, ims := range pkgs {
		for _, to := range ims {
			if !allowed(from, to) {
				t.Errorf("%s imports %s: against the one-way flow of docs/architecture.md", from, to)
			}
		}
	}
}

func TestAllowedRule(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"partition", "model", true},
		{"model", "partition", false},
		{"scheduler", "tensorcodec", false},
		{"tensorcodec/calib", "scheduler", true},
		{"node", "transport/linkem", true},
		{"transport", "node", false},
		{"sim", "scheduler", true},
		{"sim", "model/zoo", true},
		{"sim", "transport/linkem", false},
		{"sim", "internal/linkprofile", true},
		{"internal/mahimahi", "model", false},
		{"internal/ortref", "model", true},
		{"internal/ortref", "node", false},
		{"node", "sim", false},
		{"cmd/edgesplit", "sim", true},
		{"bench/figures", "node", true},
		{"node", "cmd/edgesplit", false},
		{"model", "model/internal/kern", true},
	} {
		if got := allowed(tc.from, tc.to); got != tc.ok {
			t.Errorf("allowed(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.ok)
		}
	}
}

// TestDocTableNamesEveryPackage keeps docs/architecture.md's package table
// equal to the packages that exist: every package has a row (bench/… covers
// the benchmark programs, internal helpers of a package are covered by it)
// and every row names a package that exists.
func TestDocTableNamesEveryPackage(t *testing.T) {
	doc, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| (`[^|]*`) \\|")
	name := regexp.MustCompile("`([^`]+)`")
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		for _, n := range name.FindAllStringSubmatch(m[1], -1) {
			documented[n[1]] = true
		}
	}
	pkgs := packages(t, "../..")
	for p := range pkgs {
		top, _, _ := strings.Cut(p, "/")
		switch {
		case documented[p], top == "bench" && documented["bench/…"]:
		case strings.Contains(p, "/internal/") && documented[p[:strings.Index(p, "/internal/")]]:
		default:
			t.Errorf("package %s has no row in docs/architecture.md", p)
		}
	}
	for d := range documented {
		if _, ok := pkgs[d]; !ok && d != "bench/…" {
			t.Errorf("docs/architecture.md lists %s, which is no package", d)
		}
	}
}
