package nodeline

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		line string
		want Started
		ok   bool
	}{
		{"node edge (edge) gossip=127.0.0.1:1 quic=127.0.0.1:2 http=127.0.0.1:3", Started{"edge", "edge", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}, true},
		{"node cloud1 (cloud) gossip=127.0.0.1:1 quic=127.0.0.1:2 http=", Started{"cloud1", "cloud", "127.0.0.1:1", "127.0.0.1:2", ""}, true},
		{"model lenet5: uncalibrated", Started{}, false},
		{"", Started{}, false},
	} {
		got, err := Parse(c.line)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, ok %v", c.line, got, err, c.want, c.ok)
		}
	}
}

func TestFirst(t *testing.T) {
	ch := First(strings.NewReader("one\ntwo\nthree\n"))
	if l := <-ch; l != "one" {
		t.Errorf("first line %q", l)
	}
	if _, ok := <-ch; ok {
		t.Error("more than one line, or not closed at the end")
	}
	if _, ok := <-First(strings.NewReader("")); ok {
		t.Error("a line from an empty reader")
	}
}
