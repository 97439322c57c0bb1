// Package partition cuts a model graph into pieces and measures them.
//
// A cut at position K is the down-set formed by the first K nodes of the
// graph's canonical topological order; its boundary is every tensor produced
// before K and consumed at or after K. Split turns a graph and a K into a head
// and a tail graph that run, and export, on their own; Cuts lists every K with
// its boundary tensors and byte sizes; Profile measures per-node latency.
package partition
