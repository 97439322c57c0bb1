//go:build linux

package tensorcodec

import (
	"syscall"
	"time"
)

// threadCPU returns the CPU time used by the calling OS thread and true; the
// caller must hold runtime.LockOSThread for the readings to be comparable.
func threadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
