// Package mahimahi reads, checks and writes link-capacity traces in
// Mahimahi's format, and does the arithmetic of such a schedule; it is the
// one place that knows the format, shared by transport/linkem (the emulator)
// and sim (the simulator).
//
// The format: one non-negative integer per line, the time in milliseconds of
// one delivery opportunity of [OpportunityBytes] bytes. Timestamps never
// decrease; two opportunities in the same millisecond are two equal lines.
// The trace loops with a period equal to its last timestamp, which must
// therefore be positive. As an extension, blank lines and lines starting with
// '#' are skipped.
//
// [Parse] bounds what hostile input can cost: the number of opportunities
// and the length of a line are limited ([Limits]), and every error is an
// [*Error] naming the line. A [Trace] is a plain slice of timestamps; its
// methods count opportunities and bytes between two times, looping, and are
// safe for concurrent use.
package mahimahi
