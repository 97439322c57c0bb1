// Package browser drives Debian's headless Chromium for the tests of pages
// the nodes serve: it loads a URL in a fresh profile, lets the page's
// scripts run for a virtual-time budget, and returns the resulting DOM or
// a screenshot. Tests skip when Chromium is not installed, unless
// EDGESPLIT_REQUIRE_BROWSER=1 (set by CI) makes that a failure.
package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// ErrNoBrowser is returned when no Chromium binary is found.
var ErrNoBrowser = errors.New("browser: chromium not installed (apt-get install chromium)")

// Path returns the Chromium binary ($CHROMIUM, else chromium on $PATH).
func Path() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBrowser
}

// Required reports whether a missing browser must fail a test.
func Required() bool { return os.Getenv("EDGESPLIT_REQUIRE_BROWSER") == "1" }

// Options tune a page load.
type Options struct {
	// Budget is the virtual time the page's scripts get before the
	// DOM is read (default 3 s).
	Budget time.Duration
	// Width and Height of the window (default 1280×900).
	Width, Height int
}

func (o Options) args(profile string) []string {
	if o.Budget <= 0 {
		o.Budget = 3 * time.Second
	}
	if o.Width <= 0 {
		o.Width, o.Height = 1280, 900
	}
	// The flags that keep Chromium off the network: this machine has
	// none, and a refused connection at every start is noise.
	return []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--hide-scrollbars", "--user-data-dir=" + profile,
		"--virtual-time-budget=" + strconv.FormatInt(o.Budget.Milliseconds(), 10),
		fmt.Sprintf("--window-size=%d,%d", o.Width, o.Height)}
}

func run(ctx context.Context, args ...string) ([]byte, error) {
	bin, err := Path()
	if err != nil {
		return nil, err
	}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		tail := errb.Bytes()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return nil, fmt.Errorf("browser: %s: %w\n%s", bin, err, tail)
	}
	return out.Bytes(), nil
}

// DOM loads url and returns the page's DOM after its scripts ran.
func DOM(ctx context.Context, url string, o Options) (string, error) {
	dir, err := os.MkdirTemp("", "edgesplit-chromium-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	out, err := run(ctx, append(o.args(dir), "--dump-dom", url)...)
	return string(out), err
}

// Screenshot loads url and writes a PNG of the window to file.
func Screenshot(ctx context.Context, url, file string, o Options) error {
	dir, err := os.MkdirTemp("", "edgesplit-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	if _, err := run(ctx, append(o.args(dir), "--screenshot="+abs, url)...); err != nil {
		return err
	}
	if st, err := os.Stat(abs); err != nil || st.Size() == 0 {
		return fmt.Errorf("browser: no screenshot written to %s: %v", abs, err)
	}
	return nil
}
