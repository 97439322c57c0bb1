// Package arch holds no code: its test checks the import graph of the whole
// module against the rule in docs/architecture.md (data flows one way:
// model → partition → scheduler → tensorcodec → transport → node; sim may
// import scheduler and partition; cmd and bench assemble everything;
// internal helpers import no other edgesplit package; the test-only
// ONNX Runtime reference reads model graphs) and that the
// document's package table names exactly the packages that exist.
package arch
