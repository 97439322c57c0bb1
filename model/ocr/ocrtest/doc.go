// Package ocrtest holds what the OCR tests share: seeded text lines, a
// renderer that sets them in a TrueType font (Go's fonts, or Debian's DejaVu
// from fonts-dejavu-core), and a character-accuracy score. It is for tests
// and benchmarks; nothing in edgesplit's binary imports it.
package ocrtest
