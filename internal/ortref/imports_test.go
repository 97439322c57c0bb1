package ortref_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyToolsImportORT checks that edgesplit never depends on ONNX
// Runtime: outside test files, only this package and the two reference
// programs import it or its Go binding.
func TestOnlyToolsImportORT(t *testing.T) {
	banned := map[string]bool{
		"github.com/edgesplit/edgesplit/internal/ortref": true,
		"github.com/yalue/onnxruntime_go":                true,
	}
	allowed := map[string]bool{
		"internal/ortref":            true,
		"bench/ortbench":             true,
		"model/onnx/internal/refgen": true,
	}
	root := filepath.Join("..", "..")
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if banned[p] && !allowed[filepath.ToSlash(rel)] {
				t.Errorf("%s imports %s: only tests and %v may", path, p, []string{"bench/ortbench", "model/onnx/internal/refgen"})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("walked only %d Go files under %s", files, root)
	}
}
