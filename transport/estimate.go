package transport

import (
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// PeerEstimate is the live view of one peer's link, for the scheduler.
type PeerEstimate struct {
	// Addr is the peer's UDP address; Name its certificate's node name
	// (empty until a connection has been made).
	Addr, Name string
	// Connected reports whether a live connection exists now.
	Connected bool
	// SmoothedRTT, MinRTT, LatestRTT and RTTVar come from quic-go's
	// connection statistics (zero before the first connection).
	SmoothedRTT, MinRTT, LatestRTT, RTTVar time.Duration
	// SendGoodput is the recent goodput towards the peer in bit/s, as the
	// peer measured it and reported back (0 = unknown).
	SendGoodput float64
	// RecvGoodput is the recent goodput from the peer in bit/s, measured here
	// (0 = unknown).
	RecvGoodput float64
	// Loss is the recent fraction of this endpoint's packets to the peer
	// that QUIC declared lost (windowed over sending periods only).
	Loss float64
	// Updated is when a goodput or loss sample last arrived. Idle time
	// never lowers the goodput estimates; it only ages them.
	Updated time.Time
}

// Goodput estimation. A meter counts payload bytes only while at least one
// transfer is active, so idle periods never read as a slow link.
const (
	// minSampleBytes: busy periods that moved less are ignored (they
	// measure latency, not capacity).
	minSampleBytes = 32 << 10
	// sampleSlice splits long busy periods into samples.
	sampleSlice = 250 * time.Millisecond
	// goodputWindow is how much busy time the estimate averages over.
	goodputWindow = 2 * time.Second
	meterSamples  = 32
)

type sample struct {
	bytes int64
	dur   time.Duration
}

// meter is a windowed goodput meter, robust to idle periods. Safe for
// concurrent use.
type meter struct {
	mu      sync.Mutex
	active  int
	since   time.Time // start of the current sample slice
	bytes   int64     // bytes in the current slice
	ring    [meterSamples]sample
	n, next int
	updated time.Time
}

// begin marks a transfer as active (call when its first byte moves).
func (m *meter) begin(now time.Time) {
	m.mu.Lock()
	if m.active == 0 {
		m.since, m.bytes = now, 0
	}
	m.active++
	m.mu.Unlock()
}

func (m *meter) add(now time.Time, n int) {
	m.mu.Lock()
	m.bytes += int64(n)
	if d := now.Sub(m.since); m.active > 0 && d >= sampleSlice {
		m.pushLocked(now, d)
	}
	m.mu.Unlock()
}

// end marks a transfer as finished.
func (m *meter) end(now time.Time) {
	m.mu.Lock()
	m.active--
	if m.active == 0 {
		m.pushLocked(now, now.Sub(m.since))
	}
	m.mu.Unlock()
}

func (m *meter) pushLocked(now time.Time, d time.Duration) {
	if m.bytes >= minSampleBytes && d > 0 {
		m.ring[m.next] = sample{m.bytes, d}
		m.next = (m.next + 1) % meterSamples
		m.n = min(m.n+1, meterSamples)
		m.updated = now
	}
	m.since, m.bytes = now, 0
}

// rate returns the goodput in bit/s over the most recent goodputWindow of
// busy time, and when it was last updated.
func (m *meter) rate() (float64, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b int64
	var d time.Duration
	for i := 0; i < m.n && d < goodputWindow; i++ {
		s := m.ring[(m.next-1-i+meterSamples)%meterSamples]
		b += s.bytes
		d += s.dur
	}
	if d == 0 {
		return 0, m.updated
	}
	return float64(b) * 8 / d.Seconds(), m.updated
}

// lossMeter turns quic-go's cumulative packet counts into a recent loss
// fraction, sampled only over periods in which packets were sent.
type lossMeter struct {
	mu         sync.Mutex
	sent, lost uint64
	loss       float64
	have       bool
	updated    time.Time
}

const minLossPackets = 64

func (l *lossMeter) observe(now time.Time, st quic.ConnectionStats) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st.PacketsSent < l.sent || st.PacketsLost < l.lost { // new connection
		l.sent, l.lost = st.PacketsSent, st.PacketsLost
		return
	}
	ds := st.PacketsSent - l.sent
	if ds < minLossPackets {
		return
	}
	s := float64(st.PacketsLost-l.lost) / float64(ds)
	if l.have {
		l.loss = 0.5*l.loss + 0.5*s
	} else {
		l.loss, l.have = s, true
	}
	l.sent, l.lost, l.updated = st.PacketsSent, st.PacketsLost, now
}

func (l *lossMeter) value() (float64, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loss, l.updated
}
