// Package nodeline reads the line `edgesplit node` prints on standard output
// once it serves: "node NAME (ROLE) gossip=ADDR quic=ADDR http=ADDR". The
// tests, benchmarks and deployment checks that start node processes wait
// for it; its format lives here and in cmd/edgesplit's node command only.
package nodeline

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
)

// Started is what a node's start line says.
type Started struct {
	Name, Role         string
	Gossip, QUIC, HTTP string // HTTP is "" without a client API
}

var startedRe = regexp.MustCompile(`^node (\S+) \(([\w-]+)\) gossip=(\S+) quic=(\S+) http=(\S*)$`)

// Parse reads a start line.
func Parse(line string) (Started, error) {
	m := startedRe.FindStringSubmatch(line)
	if m == nil {
		return Started{}, fmt.Errorf("nodeline: not a node start line: %q", line)
	}
	return Started{Name: m[1], Role: m[2], Gossip: m[3], QUIC: m[4], HTTP: m[5]}, nil
}

// First returns a channel that receives the first line read from r (the
// process's standard output) and is closed when r ends; the rest of r is
// read and dropped, so the process never blocks on a full pipe.
func First(r io.Reader) <-chan string {
	lines := make(chan string, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		first := true
		for sc.Scan() {
			if first {
				lines <- sc.Text()
				first = false
			}
		}
	}()
	return lines
}
