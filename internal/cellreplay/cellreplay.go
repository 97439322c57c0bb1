// Package cellreplay is CellReplay's burst-aware trace format (Sentosa et
// al., "CellReplay: Towards accurate record-and-replay for cellular
// networks", NSDI 2025) and the schedule arithmetic on it, shared by
// transport/linkem, sim and the scheduler's cost model.
//
// CellReplay records each direction twice. The light trace (its
// "packet-train trace", up-delay-light-pdo) holds one line per probe train,
// space-separated: the train's start time in ms, the one-way base delay in
// ms that its first packet saw, then the arrival offset in ms (from the
// first packet) of each packet of the train — the delivery opportunities,
// PDOs, of a short burst (offset 0 first). The heavy trace (up-heavy-pdo) is
// a Mahimahi trace recorded under a saturating flow: one timestamp in ms per
// delivery opportunity. Every opportunity carries PacketBytes. This is the
// format of the public repository (github.com/williamsentosa95/cellreplay,
// src/frontend/cellular_queue.cc and record/trace-processor).
//
// The replay (as cellular_queue.cc does it): a burst that starts on an idle
// link at time t waits the base delay interpolated between the trains in
// effect at t, then its i-th packet arrives at the train's i-th PDO; the
// packets beyond the train's PDOs leave the light phase at max(base delay,
// last PDO) and are then served by the heavy trace's opportunities. Short
// bursts so follow the light trace (which on cellular links is slower than a
// long flow's steady rate: the scheduler grants a new flow little at
// first), long ones the heavy one, and the base RTT varies over time.
package cellreplay

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"time"
)

// PacketBytes is what one CellReplay delivery opportunity carries (its
// PACKET_SIZE), light or heavy.
const PacketBytes = 1400

// Limits bound what ParseLight accepts; zero fields take the defaults.
type Limits struct {
	MaxTrains    int // default 1 000 000
	MaxPDOs      int // per train; default 10 000
	MaxLineBytes int // default 1 MiB
}

func (l Limits) withDefaults() Limits {
	if l.MaxTrains <= 0 {
		l.MaxTrains = 1_000_000
	}
	if l.MaxPDOs <= 0 {
		l.MaxPDOs = 10_000
	}
	if l.MaxLineBytes <= 0 {
		l.MaxLineBytes = 1 << 20
	}
	return l
}

// Train is one line of a light trace.
type Train struct {
	At    uint32   // start, ms from the trace's start
	Delay uint32   // one-way base delay of its first packet, ms
	PDO   []uint32 // arrival offsets from the first packet, ms, non-decreasing
}

// ParseError is a bad light trace: Line is 1-based.
type ParseError struct {
	Line int
	Msg  string
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return "cellreplay: " + e.Msg
	}
	return fmt.Sprintf("cellreplay: line %d: %s", e.Line, e.Msg)
}

// Unwrap returns the reader's error, if any.
func (e *ParseError) Unwrap() error { return e.Err }

// ParseLight reads a light (packet-train) trace. Blank lines and lines
// starting with '#' are skipped; fields are separated by spaces or tabs.
// Start times must be non-decreasing, every train needs a base delay and
// at least one PDO, and there must be at least two trains (CellReplay
// interpolates the delay between consecutive ones). Every error is a
// *ParseError.
func ParseLight(r io.Reader, lim Limits) ([]Train, error) {
	lim = lim.withDefaults()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), lim.MaxLineBytes)
	var trains []Train
	line := 0
	for sc.Scan() {
		line++
		s := bytes.TrimSpace(sc.Bytes())
		if len(s) == 0 || s[0] == '#' {
			continue
		}
		f := bytes.Fields(s)
		if len(f) < 3 {
			return nil, &ParseError{Line: line, Msg: fmt.Sprintf("want a start time, a base delay and at least one PDO, got %d fields", len(f))}
		}
		if len(f)-2 > lim.MaxPDOs {
			return nil, &ParseError{Line: line, Msg: fmt.Sprintf("more than %d PDOs", lim.MaxPDOs)}
		}
		var v [2]uint32
		for i := range v {
			x, err := strconv.ParseUint(string(f[i]), 10, 32)
			if err != nil {
				return nil, &ParseError{Line: line, Msg: fmt.Sprintf("field %d %q is not a millisecond count", i+1, f[i]), Err: err}
			}
			v[i] = uint32(x)
		}
		t := Train{At: v[0], Delay: v[1], PDO: make([]uint32, len(f)-2)}
		for i, b := range f[2:] {
			x, err := strconv.ParseUint(string(b), 10, 32)
			if err != nil {
				return nil, &ParseError{Line: line, Msg: fmt.Sprintf("PDO %d %q is not a millisecond count", i+1, b), Err: err}
			}
			if i > 0 && uint32(x) < t.PDO[i-1] {
				return nil, &ParseError{Line: line, Msg: fmt.Sprintf("PDO %d (%d ms) is before the previous one (%d ms)", i+1, x, t.PDO[i-1])}
			}
			t.PDO[i] = uint32(x)
		}
		if n := len(trains); n > 0 && t.At < trains[n-1].At {
			return nil, &ParseError{Line: line, Msg: fmt.Sprintf("start %d ms is before the previous train's (%d ms)", t.At, trains[n-1].At)}
		}
		if len(trains) == lim.MaxTrains {
			return nil, &ParseError{Msg: fmt.Sprintf("more than %d trains", lim.MaxTrains)}
		}
		trains = append(trains, t)
	}
	if err := sc.Err(); err != nil {
		return nil, &ParseError{Line: line + 1, Msg: err.Error(), Err: err}
	}
	if len(trains) < 2 {
		return nil, &ParseError{Msg: fmt.Sprintf("%d trains; at least two are needed", len(trains))}
	}
	if trains[len(trains)-1].At == trains[0].At {
		return nil, &ParseError{Msg: "all trains start at the same time: the trace has no duration"}
	}
	return trains, nil
}

// WriteLight writes trains in the light-trace format.
func WriteLight(w io.Writer, trains []Train) error {
	bw := bufio.NewWriter(w)
	var b []byte
	for _, t := range trains {
		b = strconv.AppendUint(b[:0], uint64(t.At), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(t.Delay), 10)
		for _, p := range t.PDO {
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(p), 10)
		}
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Link is one burst-aware direction: the light trains and the heavy
// schedule, both looping (the light trace over its last start time, the
// heavy one over its period, as CellReplay repeats them). Build it with
// NewLink; its methods never modify it and are safe for concurrent use.
type Link struct {
	light  []Train
	period time.Duration // of the light trace
	heavy  []uint32      // ms, non-decreasing, last > 0: the loop period
}

// NewLink checks a light trace (as ParseLight returns it) and a heavy one
// (Mahimahi timestamps in ms, as internal/mahimahi parses them).
func NewLink(light []Train, heavy []uint32) (*Link, error) {
	if len(light) < 2 {
		return nil, &ParseError{Msg: "a link needs at least two light trains"}
	}
	for i, t := range light {
		if len(t.PDO) == 0 || i > 0 && t.At < light[i-1].At {
			return nil, &ParseError{Line: i + 1, Msg: "a train needs PDOs and trains must be in time order"}
		}
	}
	if light[len(light)-1].At == light[0].At {
		return nil, &ParseError{Msg: "the light trace has no duration"}
	}
	for i, v := range heavy {
		if i > 0 && v < heavy[i-1] {
			return nil, &ParseError{Msg: fmt.Sprintf("heavy trace: opportunity %d (%d ms) is before the previous one", i+1, v)}
		}
	}
	if len(heavy) == 0 || heavy[len(heavy)-1] == 0 {
		return nil, &ParseError{Msg: "heavy trace: no opportunities, or no period"}
	}
	return &Link{light: light, period: time.Duration(light[len(light)-1].At) * time.Millisecond, heavy: heavy}, nil
}

// train returns the index of the train in effect at t (looping) and t's
// offset into the light trace's loop.
func (l *Link) train(t time.Duration) (int, time.Duration) {
	t = max(t, 0)
	r := t % l.period
	ms := uint32(r / time.Millisecond)
	i := sort.Search(len(l.light), func(i int) bool { return l.light[i].At > ms }) - 1
	return max(min(i, len(l.light)-2), 0), r
}

// BaseDelay is the one-way base delay at t: linear between the trains
// around t, as CellReplay interpolates it.
func (l *Link) BaseDelay(t time.Duration) time.Duration {
	i, r := l.train(t)
	a, b := &l.light[i], &l.light[i+1]
	d := float64(a.Delay)
	if b.At > a.At {
		f := (float64(r)/1e6 - float64(a.At)) / float64(b.At-a.At)
		f = min(max(f, 0), 1)
		d += f * (float64(b.Delay) - float64(a.Delay))
	}
	return time.Duration(d * 1e6)
}

// Transfer returns when the last byte of an n-byte burst that enters the
// idle link at t arrives (t + base delay + the light PDO of its last packet,
// or, past the train's PDOs, the later of the light train's end and the
// heavy opportunity that carries the last byte).
func (l *Link) Transfer(t time.Duration, n int64) time.Duration {
	base := l.BaseDelay(t)
	if n <= 0 {
		return t + base
	}
	i, _ := l.train(t)
	pdo := l.light[i].PDO
	pk := (n + PacketBytes - 1) / PacketBytes
	if pk <= int64(len(pdo)) {
		return t + base + time.Duration(pdo[pk-1])*time.Millisecond
	}
	last := time.Duration(pdo[len(pdo)-1]) * time.Millisecond
	t0 := t + max(base, last)
	rest := pk - int64(len(pdo))
	// opportunity timestamps are ms; countBefore(t0) is the first one at
	// or after t0. The light packets may still be arriving then (CellReplay
	// releases the heavy phase from max(base, last PDO), not their sum).
	c := l.countBefore(t0)
	if c > math.MaxInt64-rest {
		return math.MaxInt64
	}
	return max(l.at(c+rest-1), t+base+last)
}

// heavyPeriod is the heavy trace's loop.
func (l *Link) heavyPeriod() time.Duration {
	return time.Duration(l.heavy[len(l.heavy)-1]) * time.Millisecond
}

// countBefore is the number of heavy opportunities strictly before d,
// counting loops (as internal/mahimahi's Trace.CountBefore).
func (l *Link) countBefore(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	p := l.heavyPeriod()
	loops := int64(d / p)
	r := d - time.Duration(loops)*p
	rms := int64(r / time.Millisecond)
	if r%time.Millisecond != 0 {
		rms++
	}
	i := sort.Search(len(l.heavy), func(i int) bool { return int64(l.heavy[i]) >= rms })
	n := int64(len(l.heavy))
	if loops > (math.MaxInt64-int64(i))/n {
		return math.MaxInt64
	}
	return loops*n + int64(i)
}

// at is the time of heavy opportunity c (0-based, counting loops).
func (l *Link) at(c int64) time.Duration {
	c = max(c, 0)
	n := int64(len(l.heavy))
	loops := c / n
	p := l.heavyPeriod()
	off := time.Duration(l.heavy[c%n]) * time.Millisecond
	if loops > int64((math.MaxInt64-off)/p) {
		return math.MaxInt64
	}
	return time.Duration(loops)*p + off
}

// Plain is what a Mahimahi-style replay of the heavy trace alone predicts
// for the same burst: a fixed one-way delay, then the heavy opportunities
// from t on.
func (l *Link) Plain(t time.Duration, n int64, delay time.Duration) time.Duration {
	pk := max((n+PacketBytes-1)/PacketBytes, 1)
	return l.at(l.countBefore(t)+pk-1) + delay
}

// MeanDelay is the mean base delay over the light trains.
func (l *Link) MeanDelay() time.Duration {
	var s float64
	for _, t := range l.light {
		s += float64(t.Delay)
	}
	return time.Duration(s / float64(len(l.light)) * 1e6)
}

// HeavyRate is the heavy trace's mean rate in bytes per second.
func (l *Link) HeavyRate() float64 {
	return float64(len(l.heavy)) * PacketBytes / l.heavyPeriod().Seconds()
}

// MeanPDOs returns the light trains' mean PDO per packet index (element i:
// the mean arrival offset of packet i over the trains that have one), the
// burst-aware cost model's transfer curve.
func (l *Link) MeanPDOs() []time.Duration {
	var sum []float64
	var cnt []int
	for _, t := range l.light {
		for i, p := range t.PDO {
			if i == len(sum) {
				sum, cnt = append(sum, 0), append(cnt, 0)
			}
			sum[i] += float64(p)
			cnt[i]++
		}
	}
	out := make([]time.Duration, len(sum))
	for i := range sum {
		out[i] = time.Duration(sum[i] / float64(cnt[i]) * 1e6)
		if i > 0 {
			out[i] = max(out[i], out[i-1])
		}
	}
	return out
}

// Replayer replays a Link packet by packet, as CellReplay's cellular queue
// does: a packet that finds the link idle (its release would come after the
// last one's plus IdleTimer) starts a new light train at the base delay of
// that moment; the following packets take the train's PDOs, PacketBytes
// of them per PDO; once the train's PDOs are used up, packets leave the
// light phase at max(arrival + base delay, arrival + last PDO) and queue for
// the heavy trace's opportunities, as do light packets while that queue is
// busy. It is clock-injected and not safe for concurrent use.
type Replayer struct {
	link *Link
	// IdleTimer is how long the link must have been idle for a packet to
	// start a new light train (CellReplay's long-to-short timer; default 0).
	IdleTimer time.Duration

	started     bool
	base        time.Duration // base delay of the current train
	trainStart  time.Duration
	pdo         []uint32
	idx         int
	credit      int // bytes left in the current light PDO
	lastRelease time.Duration
	hCursor     int64 // heavy opportunity being filled
	hCredit     int   // bytes left in it
	hBusy       time.Duration
}

// NewReplayer starts a replay of l.
func NewReplayer(l *Link) *Replayer { return &Replayer{link: l} }

// Packet returns when a packet of size bytes that enters the link at now
// leaves it (base delay included). Calls must come in time order.
func (r *Replayer) Packet(now time.Duration, size int) time.Duration {
	size = max(size, 1)
	ms := time.Millisecond
	// CellReplay's clock counts milliseconds: packets within one
	// millisecond of a train's start belong to it.
	at := now.Truncate(ms)
	var elapsed time.Duration
	if !r.started || at+r.base > r.lastRelease+r.IdleTimer {
		i, _ := r.link.train(at)
		r.started, r.base, r.trainStart = true, r.link.BaseDelay(at), at
		r.pdo, r.idx, r.credit = r.link.light[i].PDO, 0, PacketBytes
	} else {
		elapsed = at - r.trainStart
		for r.idx < len(r.pdo) && elapsed > time.Duration(r.pdo[r.idx])*ms {
			r.idx++
			r.credit = PacketBytes
		}
	}
	// Take size bytes of PDOs: what is left of the current one, then
	// whole ones (a packet larger than PacketBytes spans several); the
	// bytes past the train's last PDO go to the heavy queue.
	light := 0
	if r.credit >= size {
		if r.idx < len(r.pdo) {
			light = size
		}
		r.credit -= size
	} else {
		if r.idx < len(r.pdo) {
			light = r.credit
		}
		need := size - r.credit
		for need > 0 {
			r.idx++
			take := min(need, PacketBytes)
			if r.idx < len(r.pdo) {
				light += take
			}
			r.credit, need = PacketBytes-take, need-take
		}
	}
	last := len(r.pdo) - 1
	var release time.Duration
	if light > 0 {
		release = at + r.base + (time.Duration(r.pdo[min(r.idx, last)])*ms - elapsed)
	}
	heavy := size - light
	if heavy == 0 {
		r.lastRelease = release
		if r.hBusy <= release {
			return max(release, now)
		}
		heavy = size // the heavy queue is busy: queue behind it
	} else {
		release = max(release, at+max(r.base, time.Duration(r.pdo[last])*ms))
		r.lastRelease = release
	}
	// The heavy queue: FIFO over the heavy opportunities.
	from := at + max(r.base, time.Duration(r.pdo[last])*ms)
	if light == size {
		from = release
	}
	if r.hBusy < from || r.hCredit == 0 {
		if r.hBusy < from {
			r.hCursor = r.link.countBefore(from)
		} else {
			r.hCursor++
		}
		r.hCredit = PacketBytes
	}
	for heavy > r.hCredit {
		heavy -= r.hCredit
		r.hCursor++
		r.hCredit = PacketBytes
	}
	r.hCredit -= heavy
	r.hBusy = r.link.at(r.hCursor)
	return max(r.hBusy, release, now)
}

// Period is the light trace's loop (its last train's start).
func (l *Link) Period() time.Duration { return l.period }
