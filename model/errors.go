package model

import (
	"errors"
	"fmt"
)

// ErrUnsupportedOp reports an operator (or an operator configuration) the
// engine does not run. It is wrapped in an *OpError naming the node.
var ErrUnsupportedOp = errors.New("unsupported op")

// ErrShape reports a shape mismatch: an input bound with the wrong shape, or
// tensors whose shapes do not fit an operator during shape inference.
var ErrShape = errors.New("shape mismatch")

// ErrTooLarge reports a tensor whose element count exceeds the engine's
// limits (MaxTensorElements, or the arena limit); it is checked before any
// allocation so that a hostile or corrupt model cannot exhaust memory.
var ErrTooLarge = errors.New("tensor too large")

// MaxTensorElements is the largest number of elements any single tensor
// (initializer, folded constant or intermediate) may have.
const MaxTensorElements = 1 << 28

// maxFoldElements bounds a tensor produced by constant folding at load time.
const maxFoldElements = 1 << 26

// maxFoldTotal bounds all the data constant folding creates for one graph.
const maxFoldTotal = 1 << 27

// maxArenaElements bounds the arena of one Extractor (2 GiB of float32).
const maxArenaElements = 1 << 29

// maxRank is the largest tensor rank the engine handles.
const maxRank = 8

// OpError is an error attributed to one node of a graph.
type OpError struct {
	Node string // node name
	Op   string // operator type
	Err  error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("model: node %q (%s): %v", e.Node, e.Op, e.Err)
}

// Unwrap returns the underlying error, so errors.Is(err, ErrShape) and
// errors.Is(err, ErrUnsupportedOp) work.
func (e *OpError) Unwrap() error { return e.Err }

// nodeErr wraps err in an *OpError for n (unless it already is one).
func nodeErr(n *Node, err error) error {
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{Node: n.Name, Op: n.Op, Err: err}
}

// shapeErrf builds an ErrShape-wrapping error.
func shapeErrf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrShape, fmt.Sprintf(format, args...))
}

// unsupportedf builds an ErrUnsupportedOp-wrapping error.
func unsupportedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupportedOp, fmt.Sprintf(format, args...))
}
