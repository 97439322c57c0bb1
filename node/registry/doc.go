// Package registry keeps a node's models on disk, content-addressed. A
// model version is the SHA-256 of its ONNX bytes and its calibration table
// (Digest), so the same bytes have the same version on every node and a
// version names exactly one model. A Store is a directory with a manifest
// (versions per name, the active one per name), one blob per version
// (optionally sealed with AES-256-GCM per chunk, keyed from the CA folder),
// written atomically (temporary file, fsync, rename, fsync of the
// directory). Versions travel between nodes in fixed-size chunks, each
// checked against the SHA-256 its manifest entry lists: a Download writes
// chunks in any order, resumes after a crash by keeping the chunks that
// still verify, and commits only when the whole version's digest matches.
// Memory per transfer is one chunk; disk is bounded by Options.MaxBytes.
package registry
