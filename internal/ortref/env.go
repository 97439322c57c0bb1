//go:build cgo

package ortref

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// LibName is the file name of the ONNX Runtime shared library in the cache
// (ONNX Runtime 1.30 for linux/x64, from the npm package
// onnxruntime-node@1.30.0).
const LibName = "libonnxruntime.so.1"

// ErrNotInitialized is returned by [New] and [Run] when [Init] has not been
// called (or every close function it returned has been called).
var ErrNotInitialized = errors.New("ortref: ONNX Runtime is not initialised (call ortref.Init first)")

// CacheDir returns the folder scripts/fetch-models.sh writes to:
// $EDGESPLIT_CACHE, else $XDG_CACHE_HOME/edgesplit, else ~/.cache/edgesplit.
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

// LibPath returns the path of the cached ONNX Runtime library,
// CacheDir()/LibName. When the file is missing the error names the expected
// path and the script that fetches it, and wraps the os.Stat error (so
// errors.Is(err, fs.ErrNotExist) holds); tests skip on it.
func LibPath() (string, error) {
	p := filepath.Join(CacheDir(), LibName)
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("ortref: ONNX Runtime library not cached at %s (run scripts/fetch-models.sh): %w", p, err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("ortref: ONNX Runtime library %s is a directory (rerun scripts/fetch-models.sh)", p)
	}
	return p, nil
}

// env counts the users of the one ONNX Runtime environment a process may
// have. The environment is process-wide state inside the binding, so this
// is too.
var env struct {
	mu   sync.Mutex
	refs int
	lib  string
}

// Init loads the ONNX Runtime shared library at libPath and initialises its
// environment, or, when a caller already has, adds a user to it. The
// returned close function removes that user; the environment is destroyed
// (and the library unloaded) when the last user closes. Calling close more
// than once is harmless. Init and close are safe for concurrent use; Init
// fails if the environment is already up from a different library.
func Init(libPath string) (close func(), err error) {
	if libPath == "" {
		return nil, errors.New("ortref: Init: empty library path")
	}
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.refs == 0 {
		ort.SetSharedLibraryPath(libPath)
		if err := ort.InitializeEnvironment(); err != nil {
			return nil, fmt.Errorf("ortref: initialise ONNX Runtime from %s: %w", libPath, err)
		}
		env.lib = libPath
	} else if libPath != env.lib {
		return nil, fmt.Errorf("ortref: Init(%q): ONNX Runtime is already initialised from %s", libPath, env.lib)
	}
	env.refs++
	var once sync.Once
	return func() { once.Do(release) }, nil
}

func release() {
	env.mu.Lock()
	defer env.mu.Unlock()
	env.refs--
	if env.refs == 0 {
		// As before this package existed, a failure to tear down is not
		// reported: there is nothing left to do with the runtime.
		_ = ort.DestroyEnvironment()
		env.lib = ""
	}
}

// RequireEnv is the environment variable that turns a missing reference
// into a test failure: with RequireEnv=1 (CI sets it), [LibPathTest] and
// [InitTest] fail instead of skipping when the library is not cached.
const RequireEnv = "EDGESPLIT_REQUIRE_ORT"

// Required reports whether RequireEnv is set to 1.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// LibPathTest returns [LibPath] for the test or benchmark tb. When the
// library is not cached it skips tb, or fails it if [Required].
func LibPathTest(tb testing.TB) string {
	tb.Helper()
	lib, err := LibPath()
	if err != nil {
		if Required() {
			tb.Fatalf("%v (%s=1: the ONNX Runtime reference is required)", err, RequireEnv)
		}
		tb.Skip(err)
	}
	return lib
}

// InitTest initialises ONNX Runtime from the cached library ([LibPathTest])
// for the test or benchmark tb, releasing it in tb.Cleanup. It skips tb when
// the library is not cached (fails it if [Required]) and fails it when ONNX
// Runtime does not start.
func InitTest(tb testing.TB) {
	tb.Helper()
	lib := LibPathTest(tb)
	closeORT, err := Init(lib)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(closeORT)
}
