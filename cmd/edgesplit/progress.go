package main

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// progress returns a callback that shows done of total on the command's
// stderr: a progress bar on a terminal, and otherwise (logs, CI) one line
// per tenth of the work, so long runs neither look stuck nor flood a log.
func progress(cmd *cobra.Command, what string) func(done, total int) {
	w := cmd.ErrOrStderr()
	if isTerminal(w) {
		var bar *progressbar.ProgressBar
		return func(done, total int) {
			if bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
					progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
			}
			_ = bar.Set(done)
			if done >= total {
				_ = bar.Finish()
			}
		}
	}
	return lineProgress(w, what)
}

// lineProgress prints "what: done/total" at every tenth of total.
func lineProgress(w io.Writer, what string) func(done, total int) {
	var mu sync.Mutex
	last := -1
	return func(done, total int) {
		if total <= 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		step := 10 * done / total
		if step == last && done < total {
			return
		}
		if step != last {
			last = step
			fmt.Fprintf(w, "%s: %d/%d\n", what, done, total)
		}
	}
}

// isTerminal reports whether w is a terminal (progress bars go there; logs
// get lines).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
