package tensorcodec

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"time"

	"gorgonia.org/tensor"
)

// BenchOptions tunes [Bench]. The zero value is valid.
type BenchOptions struct {
	// MinTime is how long each of the encode, decode and memmove loops runs
	// at least (thread CPU time where available). Default 200 ms.
	MinTime time.Duration
	// Encoder holds extra encoder options applied after the preset.
	Encoder []EOption
	// Limits for the decoder; zero fields get [DefaultLimits], except that
	// MaxElements and MaxBytes are raised to fit the tensors benchmarked.
	Limits Limits
}

// BenchResult is what [Bench] measured for one preset on one set of tensors.
type BenchResult struct {
	Preset   Preset
	Tensors  int
	Elements int
	// RawBytes is the float32 size; Bytes the encoded message size.
	RawBytes, Bytes int
	// Ratio is RawBytes / Bytes.
	Ratio float64
	// EncodeMBps and DecodeMBps are throughputs in 10⁶ float32 bytes per
	// second of one core; MemmoveMBps is copy() of RawBytes measured in the
	// same run, for scale (the machine's speed varies between runs).
	EncodeMBps, DecodeMBps, MemmoveMBps float64
	// CPUTime reports that the speeds are per CPU-second of the benchmarking
	// thread (Linux) rather than per wall-clock second.
	CPUTime bool
	// MaxAbsErr and RelRMSE are the encoder's error report.
	MaxAbsErr, RelRMSE float64
	// EncodeIters and DecodeIters are the loop counts behind the speeds.
	EncodeIters, DecodeIters int
	// Decoded holds the tensors of the last decode (owned by the caller),
	// e.g. to run the rest of a model on them.
	Decoded []*tensor.Dense
}

// String formats the result as one table row.
func (r BenchResult) String() string {
	return fmt.Sprintf("%-17s %10d B  %6.2fx  enc %7.0f MB/s (%.2fx memmove)  dec %7.0f MB/s (%.2fx memmove)  maxerr %.3g  relrmse %.3g",
		r.Preset, r.Bytes, r.Ratio, r.EncodeMBps, r.EncodeMBps/r.MemmoveMBps, r.DecodeMBps, r.DecodeMBps/r.MemmoveMBps, r.MaxAbsErr, r.RelRMSE)
}

// Bench encodes and decodes ts (as one message) with preset p repeatedly on
// the calling goroutine and reports size, speed and error. It stops early,
// returning ctx's error, when ctx is cancelled.
func Bench(ctx context.Context, p Preset, ts []*tensor.Dense, o BenchOptions) (BenchResult, error) {
	res := BenchResult{Preset: p}
	if o.MinTime <= 0 {
		o.MinTime = 200 * time.Millisecond
	}
	enc, err := NewEncoder(append([]EOption{WithPreset(p)}, o.Encoder...)...)
	if err != nil {
		return res, err
	}
	defer enc.Close()
	msg, st, err := enc.Encode(nil, ts...)
	if err != nil {
		return res, err
	}
	lim := o.Limits.withDefaults()
	lim.MaxElements = max(lim.MaxElements, st.Elements)
	lim.MaxBytes = max(lim.MaxBytes, len(msg), 4*st.Elements+64)
	lim.MaxTensors = max(lim.MaxTensors, len(ts))
	dec := &Decoder{cfg: decoderConfig{lim: lim}}
	defer dec.Close()
	out, err := dec.Decode(nil, msg)
	if err != nil {
		return res, fmt.Errorf("tensorcodec: bench %s: decoding own output: %w", p, err)
	}
	res.Tensors, res.Elements, res.RawBytes, res.Bytes = st.Tensors, st.Elements, st.RawBytes, st.Bytes
	res.Ratio, res.MaxAbsErr, res.RelRMSE = st.Ratio(), st.MaxAbsErr, st.RelRMSE

	// Time on the goroutine's own OS thread's CPU clock where the platform
	// has one (Linux), so speeds are per core even on a busy machine.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, res.CPUTime = threadCPU()
	wall := time.Now()
	clock := func() time.Duration {
		if res.CPUTime {
			t, _ := threadCPU()
			return t
		}
		return time.Since(wall)
	}
	loop := func(f func() error) (int, time.Duration, error) {
		start := clock()
		for i := 1; ; i++ {
			if err := f(); err != nil {
				return i, 0, err
			}
			if el := clock() - start; el >= o.MinTime {
				return i, el, nil
			}
			if err := ctx.Err(); err != nil {
				return i, 0, err
			}
		}
	}
	mbps := func(iters int, el time.Duration) float64 {
		return float64(res.RawBytes) * float64(iters) / el.Seconds() / 1e6
	}
	iters, el, err := loop(func() error {
		msg, _, err = enc.Encode(msg[:0], ts...)
		return err
	})
	if err != nil {
		return res, err
	}
	res.EncodeIters, res.EncodeMBps = iters, mbps(iters, el)
	iters, el, err = loop(func() error {
		out, err = dec.Decode(out, msg)
		return err
	})
	if err != nil {
		return res, err
	}
	res.DecodeIters, res.DecodeMBps = iters, mbps(iters, el)
	a, b := make([]byte, res.RawBytes), make([]byte, res.RawBytes)
	iters, el, err = loop(func() error { copy(b, a); return nil })
	if err != nil {
		return res, err
	}
	res.MemmoveMBps = mbps(iters, el)
	res.Decoded = out
	return res, nil
}

// SyntheticActivation returns a deterministic stand-in for an early-layer
// post-ReLU activation of shape [1, c, h, w]: a smooth random 3-channel image
// through a seeded random 3×3 convolution, per-channel gains and ReLU. About
// half the values are exactly zero and neighbouring values are correlated.
func SyntheticActivation(seed uint64, c, h, w int) *tensor.Dense {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	img := make([]float32, 3*h*w)
	for k := 0; k < 3; k++ {
		type wave struct{ fx, fy, ph, a float64 }
		var ws [4]wave
		for j := range ws {
			ws[j] = wave{r.Float64() * 0.4, r.Float64() * 0.4, r.Float64() * 2 * math.Pi, r.Float64()}
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := 0.1 * r.NormFloat64()
				for _, wv := range ws {
					v += wv.a * math.Sin(wv.fx*float64(x)+wv.fy*float64(y)+wv.ph)
				}
				img[(k*h+y)*w+x] = float32(v)
			}
		}
	}
	out := make([]float32, c*h*w)
	for o := 0; o < c; o++ {
		var kw [3][3][3]float32
		for i := range kw {
			for j := range kw[i] {
				for l := range kw[i][j] {
					kw[i][j][l] = float32(r.NormFloat64() / math.Sqrt(27))
				}
			}
		}
		bias := float32(0.1 * r.NormFloat64())
		gain := float32(math.Exp(0.5 * r.NormFloat64()))
		dst := out[o*h*w : (o+1)*h*w]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				s := bias
				for k := 0; k < 3; k++ {
					for dy := -1; dy <= 1; dy++ {
						yy := y + dy
						if yy < 0 || yy >= h {
							continue
						}
						for dx := -1; dx <= 1; dx++ {
							xx := x + dx
							if xx < 0 || xx >= w {
								continue
							}
							s += kw[k][dy+1][dx+1] * img[(k*h+yy)*w+xx]
						}
					}
				}
				dst[y*w+x] = max(0, s*gain)
			}
		}
	}
	return tensor.New(tensor.WithShape(1, c, h, w), tensor.WithBacking(out))
}
