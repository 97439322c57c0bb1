package onnx

import (
	"os"
	"path/filepath"
)

// CacheDir is the folder scripts/fetch-models.sh writes the pretrained
// models (and ONNX Runtime) to: $EDGESPLIT_CACHE, else
// $XDG_CACHE_HOME/edgesplit, else ~/.cache/edgesplit.
func CacheDir() string {
	if dir := os.Getenv("EDGESPLIT_CACHE"); dir != "" {
		return dir
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "edgesplit")
}
