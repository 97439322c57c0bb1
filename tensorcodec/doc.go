// Package tensorcodec is edgesplit's activation wire format: it turns the
// float32 tensors that cross a split point into compact, checksummed messages
// and back, through a pipeline of three stages chosen per message:
//
//	value transform  none | fp16 | bf16 | int8 per tensor | int8 per channel | int4 per channel |
//	                 lattice per tensor | lattice per channel | xor per channel (all three lossless)
//	layout           plain | byte-shuffle | sparse (bitmap of non-zeros + non-zero codes)
//	entropy          none | s2 | zstd (levels 1..4) | huff0     (github.com/klauspost/compress)
//
// Named presets ([PresetLossless], [PresetFast], [PresetInt8],
// [PresetInt8SparseZstd], [PresetInt4Zstd]) pick tested combinations and
// document their error bound; every encode reports the error it introduced
// ([Stats]: max abs error, relative RMSE) so a scheduler can trade bytes
// against accuracy. The lossless preset also takes exact fast paths where
// the data allow ([WithExactPaths]): a tensor of at most 256 distinct values
// per tensor or channel, such as an 8-bit image scaled and normalised, goes
// as one byte per element into a table predicted from a lattice; channels
// that repeat a non-zero value (a bias over blank background, constant
// channels) go as xor-channel; everything else as before. It stays
// bit-exact in every case.
//
// The API follows klauspost/compress: an [Encoder] and a [Decoder] built with
// functional options ([WithPreset], [WithEntropy], [WithLimits], ...), one-shot
// calls that append to a caller's buffer ([Encoder.Encode], [Decoder.Decode],
// and pooled package-level [Encode], [EncodePreset], [Decode]), and a
// streaming [Writer]/[Reader] over io.Writer/io.Reader with Reset. Scratch
// buffers and entropy coders live in the Encoder/Decoder, and decoding reuses
// the caller's tensors when shapes match, so steady state allocates nothing.
//
// Decoding is safe on hostile input: every size a message declares is checked
// against [Limits] before anything is allocated, and malformed input yields
// an error wrapping one of [ErrTruncated], [ErrChecksum], [ErrVersion],
// [ErrLimit], [ErrCorrupt] (never a panic).
//
// # Wire format, version 1
//
// All multi-byte fixed-width integers are little-endian; "uvarint" is the
// unsigned LEB128 varint of encoding/binary (at most 10 bytes). A message is
//
//	magic       4 bytes   "ESTC" (0x45 0x53 0x54 0x43)
//	version     1 byte    1
//	count       uvarint   number of tensor records that follow
//	record × count
//
// and a record is
//
//	dtype       1 byte    1 = float32 (the only one defined)
//	transform   1 byte    0 none, 1 fp16, 2 bf16, 3 int8, 4 int8-channel, 5 int4-channel,
//	                      6 lattice, 7 lattice-channel, 8 xor-channel
//	layout      1 byte    0 plain, 1 shuffle, 2 sparse
//	entropy     1 byte    0 none, 1 s2, 2 zstd, 3 huff0
//	rank        uvarint   1..8
//	dims        rank × uvarint, each ≥ 1, row-major (last index fastest)
//	axis        uvarint   channel axis < rank; present only for transforms 4, 5, 7, 8
//	params      C parameter sets, C = 1 for 3 and 6, dims[axis] for 4, 5, 7, 8, none for 0..2:
//	            3..5: 5 bytes: scale (float32, finite, > 0), zero point (uint8; ≤ 15 for int4)
//	            6, 7: 15 bytes: flags (uint8; bit 0 divA, bit 1 divC, others 0), K − 1 (uint8,
//	                  K = 1..256 table entries), zero index z (uint8, < K), then a, m, c
//	                  (float32 each, finite; a ≠ 0, c ≠ 0)
//	            8:    4 bytes: the channel's base value (float32 bits, any pattern)
//	rawLen      uvarint   length of the layout stage's output
//	payloadLen  uvarint   length of the payload (= rawLen when entropy = none)
//	crc         4 bytes   CRC-32C (Castagnoli) of the record bytes from dtype
//	                      through payloadLen, followed by the payload bytes
//	payload     payloadLen bytes
//
// Value transform. Element codes, before layout, are:
//   - none: the float32 bit pattern, 4 bytes LE (bit-exact: NaN payloads, -0,
//     ±Inf and denormals survive).
//   - fp16 / bf16: 2 bytes LE, rounded to nearest even; finite values outside
//     the target range saturate to its largest finite value.
//   - int8 / int8-channel / int4-channel: with the channel's scale s and zero
//     point z, q = clamp(round(x/s) + z, 0, L) with L = 255 (int8) or 15
//     (int4); the code is (q - z) mod 2⁸ (int8) or mod 2⁴ (int4), one byte
//     per element before layout, so an exact zero is always code 0. The
//     decoder reconstructs x̂ = (float32(q) - float32(z)) · s with
//     q = (code + z) mod 2⁸ or 2⁴. The encoder picks s = (hi - lo)/L and
//     z = round(-lo/s) where lo = min(0, min x) and hi = max(0, max x) over
//     the tensor (int8) or over every element whose index along axis is the
//     channel (per-channel); NaN encodes as code 0 and ±Inf saturate. An
//     encoder may use fewer steps L′ < L ([WithLevels]: s = (hi - lo)/L′,
//     q in 0..L′); the decoder's rule is the same, so the format does not
//     change.
//   - lattice / lattice-channel (lossless): one byte per element. Each
//     parameter set (the tensor's, or the channel's along axis) has a
//     table of K entries; entry k is the bits of the prediction
//     P(k) = ((float32(k) ⊙ a) − m) ⊙ c XOR a 32-bit correction word r_k,
//     where the first ⊙ is ÷ if divA is set, else ×, the second ÷ if divC
//     is set, else ×, and every step is rounded to float32 (no fused
//     multiply-add). An element's code j (< K) stands for entry
//     (j + z) mod K. The corrections of all sets, Σ K words in set order,
//     k ascending, precede the codes in the layout output (see Layout), so
//     a table whose predictions are exact (8-bit pixels through a scale or
//     normalisation, int8-dequantised values) costs one bit per entry.
//     The encoder sends a tensor this way only where every element equals
//     a table entry bit for bit (the corrections make any set of at most
//     256 bit patterns representable), and z is the most frequent value's
//     entry so the sparse layout drops it.
//   - xor-channel (lossless): the float32 bits XOR the channel's base
//     value, 4 bytes LE; an element equal to its base is code 0.
//
// Layout. With n elements and code width w (4 bytes for none and
// xor-channel, 2 for fp16/bf16, 1 otherwise; int4 codes are packed two per
// byte, element 2i in the low nibble, a trailing odd nibble padded with a
// zero high nibble):
//   - plain (0): the codes in element order: rawLen = n·w (int4: ⌈n/2⌉).
//   - shuffle (1): byte k of every code, for k = 0..w-1, i.e. byte i·w+k goes
//     to position k·n+i; same rawLen. For w = 1 and int4 it equals plain.
//   - sparse (2): a bitmap of ⌈n/8⌉ bytes, bit i%8 of byte i/8 set when
//     element i's code is non-zero (for none: bit pattern ≠ 0, so -0 counts
//     as non-zero), unused high bits of the last byte zero; then the k
//     non-zero codes in element order, byte-shuffled as above when w > 1
//     (byte b of the j-th non-zero code at offset b·k+j), packed when int4.
//     rawLen = ⌈n/8⌉ + k·w (int4: ⌈n/8⌉ + ⌈k/2⌉) where k is the bitmap's
//     population count.
//
// For the lattice transforms the layout output starts with the table
// corrections of all R = Σ K entries: a bitmap of ⌈R/8⌉ bytes (bit i%8 of
// byte i/8 set when entry i's word is non-zero, unused high bits zero),
// then the q = popcount non-zero words as four byte planes (byte b of the
// j-th word at offset b·q + j); the codes' layout (plain or sparse, w = 1)
// follows, so rawLen = ⌈R/8⌉ + 4q + the codes' length.
//
// Entropy. The payload is the layout output coded as:
//   - none (0): the layout bytes.
//   - s2 (1): one s2 block (s2.Encode/s2.Decode), whose declared length must equal rawLen.
//   - zstd (2): one or more concatenated zstd frames (EncodeAll/DecodeAll)
//     decoding to exactly rawLen bytes together. The lossless preset writes
//     4-byte codes as two frames, the layout output up to the codes' top
//     byte plane (sign and exponent) and that plane, when both are at least
//     2 KiB.
//   - huff0 (3): the layout bytes split into blocks of 131072 bytes (the last
//     one shorter), each stored as a mode byte then: 0 raw (the block's
//     bytes), 1 RLE (one byte repeated), 2 huff0 (uvarint length, then a
//     huff0 table and 4-stream block as written by huff0.Compress4X).
//
// An encoder falls back to entropy none for a tensor whose coded payload is
// not smaller than its layout bytes. Decoders reject: a wrong magic or
// version, unknown stage codes, rank 0 or above 8, zero dimensions, element
// counts, lengths or tensor counts beyond the limits, parameters out of
// range (a scale or lattice constant that is not finite, a zero a or c,
// unknown flag bits, a zero point or zero index too large), lattice tables
// of more than MaxBytes/4 entries in all, a rawLen that does not match the
// layout, an entropy stream that does not decode to exactly rawLen bytes, a
// bitmap whose population count disagrees with the values (or the
// corrections), a lattice code not below its table's K, a CRC mismatch, and
// bytes after the last record.
package tensorcodec
