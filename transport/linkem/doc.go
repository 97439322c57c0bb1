// Package linkem emulates network links in-process, as a [net.PacketConn]
// wrapper, so that quic-go (or any UDP protocol) runs over it unchanged and its
// congestion control reacts as it would on the real link.
//
// A [Conn] wraps one real UDP socket. Everything written to it travels the
// uplink before it reaches the socket; everything read from the socket travels
// the downlink before [Conn.ReadFrom] returns it. Wrapping only the edge node's
// socket therefore emulates both directions of its access link. Each direction
// has its own [LinkSettings]:
//
//   - serialisation at a fixed Rate, or at the capacity of a Mahimahi trace
//     ([Trace], one 1500-byte delivery opportunity per line, looping);
//   - or a burst-aware cellular direction recorded by CellReplay (NSDI 2025,
//     [BurstTrace] in Cellular): a burst on an idle link waits the base delay
//     of that moment and follows a light probe train's delivery
//     opportunities, and the packets past them a heavy (saturated-flow)
//     trace's, so short bursts get the lower bandwidth they get on cellular
//     links and the RTT varies as recorded;
//   - one-way propagation Delay, plus Jitter (order is kept unless
//     AllowReorder is set);
//   - random loss and Gilbert–Elliott bursty loss ([GilbertElliott]);
//   - a drop-tail queue limited in bytes (QueueBytes) or in time (QueueDelay);
//   - an MTU above which packets are dropped.
//
// Each direction is a time-sorted queue driven by one timer and one goroutine,
// in the style of quic-go's simnet and integration-test proxy. Departure times
// are computed when a packet enters the link, from the link's own clock, so
// timer lateness delays a packet but never changes the rate.
//
// A direction whose settings are all zero is a pass-through: packets go
// straight to (or come straight from) the socket, with no copy and no
// goroutine hand-off, but they are still counted in [Conn.Stats].
// [Conn.FastPath] additionally forwards quic-go's batched interface
// (recvmmsg, GSO) on an unshaped downlink, still counting every datagram.
//
// [Conn] deliberately does not embed *net.UDPConn: quic-go would find the
// embedded connection and bypass WriteTo. It forwards SetReadBuffer,
// SetWriteBuffer and SyscallConn to the socket instead, so quic-go can size
// the socket buffers, and it does not implement ReadMsgUDP/WriteMsgUDP, so
// quic-go uses its basic per-packet path through this wrapper (the
// [Conn.FastPath] view implements them, forwarding and counting).
//
// [Profiles] holds named link profiles (3g, lte, 5g-lowband, 5g-midband,
// 5g-mmwave, wifi, ethernet), documented in docs/link-profiles.md. [RunLinkTest]
// runs a QUIC transfer over an emulated link on loopback and reports
// configured against measured goodput, RTT and loss.
package linkem
