package cellreplay

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/internal/mahimahi"
)

func TestParseLight(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int    // trains
		err      string // substring of the error
	}{
		{"ok", "0 30 0 2 5\n# comment\n\n100 40 0 1\n", 2, ""},
		{"tabs", "0\t30\t0\n100\t40\t0\t3\n", 2, ""},
		{"one train", "0 30 0 2\n", 0, "at least two"},
		{"no pdo", "0 30\n100 40 0\n", 0, "line 1: want a start time"},
		{"not a number", "0 30 0\n100 x 0\n", 0, `line 2: field 2 "x"`},
		{"negative", "0 -3 0\n100 4 0\n", 0, "line 1: field 2"},
		{"pdo back", "0 30 0 5 4\n100 40 0\n", 0, "line 1: PDO 3"},
		{"bad pdo", "0 30 0 5.5\n100 40 0\n", 0, `line 1: PDO 2 "5.5"`},
		{"time back", "100 30 0\n50 40 0\n", 0, "line 2: start 50 ms"},
		{"no duration", "7 30 0\n7 40 0\n", 0, "no duration"},
		{"overflow", "0 30 0\n4294967296 40 0\n", 0, "line 2: field 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLight(strings.NewReader(tc.in), Limits{})
			if tc.err != "" {
				var pe *ParseError
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &pe) {
					t.Fatalf("err %v, want a *ParseError with %q", err, tc.err)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %d trains, %v", len(got), err)
			}
			var buf bytes.Buffer
			if err := WriteLight(&buf, got); err != nil {
				t.Fatal(err)
			}
			back, err := ParseLight(&buf, Limits{})
			if err != nil || len(back) != len(got) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
	if _, err := ParseLight(strings.NewReader("0 1 0 1 2 3\n1 1 0\n"), Limits{MaxPDOs: 2}); err == nil {
		t.Fatal("MaxPDOs not enforced")
	}
	if _, err := ParseLight(strings.NewReader("0 1 0\n1 1 0\n2 1 0\n"), Limits{MaxTrains: 2}); err == nil {
		t.Fatal("MaxTrains not enforced")
	}
}

// testLink: trains at 0 and 100 ms with delays 10 and 30 ms, PDOs 0,2,4;
// heavy: one opportunity per ms.
func testLink(t *testing.T) *Link {
	light := []Train{{At: 0, Delay: 10, PDO: []uint32{0, 2, 4}}, {At: 100, Delay: 30, PDO: []uint32{0, 5, 10}}, {At: 200, Delay: 10, PDO: []uint32{0}}}
	heavy := make([]uint32, 1000)
	for i := range heavy {
		heavy[i] = uint32(i + 1)
	}
	l, err := NewLink(light, heavy)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLinkTransfer(t *testing.T) {
	l := testLink(t)
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		at   time.Duration
		n    int64
		want time.Duration
	}{
		{"one packet, first train", 0, 1, 10 * ms},
		{"three packets follow the light PDOs", 0, 3 * PacketBytes, 14 * ms},
		{"delay interpolated halfway", 50 * ms, 1, 70 * ms},
		{"second train's PDOs", 100 * ms, 2 * PacketBytes, 135 * ms},
		{"past the light PDOs: heavy from max(delay, last PDO), ends with the light train", 0, 5 * PacketBytes, 14 * ms},
		{"long burst: the heavy trace decides", 0, 20 * PacketBytes, 26 * ms},
		{"the light trace loops", 200 * ms, 1, 210 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.Transfer(tc.at, tc.n); got != tc.want {
				t.Fatalf("Transfer(%v, %d) = %v, want %v", tc.at, tc.n, got, tc.want)
			}
		})
	}
	if d := l.BaseDelay(150 * ms); d != 20*ms {
		t.Fatalf("BaseDelay(150 ms) = %v", d)
	}
	if p := l.MeanPDOs(); len(p) != 3 || p[1] != 3500*time.Microsecond {
		t.Fatalf("MeanPDOs = %v", p)
	}
	if got := l.Plain(0, 3*PacketBytes, 10*ms); got != 13*ms {
		t.Fatalf("Plain = %v", got)
	}
}

func TestTestdataTraces(t *testing.T) {
	l := loadTestdata(t)
	if d := l.MeanDelay(); d < 20*time.Millisecond || d > 50*time.Millisecond {
		t.Fatalf("mean delay %v", d)
	}
	if r := l.HeavyRate() * 8 / 1e6; r < 12 || r > 30 {
		t.Fatalf("heavy rate %.1f Mbit/s", r)
	}
}

func loadTestdata(t testing.TB) *Link {
	f, err := os.Open("testdata/light-up")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	light, err := ParseLight(f, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.Open("testdata/heavy-up")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	heavy, err := mahimahi.Parse(g, mahimahi.Limits{}) // test-only import
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLink(light, heavy)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func FuzzParseLight(f *testing.F) {
	f.Add([]byte("0 30 0 2 5\n100 40 0 1\n"))
	f.Add([]byte("0 30 0\n0 40 0\n"))
	f.Add([]byte("# c\n\n1 2 3 4\n5 6 7\n"))
	f.Add([]byte("0 1 0 4294967295\n1 1 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		trains, err := ParseLight(bytes.NewReader(data), Limits{MaxTrains: 1000, MaxPDOs: 100, MaxLineBytes: 4096})
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		l, err := NewLink(trains, []uint32{1, 2, 3})
		if err != nil {
			t.Fatalf("parsed trains rejected by NewLink: %v", err)
		}
		for _, at := range []time.Duration{0, time.Millisecond, time.Hour} {
			for _, n := range []int64{0, 1, PacketBytes * 1000} {
				if got := l.Transfer(at, n); got < at {
					t.Fatalf("Transfer(%v, %d) = %v, before it started", at, n, got)
				}
			}
		}
		var buf bytes.Buffer
		if err := WriteLight(&buf, trains); err != nil {
			t.Fatal(err)
		}
		back, err := ParseLight(&buf, Limits{})
		if err != nil || len(back) != len(trains) {
			t.Fatalf("round trip: %d trains, %v", len(back), err)
		}
	})
}

// A burst on an idle link replayed packet by packet ends when Transfer
// says, over the whole test trace.
func TestReplayerMatchesTransfer(t *testing.T) {
	l := loadTestdata(t)
	for _, n := range []int64{1, PacketBytes, 10 * PacketBytes, 24 * PacketBytes, 25 * PacketBytes, 300 * PacketBytes} {
		for at := time.Duration(0); at < 40*time.Second; at += 777 * time.Millisecond {
			r := NewReplayer(l)
			var last time.Duration
			for left := n; left > 0; left -= PacketBytes {
				last = max(last, r.Packet(at, int(min(left, PacketBytes))))
			}
			if want := l.Transfer(at, n); last != want {
				t.Fatalf("%d B at %v: replay %v, Transfer %v", n, at, last, want)
			}
		}
	}
	// A packet larger than an opportunity spans several PDOs.
	for _, n := range []int{10 * PacketBytes, 24 * PacketBytes, 60 * PacketBytes} {
		r := NewReplayer(l)
		if got, want := r.Packet(time.Second, n), l.Transfer(time.Second, int64(n)); got != want {
			t.Fatalf("one %d-byte packet: %v, Transfer %v", n, got, want)
		}
	}
	// Time order is kept and a second burst after idle starts a new train.
	r := NewReplayer(testLink(t))
	a := r.Packet(0, 100)
	b := r.Packet(500*time.Millisecond, 100)
	if a != 10*time.Millisecond || b != 530*time.Millisecond {
		t.Fatalf("two bursts: %v, %v", a, b)
	}
}

// FuzzReplayer feeds a replay packets of fuzzed sizes and gaps: it never
// panics, releases nothing before it arrived, and keeps the heavy queue in
// order.
func FuzzReplayer(f *testing.F) {
	f.Add([]byte{0, 1, 2, 200, 255, 3, 0, 0, 9})
	f.Add([]byte("0 30 0 5\n10 40 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l := testLink(t)
		r := NewReplayer(l)
		var now time.Duration
		for i := 0; i+1 < len(data); i += 2 {
			now += time.Duration(data[i]) * 97 * time.Microsecond
			size := int(data[i+1])*60 + 1
			if got := r.Packet(now, size); got < now {
				t.Fatalf("packet at %v released at %v", now, got)
			}
		}
	})
}
