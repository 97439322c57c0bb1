package linkem

import (
	"errors"
	"net"

	"golang.org/x/net/ipv4"
)

// ErrNoFastPath is returned by [Conn.FastPath] when the link cannot use it.
var ErrNoFastPath = errors.New("linkem: fast path needs a pass-through downlink and a *net.UDPConn")

// FastPath returns a view of c that also offers quic-go's batched socket
// interface (ReadBatch, ReadMsgUDP, WriteMsgUDP), so quic-go keeps GSO and
// recvmmsg on an unshaped link. Every datagram still passes through the
// view's methods and is counted in [Conn.Stats] (a GSO write counts one
// packet per segment). If the uplink is shaped (now or later via SetLink),
// GSO writes are split into segments and go through the emulated uplink; the
// downlink must be a pass-through (ErrNoFastPath otherwise). Use the view
// instead of c, not beside it; closing either closes both.
func (c *Conn) FastPath() (net.PacketConn, error) {
	udp, ok := c.pc.(*net.UDPConn)
	if !ok || c.down != nil {
		return nil, ErrNoFastPath
	}
	return &fastConn{Conn: c, udp: udp, bc: ipv4.NewPacketConn(udp)}, nil
}

// fastConn forwards the batched UDP interface to the socket, counting.
type fastConn struct {
	*Conn
	udp *net.UDPConn
	bc  *ipv4.PacketConn
}

// ReadBatch reads several datagrams at once (recvmmsg).
func (f *fastConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	n, err := f.bc.ReadBatch(ms, flags)
	for i := 0; i < n; i++ {
		f.downCnt.packets.Add(1)
		f.downCnt.bytes.Add(uint64(ms[i].N))
		f.downCnt.delivered.Add(1)
	}
	return n, err
}

// ReadMsgUDP reads one datagram with its control messages.
func (f *fastConn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	n, oobn, flags, addr, err = f.udp.ReadMsgUDP(b, oob)
	if err == nil {
		f.downCnt.packets.Add(1)
		f.downCnt.bytes.Add(uint64(n))
		f.downCnt.delivered.Add(1)
	}
	return
}

// WriteMsgUDP writes one datagram, or a GSO batch of equal-size segments.
func (f *fastConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	seg := gsoSize(oob)
	if seg <= 0 || seg > len(b) {
		seg = len(b)
	}
	if up := f.up.Load(); up != nil {
		for off := 0; off < len(b); off += seg {
			up.enqueue(f.getPacket(b[off:min(off+seg, len(b))], addr))
		}
		return len(b), len(oob), nil
	}
	for off := 0; off < len(b); off += seg {
		f.upCnt.packets.Add(1)
		f.upCnt.bytes.Add(uint64(min(seg, len(b)-off)))
	}
	n, oobn, err = f.udp.WriteMsgUDP(b, oob, addr)
	segs := uint64((len(b) + seg - 1) / max(seg, 1))
	if err == nil {
		f.upCnt.delivered.Add(segs)
	} else {
		f.upCnt.other.Add(segs)
	}
	return n, oobn, err
}
