// Package stats is the one home of the order statistics edgesplit takes of
// its measurements (per-node profiling runs, RTT and overhead windows, the
// demo's and benchmarks' summaries): Median and MedianInPlace. It imports
// nothing of edgesplit.
package stats
