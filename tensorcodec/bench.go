package tensorcodec

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
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
	Preset Preset
	// Name is the preset's or the variant's name.
	Name     string
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
		r.Name, r.Bytes, r.Ratio, r.EncodeMBps, r.EncodeMBps/r.MemmoveMBps, r.DecodeMBps, r.DecodeMBps/r.MemmoveMBps, r.MaxAbsErr, r.RelRMSE)
}

// Bench encodes and decodes ts (as one message) with preset p repeatedly on
// the calling goroutine and reports size, speed and error. It stops early,
// returning ctx's error, when ctx is cancelled.
func Bench(ctx context.Context, p Preset, ts []*tensor.Dense, o BenchOptions) (BenchResult, error) {
	return bench(ctx, p, p.String(), append([]EOption{WithPreset(p)}, o.Encoder...), ts, o)
}

// BenchVariant is [Bench] for a [Variant] (o.Encoder applies after its
// options); the result's Preset is meaningless, its Name is v.Name.
func BenchVariant(ctx context.Context, v Variant, ts []*tensor.Dense, o BenchOptions) (BenchResult, error) {
	return bench(ctx, 0, v.Name, append(slices.Clone(v.Options), o.Encoder...), ts, o)
}

func bench(ctx context.Context, p Preset, name string, opts []EOption, ts []*tensor.Dense, o BenchOptions) (BenchResult, error) {
	res := BenchResult{Preset: p, Name: name}
	if o.MinTime <= 0 {
		o.MinTime = 200 * time.Millisecond
	}
	enc, err := NewEncoder(opts...)
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
		return res, fmt.Errorf("tensorcodec: bench %s: decoding own output: %w", name, err)
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

// Variant is a named combination of encoder stages, for measuring schemes
// beyond the presets (edgesplit codec bench --variants). Build one with
// [ParseVariant]; the zero value encodes with [PresetLossless].
type Variant struct {
	// Name is the variant's spec as given to ParseVariant.
	Name string
	// Options configure an Encoder (see [NewEncoder]).
	Options []EOption
}

// NewEncoder returns an Encoder configured as v.
func (v Variant) NewEncoder() (*Encoder, error) { return NewEncoder(v.Options...) }

// ParseVariant parses a variant spec: a preset name ("int4-zstd"), or
//
//	TRANSFORM[:LEVELS][/LAYOUT[/ENTROPY[:LEVEL]]][@AXIS]
//
// with the names of [Transform], [Layout] and [Entropy] (String), e.g.
// "int8-channel/plain/huff0@2" (int8 with one scale per index of axis 2,
// plain layout, huff0) or "int8-channel:63/plain/zstd@1" (63 quantisation
// steps, see [WithLevels]; one scale per index of axis 1). LAYOUT defaults
// to plain, ENTROPY to none, LEVEL to 1, LEVELS to the transform's full
// range and AXIS to automatic (see [WithChannelAxis]; only for per-channel
// transforms). The exact fast paths are off unless the spec is the preset
// "lossless". Names are case-insensitive.
func ParseVariant(spec string) (Variant, error) {
	v := Variant{Name: spec}
	if p, err := ParsePreset(spec); err == nil {
		v.Options = []EOption{WithPreset(p)}
		return v, nil
	}
	bad := func(format string, args ...any) (Variant, error) {
		return Variant{}, fmt.Errorf("%w: variant %q: %s", ErrOption, spec, fmt.Sprintf(format, args...))
	}
	body, axisText, hasAxis := strings.Cut(spec, "@")
	parts := strings.Split(body, "/")
	if len(parts) > 3 {
		return bad("want TRANSFORM[:LEVELS][/LAYOUT[/ENTROPY[:LEVEL]]][@AXIS]")
	}
	tname, levelsText, hasLevels := strings.Cut(parts[0], ":")
	ti := slices.IndexFunc(transformNames[:], func(n string) bool { return strings.EqualFold(n, tname) })
	if ti < 0 {
		return bad("unknown transform %q (want one of %s, or a preset)", tname, strings.Join(transformNames[:], ", "))
	}
	tf := Transform(ti)
	v.Options = []EOption{WithExactPaths(false), WithTransform(tf), WithLayout(LayoutPlain), WithEntropy(EntropyNone, 0)}
	if hasLevels {
		if !tf.quantised() {
			return bad("levels apply only to int8, int8-channel and int4-channel, not %s", tf)
		}
		l, err := strconv.Atoi(levelsText)
		if err != nil || l < 1 {
			return bad("levels %q: want an integer in 1..255", levelsText)
		}
		v.Options = append(v.Options, WithLevels(l))
	}
	if len(parts) > 1 {
		li := slices.IndexFunc(layoutNames[:], func(n string) bool { return strings.EqualFold(n, parts[1]) })
		if li < 0 {
			return bad("unknown layout %q (want one of %s)", parts[1], strings.Join(layoutNames[:], ", "))
		}
		v.Options = append(v.Options, WithLayout(Layout(li)))
	}
	if len(parts) > 2 {
		name, levelText, hasLevel := strings.Cut(parts[2], ":")
		ei := slices.IndexFunc(entropyNames[:], func(n string) bool { return strings.EqualFold(n, name) })
		if ei < 0 {
			return bad("unknown entropy coder %q (want one of %s)", name, strings.Join(entropyNames[:], ", "))
		}
		level := 0
		if hasLevel {
			l, err := strconv.Atoi(levelText)
			if err != nil {
				return bad("level %q: %v", levelText, err)
			}
			level = l
		}
		v.Options = append(v.Options, WithEntropy(Entropy(ei), level))
	}
	if hasAxis {
		if !tf.perChannel() {
			return bad("an axis applies only to per-channel transforms, not %s", tf)
		}
		a, err := strconv.Atoi(axisText)
		if err != nil {
			return bad("axis %q: %v", axisText, err)
		}
		v.Options = append(v.Options, WithChannelAxis(a))
	}
	// Check the whole combination now rather than at first use.
	if _, err := NewEncoder(v.Options...); err != nil {
		return Variant{}, fmt.Errorf("variant %q: %w", spec, err)
	}
	return v, nil
}
