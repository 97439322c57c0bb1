package linkem

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func testBurstTrace(t *testing.T) *BurstTrace {
	t.Helper()
	b, err := LoadBurstTrace("../../internal/cellreplay/testdata/light-up", "../../internal/cellreplay/testdata/heavy-up")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseBurstTraceErrors(t *testing.T) {
	for _, tc := range []struct {
		name, light, heavy, want string
	}{
		{"light", "0 30 x\n10 30 0\n", "1\n2\n", "light trace"},
		{"heavy", "0 30 0\n10 30 0\n", "2\n1\n", "heavy trace"},
		{"one train", "0 30 0\n", "1\n", "light trace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseBurstTrace(strings.NewReader(tc.light), strings.NewReader(tc.heavy))
			if !errors.Is(err, ErrBadTrace) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrBadTrace about %s", err, tc.want)
			}
		})
	}
	if _, err := LoadBurstTrace("no/such/light", "no/such/heavy"); err == nil {
		t.Fatal("missing files accepted")
	}
	if err := (LinkSettings{Cellular: &BurstTrace{}}).Validate(); !errors.Is(err, ErrInvalidSettings) {
		t.Fatalf("an empty BurstTrace validated: %v", err)
	}
}

// Bursts of several sizes through a Shaper over a CellReplay direction
// arrive when the replay model says (base delay included), within timer
// slack: short bursts at the light trains' pace, long ones at the heavy
// trace's.
func TestCellularShaperFollowsReplay(t *testing.T) {
	b := testBurstTrace(t)
	s := LinkSettings{Cellular: b}
	if s.PassThrough() || s.MeanRate() != b.MeanRate() {
		t.Fatalf("settings %+v: pass-through or wrong rate", s)
	}
	for _, n := range []int{1, 8, 40} { // packets of 1400 bytes
		sh := NewShaper(s)
		var mu sync.Mutex
		var last time.Time
		var wg sync.WaitGroup
		wg.Add(n)
		start := time.Now()
		pkt := make([]byte, 1400)
		for i := 0; i < n; i++ {
			sh.Send(pkt, func([]byte) {
				mu.Lock()
				last = time.Now()
				mu.Unlock()
				wg.Done()
			})
		}
		wg.Wait()
		sh.Close()
		got := last.Sub(start)
		want := b.Transfer(0, int64(n*1400))
		if got < want-2*time.Millisecond || got > want+15*time.Millisecond {
			t.Errorf("%d packets took %v, replay says %v", n, got, want)
		}
		t.Logf("%d × 1400 B: %v (replay %v, plain rate alone %v)", n, got.Round(100*time.Microsecond), want,
			time.Duration(float64(n*1400*8)/b.MeanRate()*1e9).Round(100*time.Microsecond))
	}
}
