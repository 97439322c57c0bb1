package scheduler

import (
	"sync"
	"time"
)

// EWMA is an exponentially weighted moving average: each Add moves the value
// Alpha of the way towards the sample; the first sample sets it. The zero
// value uses Alpha 0.3. It is a plain value, not safe for concurrent use.
type EWMA struct {
	Alpha float64
	v     float64
	n     int
}

// Add folds in one sample.
func (e *EWMA) Add(x float64) { e.AddWeighted(x, 1) }

// AddWeighted folds in a sample that carries weight w ∈ (0, 1] of a full
// one: it moves the value w·Alpha of the way (a noisy sample moves it less).
// The first sample sets the value whatever its weight; a w outside (0, 1]
// counts as 1.
func (e *EWMA) AddWeighted(x, w float64) {
	a := e.Alpha
	if a <= 0 || a > 1 {
		a = 0.3
	}
	if w > 0 && w < 1 {
		a *= w
	}
	if e.n == 0 {
		e.v = x
	} else {
		e.v += a * (x - e.v)
	}
	e.n++
}

// Value is the current average (0 before any sample).
func (e *EWMA) Value() float64 { return e.v }

// Count is the number of samples seen.
func (e *EWMA) Count() int { return e.n }

// BanConfig configures a BanList.
type BanConfig struct {
	// Base is the first ban's length; each further consecutive failure
	// doubles it. Default 15 s (as Petals bans a failed server).
	Base time.Duration
	// Max caps a ban. Default 5 minutes.
	Max time.Duration
	// Now is the clock; default time.Now. sim and tests replace it.
	Now func() time.Time
}

type banEntry struct {
	at       time.Time // the last counted failure
	until    time.Time
	failures int
	// suspectAt and suspect: when id was last suspected, and until when it
	// stays out of plans for it (Suspect).
	suspectAt, suspect time.Time
}

// BanList keeps cloud nodes that failed out of plans for an exponentially
// growing backoff, and nodes under suspicion out for a short while. It is
// safe for concurrent use.
type BanList struct {
	cfg     BanConfig
	mu      sync.Mutex
	entries map[string]*banEntry
}

// NewBanList returns an empty ban list; zero fields of cfg get defaults.
func NewBanList(cfg BanConfig) *BanList {
	if cfg.Base <= 0 {
		cfg.Base = 15 * time.Second
	}
	if cfg.Max <= 0 {
		cfg.Max = 5 * time.Minute
	}
	if cfg.Max < cfg.Base {
		cfg.Max = cfg.Base
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &BanList{cfg: cfg, entries: make(map[string]*banEntry)}
}

// Fail records a failure of id and bans it for Base·2^(consecutive
// failures−1), capped at Max; it returns the ban's length. Failures while
// id is already banned (the other requests of one outage, in flight when
// it began) count once: they neither lengthen nor escalate the ban.
func (b *BanList) Fail(id string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	e := b.entries[id]
	if e == nil {
		e = &banEntry{}
		b.entries[id] = e
	}
	if now.Before(e.until) {
		return e.until.Sub(now)
	}
	e.failures++
	e.at = now
	d := b.cfg.Base
	for i := 1; i < e.failures && d < b.cfg.Max; i++ {
		d *= 2
	}
	d = min(d, b.cfg.Max)
	e.until = now.Add(d)
	return d
}

// Suspect keeps id out of plans for d without counting a failure: it did
// not answer in time and another node answered for it (a hedge overtook
// it), so it is slow or gone without a word yet, and new requests should
// not wait on it while gossip or a real failure tells which. It neither
// bans id (Banned stays false) nor touches a ban; a later Suspect extends
// the suspicion.
func (b *BanList) Suspect(id string, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	e := b.entries[id]
	if e == nil {
		e = &banEntry{}
		b.entries[id] = e
	}
	e.suspectAt = now
	if until := now.Add(d); until.After(e.suspect) {
		e.suspect = until
	}
}

// Suspected reports whether id is under suspicion now (Suspect).
func (b *BanList) Suspected(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[id]
	return e != nil && b.cfg.Now().Before(e.suspect)
}

// Forgive forgets id's failures if the last one was before since, and its
// suspicion if that began before since: a node that restarted (rejoined
// the cluster) after it failed starts clean.
func (b *BanList) Forgive(id string, since time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[id]
	if e == nil {
		return
	}
	if e.at.Before(since) {
		e.at, e.until, e.failures = time.Time{}, time.Time{}, 0
	}
	if e.suspectAt.Before(since) {
		e.suspectAt, e.suspect = time.Time{}, time.Time{}
	}
	if e.failures == 0 && e.suspectAt.IsZero() {
		delete(b.entries, id)
	}
}

// Succeed records a success of id, which forgets its failures.
func (b *BanList) Succeed(id string) {
	b.mu.Lock()
	delete(b.entries, id)
	b.mu.Unlock()
}

// Banned reports whether id is banned now.
func (b *BanList) Banned(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bannedLocked(id, b.cfg.Now())
}

func (b *BanList) bannedLocked(id string, now time.Time) bool {
	e := b.entries[id]
	return e != nil && now.Before(e.until)
}

// Until returns when id's ban ends, and false when it is not banned.
func (b *BanList) Until(id string) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.bannedLocked(id, b.cfg.Now()) {
		return time.Time{}, false
	}
	return b.entries[id].until, true
}

// Apply marks the banned and the suspected clouds of cs Unavailable (it
// never clears the flag).
func (b *BanList) Apply(cs []CloudInput) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	for i := range cs {
		if e := b.entries[cs[i].ID]; e != nil && (now.Before(e.until) || now.Before(e.suspect)) {
			cs[i].Unavailable = true
		}
	}
}

// Prune forgets nodes whose ban ended more than Max ago and that are not
// under suspicion, so a node that fails again much later starts over at
// Base and the list stays bounded by the nodes that failed recently.
func (b *BanList) Prune() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pruneLocked(b.cfg.Now())
}

func (b *BanList) pruneLocked(now time.Time) {
	for id, e := range b.entries {
		if now.Sub(e.until) > b.cfg.Max && !now.Before(e.suspect) {
			delete(b.entries, id)
		}
	}
}

// Len is the number of nodes with a failure record (banned or not) or a
// suspicion.
func (b *BanList) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}
