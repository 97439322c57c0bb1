package tensorcodec

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of
// these (test with [errors.Is]); the wrapping message names the tensor and the
// field that was wrong.
var (
	// ErrTruncated reports input that ends before the message does.
	ErrTruncated = errors.New("tensorcodec: truncated input")
	// ErrChecksum reports a record whose CRC-32C does not match its bytes.
	ErrChecksum = errors.New("tensorcodec: checksum mismatch")
	// ErrVersion reports a message with a format version this package does not know.
	ErrVersion = errors.New("tensorcodec: unsupported format version")
	// ErrLimit reports a message that declares more tensors, elements or bytes
	// than the decoder's limits allow. It is returned before anything is allocated.
	ErrLimit = errors.New("tensorcodec: limit exceeded")
	// ErrCorrupt reports input that is structurally invalid: bad magic, unknown
	// stage codes, impossible lengths, an entropy payload that does not decode.
	ErrCorrupt = errors.New("tensorcodec: corrupt input")
	// ErrDType reports a tensor whose element type is not float32.
	ErrDType = errors.New("tensorcodec: unsupported dtype")
	// ErrShape reports a tensor the format cannot carry (rank 0 or above
	// MaxRank, a zero dimension, a channel axis out of range).
	ErrShape = errors.New("tensorcodec: unsupported shape")
	// ErrOption reports an invalid option value.
	ErrOption = errors.New("tensorcodec: invalid option")
)
