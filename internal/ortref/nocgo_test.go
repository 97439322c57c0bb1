//go:build !cgo

package ortref_test

import (
	"os"
	"testing"
)

// TestORTNeedsCgo stands in for the ONNX Runtime tests in a build without
// cgo (CGO_ENABLED=0, or no C compiler found): they are not compiled, which
// is a failure where the reference is required (EDGESPLIT_REQUIRE_ORT=1).
func TestORTNeedsCgo(t *testing.T) {
	if os.Getenv("EDGESPLIT_REQUIRE_ORT") == "1" {
		t.Fatal("EDGESPLIT_REQUIRE_ORT=1, but this build has no cgo (CGO_ENABLED=0 or no C compiler): the ONNX Runtime reference tests cannot run")
	}
	t.Skip("built without cgo: the ONNX Runtime reference tests are not compiled")
}
