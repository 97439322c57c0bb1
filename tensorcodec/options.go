package tensorcodec

import (
	"fmt"
	"strings"
)

// Transform is the value-transform stage: how each float32 becomes a code.
type Transform uint8

// Value transforms. The numeric values are the wire codes.
const (
	// TransformNone keeps the float32 bits (lossless).
	TransformNone Transform = 0
	// TransformFP16 rounds to IEEE 754 binary16 (round to nearest even);
	// finite values beyond ±65504 saturate to ±65504.
	TransformFP16 Transform = 1
	// TransformBF16 rounds to bfloat16 (round to nearest even); finite values
	// that would round to infinity saturate to the largest finite bfloat16.
	TransformBF16 Transform = 2
	// TransformInt8 is 8-bit affine quantisation with one scale and zero point
	// for the whole tensor.
	TransformInt8 Transform = 3
	// TransformInt8Channel is 8-bit affine quantisation with one scale and zero
	// point per channel (see [WithChannelAxis]).
	TransformInt8Channel Transform = 4
	// TransformInt4Channel is 4-bit affine quantisation with one scale and zero
	// point per channel.
	TransformInt4Channel Transform = 5
	// TransformLattice is lossless: every element is one of at most 256
	// values, sent as a one-byte code into a table predicted by one
	// [LatticeParams] (values on a lattice, such as 8-bit pixels scaled and
	// normalised, cost no table bytes) plus exact corrections. Encoders use
	// it only where it reproduces every bit; see [WithExactPaths].
	TransformLattice Transform = 6
	// TransformLatticeChannel is TransformLattice with one table per channel
	// (e.g. an RGB image normalised per channel; a constant channel costs a
	// one-entry table).
	TransformLatticeChannel Transform = 7
	// TransformXorChannel is lossless: each element's code is its float32
	// bits XOR its channel's base value (the channel's most frequent value,
	// e.g. a convolution's bias over a blank background), so the sparse
	// layout drops every element equal to the base, not only zeros.
	TransformXorChannel Transform = 8

	numTransforms = 9
)

var transformNames = [numTransforms]string{"none", "fp16", "bf16", "int8", "int8-channel", "int4-channel",
	"lattice", "lattice-channel", "xor-channel"}

// String returns the transform's name as used in flags and docs.
func (t Transform) String() string {
	if int(t) < len(transformNames) {
		return transformNames[t]
	}
	return fmt.Sprintf("transform(%d)", uint8(t))
}

func (t Transform) valid() bool { return t < numTransforms }

// perChannel reports whether the transform carries one parameter set per
// channel (and a channel axis on the wire).
func (t Transform) perChannel() bool {
	return t == TransformInt8Channel || t == TransformInt4Channel || t == TransformLatticeChannel || t == TransformXorChannel
}

// quantised reports whether the transform is an integer affine quantiser.
func (t Transform) quantised() bool { return t >= TransformInt8 && t <= TransformInt4Channel }

// lattice reports whether the transform is one of the lattice (table) transforms.
func (t Transform) lattice() bool { return t == TransformLattice || t == TransformLatticeChannel }

// Lossless reports whether the transform reproduces every float32 bit
// pattern exactly (none, lattice, lattice-channel, xor-channel).
func (t Transform) Lossless() bool {
	return t == TransformNone || t.lattice() || t == TransformXorChannel
}

// paramSize is the size in bytes of one parameter set on the wire (0: none).
func (t Transform) paramSize() int {
	switch {
	case t.quantised():
		return quantParamSize
	case t.lattice():
		return latticeParamSize
	case t == TransformXorChannel:
		return 4
	}
	return 0
}

// codeWidth is the width in bytes of one element's code before layout
// (int4 codes occupy one byte each until the layout stage packs them).
func (t Transform) codeWidth() int {
	switch t {
	case TransformNone, TransformXorChannel:
		return 4
	case TransformFP16, TransformBF16:
		return 2
	default:
		return 1
	}
}

// nibbles reports whether codes are 4-bit and packed two per byte by the layout.
func (t Transform) nibbles() bool { return t == TransformInt4Channel }

// Layout is the layout stage: how codes are arranged before entropy coding.
type Layout uint8

// Layouts. The numeric values are the wire codes.
const (
	// LayoutPlain stores codes in element order (int4 codes packed two per
	// byte, low nibble first).
	LayoutPlain Layout = 0
	// LayoutShuffle stores byte k of every code together (byte planes), which
	// groups exponents and helps entropy coders on float data. Identical to
	// LayoutPlain for 1-byte and 4-bit codes.
	LayoutShuffle Layout = 1
	// LayoutSparse stores a bitmap with one bit per element (set when the code
	// is non-zero) followed by the non-zero codes only, as byte planes when
	// codes are wider than a byte. Good for post-ReLU activations, where half
	// or more of the values are exactly zero.
	LayoutSparse Layout = 2

	numLayouts = 3
)

var layoutNames = [numLayouts]string{"plain", "shuffle", "sparse"}

// String returns the layout's name.
func (l Layout) String() string {
	if int(l) < len(layoutNames) {
		return layoutNames[l]
	}
	return fmt.Sprintf("layout(%d)", uint8(l))
}

func (l Layout) valid() bool { return l < numLayouts }

// Entropy is the entropy-coding stage applied to the layout's bytes.
type Entropy uint8

// Entropy coders (from github.com/klauspost/compress). The numeric values are
// the wire codes.
const (
	// EntropyNone stores the layout bytes as they are.
	EntropyNone Entropy = 0
	// EntropyS2 is an s2 block (s2.Encode / EncodeBetter / EncodeBest by level).
	EntropyS2 Entropy = 1
	// EntropyZstd is one zstd frame (levels 1..4 = fastest, default, better, best).
	EntropyZstd Entropy = 2
	// EntropyHuff0 is a sequence of huff0 4-stream blocks of up to 128 KiB.
	EntropyHuff0 Entropy = 3

	numEntropies = 4
)

var entropyNames = [numEntropies]string{"none", "s2", "zstd", "huff0"}

// String returns the entropy coder's name.
func (e Entropy) String() string {
	if int(e) < len(entropyNames) {
		return entropyNames[e]
	}
	return fmt.Sprintf("entropy(%d)", uint8(e))
}

func (e Entropy) valid() bool { return e < numEntropies }

// Preset names a tested combination of stages.
type Preset uint8

// Presets. Expected error bounds are per element x with reconstruction x̂;
// they hold for finite inputs and are checked by the tests.
const (
	// PresetLossless: none + sparse + zstd(fastest), with the exact fast
	// paths of [WithExactPaths]: a tensor of at most 256 distinct values per
	// tensor or channel (8-bit images, scaled or normalised) goes as
	// lattice codes, one whose channels repeat a base value other than zero
	// as xor-channel, anything else as none + sparse. Bit-exact in every
	// case, including NaN payloads, ±Inf, -0 and denormals. On dense data
	// the bitmap costs ~1/32 before entropy coding and the byte-plane values
	// act like shuffle.
	PresetLossless Preset = iota
	// PresetFast: fp16 + plain + s2. |x - x̂| ≤ 2⁻¹¹·|x| for
	// 2⁻¹⁴ ≤ |x| ≤ 65504, ≤ 2⁻²⁵ below; larger values saturate to ±65504.
	PresetFast
	// PresetInt8: int8 per tensor + plain, no entropy stage (exactly 4× smaller).
	// |x - x̂| ≤ s/2 with s = (max(x,0) - min(x,0)) / 255 over the tensor.
	PresetInt8
	// PresetInt8SparseZstd: int8 per channel + sparse + zstd(fastest).
	// |x - x̂| ≤ s_c/2 with s_c = (max_c - min_c)/255 over each channel c
	// (max_c ≥ 0 ≥ min_c); zeros stay exactly zero.
	PresetInt8SparseZstd
	// PresetInt4Zstd: int4 per channel + plain (two codes per byte) + zstd(fastest).
	// |x - x̂| ≤ s_c/2 with s_c = (max_c - min_c)/15; zeros stay exactly zero.
	PresetInt4Zstd

	numPresets
)

var presetNames = [numPresets]string{"lossless", "fast", "int8", "int8-sparse-zstd", "int4-zstd"}

var presetBounds = [numPresets]string{
	"0 (bit-exact)",
	"|err| <= 2^-11*|x| (2^-25 below 2^-14); saturates beyond 65504",
	"|err| <= (max-min)/510 per tensor",
	"|err| <= (max_c-min_c)/510 per channel; zeros exact",
	"|err| <= (max_c-min_c)/30 per channel; zeros exact",
}

var presetStages = [numPresets]struct {
	t Transform
	l Layout
	e Entropy
	v int
}{
	{TransformNone, LayoutSparse, EntropyZstd, 1}, // + exact paths (setPreset)
	{TransformFP16, LayoutPlain, EntropyS2, 1},
	{TransformInt8, LayoutPlain, EntropyNone, 0},
	{TransformInt8Channel, LayoutSparse, EntropyZstd, 1},
	{TransformInt4Channel, LayoutPlain, EntropyZstd, 1},
}

// Presets returns every preset, in increasing order of compression.
func Presets() []Preset {
	return []Preset{PresetLossless, PresetFast, PresetInt8, PresetInt8SparseZstd, PresetInt4Zstd}
}

// String returns the preset's name ("lossless", "fast", "int8",
// "int8-sparse-zstd", "int4-zstd").
func (p Preset) String() string {
	if p < numPresets {
		return presetNames[p]
	}
	return fmt.Sprintf("preset(%d)", uint8(p))
}

// ErrorBound describes the preset's documented per-element error bound.
func (p Preset) ErrorBound() string {
	if p < numPresets {
		return presetBounds[p]
	}
	return "unknown"
}

// Stages returns the preset's transform, layout, entropy coder and level.
func (p Preset) Stages() (Transform, Layout, Entropy, int) {
	if p >= numPresets {
		return TransformNone, LayoutPlain, EntropyNone, 0
	}
	s := presetStages[p]
	return s.t, s.l, s.e, s.v
}

// ParsePreset returns the preset with the given name (case-insensitive).
func ParsePreset(name string) (Preset, error) {
	for i, n := range presetNames {
		if strings.EqualFold(n, name) {
			return Preset(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown preset %q (want one of %s)", ErrOption, name, strings.Join(presetNames[:], ", "))
}

// encoderConfig is the Encoder's configuration; its zero value is not used
// directly: setDefault fills it.
type encoderConfig struct {
	transform Transform
	layout    Layout
	entropy   Entropy
	level     int
	axis      int  // channel axis; -1 = automatic (1 for rank ≥ 2, else 0)
	exact     bool // try the exact fast paths (see WithExactPaths)
	levels    int  // quantisation steps L of int8/int4 (see WithLevels); 0 = 255 or 15
}

func (c *encoderConfig) setDefault() {
	*c = encoderConfig{axis: -1}
	c.setPreset(PresetLossless)
}

func (c *encoderConfig) setPreset(p Preset) {
	s := presetStages[p]
	c.transform, c.layout, c.entropy, c.level = s.t, s.l, s.e, s.v
	c.exact = p == PresetLossless
	c.levels = 0 // the presets' error bounds assume the full code range
}

// EOption configures an [Encoder].
type EOption func(*encoderConfig) error

// WithPreset selects all three stages from a named preset. Default:
// [PresetLossless]. Later options override single stages; it resets
// [WithLevels].
func WithPreset(p Preset) EOption {
	return func(c *encoderConfig) error {
		if p >= numPresets {
			return fmt.Errorf("%w: unknown preset %d", ErrOption, p)
		}
		c.setPreset(p)
		return nil
	}
}

// WithTransform sets the value transform.
func WithTransform(t Transform) EOption {
	return func(c *encoderConfig) error {
		if !t.valid() {
			return fmt.Errorf("%w: unknown transform %d", ErrOption, t)
		}
		c.transform = t
		return nil
	}
}

// WithExactPaths turns the exact fast paths on or off (default: on with
// [PresetLossless], off otherwise). With them on and the transform none, the
// encoder looks at each tensor and, where the data allow, sends it with a
// lossless transform that is smaller than float32 bits, choosing the layout
// itself:
//   - [TransformLattice] / [TransformLatticeChannel] when the tensor (or
//     every channel) holds at most 256 distinct values: one byte per element
//     plus a table predicted from a lattice (values computed as
//     ((k ⊙ a) − m) ⊙ c in float32 for integer k, as 8-bit images are when
//     scaled and normalised) with exact corrections;
//   - [TransformXorChannel] when channels repeat a non-zero base value
//     (constant channels, a bias over blank background);
//   - otherwise none with the configured layout, as without them.
//
// The result is bit-exact in every case. The lattice and xor transforms may
// also be selected with [WithTransform]: xor-channel always applies; a
// lattice transform is used when the data allow and none (with the
// configured layout) otherwise.
func WithExactPaths(on bool) EOption {
	return func(c *encoderConfig) error {
		c.exact = on
		return nil
	}
}

// WithLayout sets the layout stage.
func WithLayout(l Layout) EOption {
	return func(c *encoderConfig) error {
		if !l.valid() {
			return fmt.Errorf("%w: unknown layout %d", ErrOption, l)
		}
		c.layout = l
		return nil
	}
}

// WithEntropy sets the entropy coder and its level. Levels: s2 1..3 (fast,
// better, best), zstd 1..4 (fastest, default, better, best); 0 picks 1; huff0
// and none ignore it.
func WithEntropy(e Entropy, level int) EOption {
	return func(c *encoderConfig) error {
		if !e.valid() {
			return fmt.Errorf("%w: unknown entropy coder %d", ErrOption, e)
		}
		maxLevel := 0 // none and huff0 ignore the level
		switch e {
		case EntropyS2:
			maxLevel = 3
		case EntropyZstd:
			maxLevel = 4
		}
		if level < 0 || (maxLevel > 0 && level > maxLevel) {
			return fmt.Errorf("%w: %s level %d out of range 0..%d", ErrOption, e, level, maxLevel)
		}
		if level == 0 || maxLevel == 0 {
			level = 1
		}
		c.entropy, c.level = e, level
		return nil
	}
}

// WithLevels sets L, the number of quantisation steps of the integer
// transforms (int8, int8-channel, int4-channel): q takes the L+1 values
// 0..L and s = (hi − lo)/L, so the error bound grows to (hi − lo)/(2L).
// Default 0: L = 255 for int8, 15 for int4; larger values are clamped to
// those. Codes keep their width on the wire (one byte, or a nibble for
// int4) and decoders need nothing new: with, say, L = 63 an int8 code
// holds about 6 bits of information, which an entropy stage (huff0, zstd)
// turns into a smaller message — a bit width between int4 and int8.
func WithLevels(levels int) EOption {
	return func(c *encoderConfig) error {
		if levels < 0 || levels > 255 {
			return fmt.Errorf("%w: quantisation levels %d out of range 0..255", ErrOption, levels)
		}
		c.levels = levels
		return nil
	}
}

// WithChannelAxis sets the axis whose index selects the per-channel
// quantisation parameters. Default (-1, automatic): axis 1 for rank ≥ 2
// (NCHW channels) when each channel holds at least 64 elements, otherwise
// the axis with the fewest entries; axis 0 for rank 1. An explicit axis
// beyond a tensor's rank is an [ErrShape] at encode time.
func WithChannelAxis(axis int) EOption {
	return func(c *encoderConfig) error {
		if axis < -1 || axis >= MaxRank {
			return fmt.Errorf("%w: channel axis %d out of range -1..%d", ErrOption, axis, MaxRank-1)
		}
		c.axis = axis
		return nil
	}
}

// Limits bounds what a [Decoder] or [Reader] accepts. Every limit is checked
// against the sizes a message declares before any buffer of that size is
// allocated.
type Limits struct {
	// MaxElements bounds the total number of elements of all tensors in one
	// message. Default 1<<26 (256 MiB of float32).
	MaxElements int
	// MaxBytes bounds every byte count a message declares (a payload, an
	// entropy-decoded stage, the whole message). Default 1<<28 (256 MiB).
	MaxBytes int
	// MaxTensors bounds the number of tensors in one message. Default 4096.
	MaxTensors int
}

// defaultLimits are the limits of a Decoder or Reader built without [WithLimits].
var defaultLimits = Limits{MaxElements: 1 << 26, MaxBytes: 1 << 28, MaxTensors: 4096}

// DefaultLimits returns the limits used when none are given.
func DefaultLimits() Limits { return defaultLimits }

type decoderConfig struct {
	lim Limits
}

func (c *decoderConfig) setDefault() { c.lim = defaultLimits }

// DOption configures a [Decoder] or [Reader].
type DOption func(*decoderConfig) error

// WithLimits sets the element and byte limits (see [Limits]). Zero keeps the
// default for that field; negative values are an error.
func WithLimits(maxElements, maxBytes int) DOption {
	return func(c *decoderConfig) error {
		if maxElements < 0 || maxBytes < 0 {
			return fmt.Errorf("%w: negative limit (%d elements, %d bytes)", ErrOption, maxElements, maxBytes)
		}
		if maxElements > 0 {
			c.lim.MaxElements = maxElements
		}
		if maxBytes > 0 {
			c.lim.MaxBytes = maxBytes
		}
		return nil
	}
}

// WithMaxTensors bounds the number of tensors per message (default 4096).
func WithMaxTensors(n int) DOption {
	return func(c *decoderConfig) error {
		if n <= 0 {
			return fmt.Errorf("%w: max tensors %d must be positive", ErrOption, n)
		}
		c.lim.MaxTensors = n
		return nil
	}
}
