// Package onnxpb holds the Go code generated from ONNX's onnx.proto (ONNX
// 1.12, IR version 8, opsets up to 17; Apache-2.0, see the header of
// onnx.proto). The generated file is committed: building and testing need no
// protoc. To regenerate, install protoc and protoc-gen-go (the version of
// google.golang.org/protobuf in go.mod) and run go generate.
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/edgesplit/edgesplit/model/onnx/internal/onnxpb onnx.proto
