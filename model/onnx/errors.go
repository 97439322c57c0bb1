package onnx

import "errors"

// Errors returned by Decode and Encode, always wrapped with details naming
// the node, tensor or field at fault; test them with errors.Is.
var (
	// ErrMalformed reports bytes that are not a well-formed ONNX model:
	// truncated or invalid protobuf, a tensor whose data does not match its
	// shape, a dangling tensor reference.
	ErrMalformed = errors.New("onnx: malformed model")
	// ErrUnsupported reports a well-formed model that uses something
	// edgesplit does not handle: an operator from another domain, a
	// subgraph, a sparse or string tensor, an attribute kind.
	ErrUnsupported = errors.New("onnx: unsupported feature")
	// ErrExternalData reports a tensor stored in an external data file.
	ErrExternalData = errors.New("onnx: external tensor data is not supported")
	// ErrTooLarge reports a file or tensor over a size limit.
	ErrTooLarge = errors.New("onnx: size limit exceeded")
)
