// Package kern holds the hot numeric kernels of the CNN engine: a blocked,
// packed single-precision GEMM ([Sgemm]) and prepared 2-D convolutions
// ([Conv]) with the bias and an element-wise [Activation] fused into the
// epilogue.
//
// Everything works on row-major []float32 slices; there are no tensor
// objects here. Callers validate shapes before calling (NewConv validates a
// [ConvShape] and returns an error wrapping [ErrShape]); slices too short for
// the shape they are used with make Forward and Sgemm panic with a message
// naming the slice, before any memory is touched. Forward and Sgemm allocate
// nothing in steady state: scratch memory is owned by the caller
// ([Conv.ScratchLen]) or, for Sgemm's packing buffers, taken from a
// sync.Pool. A Forward on a multi-threaded [Pool] allocates nothing either.
//
// # GEMM
//
// The GEMM follows the GotoBLAS/BLIS blocking: B is packed kc×nc at a time
// into nr-column panels, A (one K block at a time, or all of it once at load
// time for a Conv) into mr-row panels, and a register-blocked mr×nr micro-kernel accumulates each
// tile over a K block. On the last K block the micro-kernel adds the bias and
// applies the activation in registers (ReLU, Clip, HardSigmoid and
// HardSwish; LeakyRelu, Sigmoid and Tanh run over the tile right after, while
// it is in L1). Edge tiles go through an on-stack tile. Products with few
// rows (matrix–vector products of fully connected layers) skip packing and
// use dot/axpy loops.
//
// # Convolution paths, chosen once in NewConv
//
//   - 1×1, stride 1, no padding: the GEMM reads the input image directly as
//     its B matrix (no im2col).
//   - Depthwise (Group == InC == OutC): a direct kernel. Each channel is
//     copied once into a zero-padded plane split by stride phase, so that
//     every tap of every stride and dilation reads a contiguous run; the
//     kernel then computes whole output rows vectorised over the output
//     width, with a masked tail.
//   - Anything else (including grouped convolutions): im2col into scratch,
//     nc output columns at a time so the chunk stays in cache, followed by
//     the packed GEMM with the weights packed once in NewConv.
//
// # Threads
//
// A [Pool] is a fixed set of parked workers that run one statically
// partitioned [Task] at a time with the caller: the caller publishes the task
// in one atomic word and the goroutines claim its parts one by one (no
// goroutine start, closure or allocation per op; workers spin for 50 µs
// after a task, then park on a channel). Conv.Forward on a Pool cuts the
// GEMM work into up to 4 parts per thread by output columns (whole nr-column
// blocks; by mr-row panels when there are few columns) and depthwise work by
// channel; [SgemmOn] cuts fully connected products by output column.
// Convolutions under [MinParallelWork] multiply-adds per part stay serial.
// The per-element summation order never depends on the partition, so
// results are bit-identical for any thread count.
//
// # Kernel families
//
// On amd64 the micro-kernels are assembly, chosen at run time with
// golang.org/x/sys/cpu: AVX-512 (12×32 or 8×32 tiles, picked per product by
// how well the rows fill them; 16-lane depthwise kernels with 3×3 and 5×5
// specialisations) when the CPU and OS support it, else AVX2+FMA (6×16
// tiles; 8-lane depthwise with a 3×3 specialisation). On arm64 they are
// NEON assembly, which every arm64 CPU has: an 8×12 micro-kernel, depthwise
// kernels (3×3, and any taps), dot and axpy. They do the same FMAs in the
// same order as the pure-Go kernels compiled for arm64, so there the two
// families give bit-identical results, and the tests check it. Building
// with the noasm tag, on a CPU without AVX2/FMA, or on another architecture
// uses pure-Go kernels (4×8 tiles) that compute the same thing; the tests
// run every family this CPU supports against straightforward references.
//
// A [Conv] is read-only after NewConv and safe for concurrent use, as long
// as each concurrent Forward call gets its own scratch and output.
package kern
