//go:build arm64 && !noasm && gc

package kern

// bitIdenticalFamilies: on arm64 the Go compiler turns the pure-Go
// kernels' multiply-adds into FMAs, and the NEON kernels do the same FMAs in
// the same order, so the tests require the two families to agree bit for bit.
const bitIdenticalFamilies = true
