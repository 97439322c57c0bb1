package onnx

import "log/slog"

// DefaultMaxBytes is the default cap on the size of a model file: 1 GiB.
const DefaultMaxBytes = 1 << 30

// maxElements caps the element count of a single tensor (2^31), independent
// of the file size cap.
const maxElements = 1 << 31

// maxRecursion bounds protobuf message nesting while decoding.
const maxRecursion = 64

// Option configures Decode and Load.
type Option func(*config)

type config struct {
	maxBytes      int64
	logger        *slog.Logger
	keepConstants bool
}

func newConfig(opts []Option) config {
	c := config{maxBytes: DefaultMaxBytes}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxBytes
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return c
}

// WithMaxBytes caps the size of the model file (default DefaultMaxBytes);
// larger inputs fail with ErrTooLarge before being read. n <= 0 selects the
// default.
func WithMaxBytes(n int64) Option { return func(c *config) { c.maxBytes = n } }

// WithLogger sets the logger for warnings (an opset newer than 17, for
// example). The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithConstantNodes keeps Constant nodes as nodes (their value in the "value"
// tensor attribute) for the engine's folder, instead of the default of
// turning each into an initializer named after its output.
func WithConstantNodes(keep bool) Option { return func(c *config) { c.keepConstants = keep } }
