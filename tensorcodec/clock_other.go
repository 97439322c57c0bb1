//go:build !linux

package tensorcodec

import "time"

// threadCPU is unavailable here; Bench falls back to wall-clock time.
func threadCPU() (time.Duration, bool) { return 0, false }
