//go:build !arm64 || noasm || !gc

package kern

// bitIdenticalFamilies: elsewhere the assembly kernels (amd64) sum in
// other orders than the pure-Go ones; the tests compare them with the
// reference within a tolerance only.
const bitIdenticalFamilies = false
