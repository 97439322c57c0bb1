//go:build !linux

package linkem

// gsoSize returns 0: GSO is Linux-only.
func gsoSize([]byte) int { return 0 }
