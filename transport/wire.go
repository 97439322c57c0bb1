package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgesplit/edgesplit/transport/pki"
)

// Wire constants; the format is specified in docs/wire-format.md.
const (
	// ALPN is the TLS application protocol of edgesplit connections.
	ALPN = "edgesplit/1"

	wireMagic0  = 'E'
	wireMagic1  = 'S'
	wireVersion = 2 // 2: opaque headers (1 carried model, cut range, codec and string pairs)
	frameRunSeg = 1
	statusOK    = 0
	statusError = 1
	maxUvarint  = binary.MaxVarintLen64
)

// Request is the frame header of a request: what transport itself needs
// (an id, the caller's deadline, its goodput estimate) and an opaque
// application header that transport moves without reading (the node
// protocol's segment request). The request body streams separately.
type Request struct {
	// ID identifies the request in logs and replies; the caller chooses it.
	ID uint64
	// Header is the application's header, at most Config.MaxHeaderBytes
	// together with the frame's own fields. Transport never interprets it.
	Header []byte
	// Timeout is the time left to the caller's deadline when the request was
	// sent (0 = none). The server runs the handler under it. Filled in by
	// Endpoint.Call from the context.
	Timeout time.Duration

	// PeerGoodput is the sender's current estimate of goodput from the
	// receiver to the sender, in bit/s (0 = unknown). Filled in by Call.
	PeerGoodput uint64

	// Peer, when set, is the node name the server's certificate must
	// carry, and PeerRoles the roles it may have (empty: any). Call checks
	// them on the connection before anything of the request is sent and
	// fails with ErrUntrustedPeer otherwise. Neither travels.
	Peer      string
	PeerRoles []pki.Role
}

// responseHeader is the header of a reply.
type responseHeader struct {
	status      byte
	id          uint64
	code        Code
	message     string
	peerGoodput uint64 // server's estimate of goodput from the client, bit/s
	header      []byte // the handler's opaque header (success only)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendRequest encodes the request frame (prefix and header) onto b.
func appendRequest(b []byte, r *Request, maxHeader int) ([]byte, error) {
	var h []byte
	h = binary.AppendUvarint(h, r.ID)
	h = binary.AppendUvarint(h, uint64(max(r.Timeout, 0)/time.Microsecond))
	h = binary.AppendUvarint(h, r.PeerGoodput)
	h = appendBytes(h, r.Header)
	if len(h) > maxHeader {
		return b, Errorf(CodeTooLarge, "request header is %d bytes, limit %d", len(h), maxHeader)
	}
	b = append(b, wireMagic0, wireMagic1, wireVersion, frameRunSeg)
	b = binary.AppendUvarint(b, uint64(len(h)))
	return append(b, h...), nil
}

// appendResponse encodes a reply header onto b.
func appendResponse(b []byte, h *responseHeader) []byte {
	var p []byte
	p = binary.AppendUvarint(p, h.id)
	if h.status == statusOK {
		p = binary.AppendUvarint(p, h.peerGoodput)
		p = appendBytes(p, h.header)
	} else {
		p = binary.AppendUvarint(p, uint64(h.code))
		p = appendString(p, h.message)
		p = binary.AppendUvarint(p, h.peerGoodput)
	}
	b = append(b, h.status)
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// errFrame is a malformed-frame error.
func errFrame(format string, args ...any) *Error {
	return Errorf(CodeBadRequest, "malformed frame: "+format, args...)
}

// readFrame reads a uvarint length and that many bytes (≤ max).
func readFrame(r *bufio.Reader, max int, what string) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, frameReadErr(err, what+" length")
	}
	if n > uint64(max) {
		return nil, Errorf(CodeTooLarge, "%s is %d bytes, limit %d", what, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, frameReadErr(err, what)
	}
	return b, nil
}

func frameReadErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errFrame("stream ended inside the %s", what)
	}
	if strings.Contains(err.Error(), "varint overflows") {
		return errFrame("%s varint overflows", what)
	}
	return err
}

// decoder reads fields from a header buffer.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errFrame("bad varint in field %s", field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(field string) string {
	n := d.uvarint(field)
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errFrame("field %s claims %d bytes, %d left in header", field, n, len(d.b))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	if !utf8.ValidString(s) {
		d.err = errFrame("field %s is not UTF-8", field)
	}
	return s
}

// bytes reads a length-prefixed byte string; nil when empty.
func (d *decoder) bytes(field string) []byte {
	n := d.uvarint(field)
	if d.err != nil || n == 0 {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errFrame("field %s claims %d bytes, %d left in header", field, n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errFrame("%d trailing bytes in header", len(d.b))
	}
	return d.err
}

// decodeRequestHeader parses a request header (after prefix and length).
func decodeRequestHeader(b []byte) (*Request, error) {
	d := decoder{b: b}
	r := &Request{}
	r.ID = d.uvarint("id")
	us := d.uvarint("timeout")
	if us > uint64(24*time.Hour/time.Microsecond) {
		us = uint64(24 * time.Hour / time.Microsecond)
	}
	r.Timeout = time.Duration(us) * time.Microsecond
	r.PeerGoodput = d.uvarint("peer goodput")
	r.Header = d.bytes("header")
	if err := d.end(); err != nil {
		return nil, err
	}
	return r, nil
}

// readRequest reads a request frame's prefix and header.
func readRequest(r *bufio.Reader, maxHeader int) (*Request, error) {
	var pre [4]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, frameReadErr(err, "frame prefix")
	}
	if pre[0] != wireMagic0 || pre[1] != wireMagic1 {
		return nil, errFrame("bad magic %q, want \"ES\"", pre[:2])
	}
	if pre[2] != wireVersion {
		return nil, errFrame("unsupported version %d, want %d", pre[2], wireVersion)
	}
	if pre[3] != frameRunSeg {
		return nil, errFrame("unknown frame type %d", pre[3])
	}
	h, err := readFrame(r, maxHeader, "request header")
	if err != nil {
		return nil, err
	}
	return decodeRequestHeader(h)
}

// readResponse reads a reply header.
func readResponse(r *bufio.Reader, maxHeader int) (*responseHeader, error) {
	st, err := r.ReadByte()
	if err != nil {
		return nil, frameReadErr(err, "response status")
	}
	if st != statusOK && st != statusError {
		return nil, errFrame("unknown response status %d", st)
	}
	b, err := readFrame(r, maxHeader, "response header")
	if err != nil {
		return nil, err
	}
	h, err := decodeResponseHeader(st, b)
	if err != nil {
		return nil, err
	}
	return h, nil
}

func decodeResponseHeader(st byte, b []byte) (*responseHeader, error) {
	d := decoder{b: b}
	h := &responseHeader{status: st}
	h.id = d.uvarint("id")
	if st == statusOK {
		h.peerGoodput = d.uvarint("peer goodput")
		h.header = d.bytes("header")
	} else {
		h.code = Code(d.uvarint("code"))
		h.message = d.string("message")
		h.peerGoodput = d.uvarint("peer goodput")
		if d.err == nil && h.code == CodeOK {
			d.err = errFrame("error response with code 0")
		}
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return h, nil
}

// String summarises the request for logs.
func (r *Request) String() string {
	return fmt.Sprintf("request %d (%d header bytes, timeout %v)", r.ID, len(r.Header), r.Timeout)
}
