package tensorcodec

import (
	"errors"
	"fmt"
	"io"

	"gorgonia.org/tensor"
)

// Writer writes messages to an io.Writer one record at a time, so a message
// never exists as a whole in memory: each tensor is encoded into the
// Writer's scratch and written, and an uncompressed payload is written
// straight from the tensor's memory. A Writer is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	enc Encoder
	buf []byte
}

// NewWriter returns a Writer to w configured by opts (see [NewEncoder]).
func NewWriter(w io.Writer, opts ...EOption) (*Writer, error) {
	wr := &Writer{w: w}
	if err := wr.enc.Reset(opts...); err != nil {
		return nil, err
	}
	return wr, nil
}

// Reset makes the Writer write to w, keeping its configuration and buffers.
func (w *Writer) Reset(iw io.Writer) { w.w = iw }

// Close releases the entropy coders; it does not close the underlying writer.
func (w *Writer) Close() error {
	w.enc.Close()
	return nil
}

// WriteMessage writes one message holding ts and returns its statistics.
// Tensors the format cannot carry are rejected before anything is written;
// if a write fails midway, the stream holds a partial message and should be
// abandoned.
func (w *Writer) WriteMessage(ts ...*tensor.Dense) (Stats, error) {
	var st Stats
	for i, t := range ts {
		if err := checkTensor(t, i); err != nil {
			return st, err
		}
		if w.enc.cfg.transform.perChannel() && w.enc.cfg.axis >= len(t.Shape()) {
			return st, fmt.Errorf("%w: tensor %d: channel axis %d but rank %d", ErrShape, i, w.enc.cfg.axis, len(t.Shape()))
		}
	}
	w.buf = appendMessagePrefix(w.buf[:0], len(ts))
	if _, err := w.w.Write(w.buf); err != nil {
		return st, fmt.Errorf("tensorcodec: writing message header: %w", err)
	}
	st.Bytes = len(w.buf)
	for i, t := range ts {
		hdr, payload, err := w.enc.encodeRecord(w.buf[:0], t, i, &st)
		if err != nil {
			return st, err
		}
		w.buf = hdr
		if _, err := w.w.Write(hdr); err != nil {
			return st, fmt.Errorf("tensorcodec: writing tensor %d header: %w", i, err)
		}
		if _, err := w.w.Write(payload); err != nil {
			return st, fmt.Errorf("tensorcodec: writing tensor %d payload: %w", i, err)
		}
		st.Bytes += len(hdr) + len(payload)
	}
	return st, nil
}

// Reader reads messages from an io.Reader. It reads exactly the bytes of
// each message and nothing beyond (no read-ahead), so other data may follow
// a message on the same stream. Each record's header is checked against the
// limits before its payload is read. A Reader is not safe for concurrent use.
type Reader struct {
	src     streamSource
	pre     prefixSource
	dec     Decoder
	payload []byte
}

// NewReader returns a Reader from r configured by opts (see [NewDecoder]).
func NewReader(r io.Reader, opts ...DOption) (*Reader, error) {
	rd := &Reader{}
	if err := rd.dec.Reset(opts...); err != nil {
		return nil, err
	}
	rd.Reset(r)
	return rd, nil
}

// Reset makes the Reader read from r, keeping its configuration and buffers.
func (r *Reader) Reset(ir io.Reader) {
	r.src.r = ir
	r.src.br, _ = ir.(io.ByteReader)
	r.src.buf = r.src.buf[:0]
}

// Close releases the entropy decoders; it does not close the underlying reader.
func (r *Reader) Close() error {
	r.dec.Close()
	return nil
}

// ReadMessage reads and decodes the next message, reusing tensors in dst as
// [Decoder.Decode] does. It returns io.EOF, and no tensors, when the stream
// ends cleanly before a message; a stream that ends inside a message gives
// [ErrTruncated].
func (r *Reader) ReadMessage(dst []*tensor.Dense) ([]*tensor.Dense, error) {
	r.dec.cfg.lim = r.dec.cfg.lim.withDefaults()
	lim := &r.dec.cfg.lim
	s := &r.src
	s.buf = s.buf[:0]
	if _, err := s.readByte(); err != nil {
		if errors.Is(err, io.EOF) {
			return dst[:0], io.EOF
		}
		return dst[:0], ioErr(err, "message header")
	}
	// Re-parse the prefix from the byte already read plus the rest.
	r.pre = prefixSource{first: s.buf[0], s: s}
	n, err := readMessagePrefix(&r.pre, lim)
	if err != nil {
		return dst[:0], err
	}
	dst = resizeTensors(dst, n)
	budget := lim.MaxElements
	total := 0
	h := &r.dec.hdr
	for i := 0; i < n; i++ {
		s.buf = s.buf[:0]
		if err := readHeader(s, lim, &budget, i, h); err != nil {
			return dst, err
		}
		h.Len = len(s.buf)
		total += h.Len + h.PayloadLen
		if total > lim.MaxBytes {
			return dst, fmt.Errorf("%w: message exceeds %d bytes at tensor %d", ErrLimit, lim.MaxBytes, i)
		}
		if err := r.readPayload(h.PayloadLen); err != nil {
			return dst, ioErr(err, "tensor %d payload (%d bytes)", i, h.PayloadLen)
		}
		if err := checkCRC(h, s.buf[:h.Len-4], r.payload, i); err != nil {
			return dst, err
		}
		if dst[i], err = r.dec.decodeRecord(dst[i], h, r.payload, i); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// readPayload reads n bytes into r.payload. Beyond 1 MiB the buffer grows
// only as bytes arrive (at most doubling), so a header that lies about its
// payload length cannot make the Reader allocate more than twice what the
// peer actually sent.
func (r *Reader) readPayload(n int) error {
	const step = 1 << 20
	if n <= step || cap(r.payload) >= n {
		r.payload = ensure(r.payload, n)
		_, err := io.ReadFull(r.src.r, r.payload)
		return err
	}
	r.payload = r.payload[:0]
	for len(r.payload) < n {
		off := len(r.payload)
		chunk := min(n-off, max(step, off))
		r.payload = grow(r.payload, chunk)
		if _, err := io.ReadFull(r.src.r, r.payload[off:]); err != nil {
			return err
		}
	}
	return nil
}

// prefixSource replays one already-read byte before reading from s.
type prefixSource struct {
	first byte
	used  bool
	s     *streamSource
}

func (p *prefixSource) readByte() (byte, error) {
	if !p.used {
		p.used = true
		return p.first, nil
	}
	return p.s.readByte()
}

func (p *prefixSource) readN(n int) ([]byte, error) {
	if p.used || n == 0 {
		return p.s.readN(n)
	}
	p.used = true
	if _, err := p.s.readN(n - 1); err != nil {
		return nil, err
	}
	return p.s.buf[len(p.s.buf)-n:], nil
}
