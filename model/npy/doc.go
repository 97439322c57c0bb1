// Package npy reads and writes NumPy .npy files holding float32 arrays, the
// format edgesplit's CLI uses for model inputs and outputs.
//
// Read accepts format versions 1.0, 2.0 and 3.0, C order, little- or
// big-endian float32 ('<f4', '>f4'), and converts float64, float16 and the
// integer types to float32. Write produces version 1.0, '<f4', C order, with
// the header padded to 64 bytes as NumPy does. Sizes read from a file are
// checked against a cap (WithMaxBytes, 1 GiB by default) and data is read as
// it arrives, so a header that claims more than the file holds fails without
// a large allocation.
package npy
