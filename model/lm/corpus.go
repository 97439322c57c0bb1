package lm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultCorpus is where Debian's fortunes packages (fortunes, fortunes-min)
// install their text files.
const DefaultCorpus = "/usr/share/games/fortunes"

// MaxCorpusBytes bounds what ReadCorpus reads in all.
const MaxCorpusBytes = 64 << 20

// ErrNoText is returned (wrapped) when a corpus holds no entries.
var ErrNoText = errors.New("lm: no text")

// Separator joins entries in a token stream, as in the fortune files.
const Separator = "\n%\n"

// ReadCorpus reads the fortune files of dir (each regular file without an
// extension: the index files "*.dat" and the "*.u8" links are skipped, as are
// sub-folders such as the offensive "off") and returns their entries — the
// texts between lines holding a lone "%" — in file-name order, trimmed of
// surrounding blank lines. Files are read in bounded memory (MaxCorpusBytes
// in all); a file that is not valid text is an error naming it.
func ReadCorpus(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("lm: corpus: %w", err)
	}
	var entries []string
	total := int64(0)
	for _, de := range des {
		if !de.Type().IsRegular() || filepath.Ext(de.Name()) != "" || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, de.Name())
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("lm: corpus: %w", err)
		}
		es, n, err := readEntries(io.LimitReader(f, MaxCorpusBytes-total+1))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("lm: corpus %s: %w", path, err)
		}
		if total += n; total > MaxCorpusBytes {
			return nil, fmt.Errorf("lm: corpus %s is over %d MiB", dir, MaxCorpusBytes>>20)
		}
		entries = append(entries, es...)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("lm: corpus %s: %w (want fortune files: texts separated by lines of %%)", dir, ErrNoText)
	}
	return entries, nil
}

// readEntries splits r at lines holding a lone "%"; it returns the entries
// and the bytes read.
func readEntries(r io.Reader) ([]string, int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var entries []string
	var cur []string
	var n int64
	flush := func() {
		for len(cur) > 0 && strings.TrimSpace(cur[0]) == "" {
			cur = cur[1:]
		}
		for len(cur) > 0 && strings.TrimSpace(cur[len(cur)-1]) == "" {
			cur = cur[:len(cur)-1]
		}
		if len(cur) > 0 {
			entries = append(entries, strings.Join(cur, "\n"))
		}
		cur = cur[:0]
	}
	for sc.Scan() {
		line := sc.Text()
		n += int64(len(line)) + 1
		if strings.ContainsRune(line, 0) {
			return nil, n, fmt.Errorf("a NUL byte near byte %d: not a text file", n)
		}
		if line == "%" {
			flush()
			continue
		}
		cur = append(cur, strings.TrimRight(line, "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, n, err
	}
	flush()
	return entries, n, nil
}

// Split puts every every-th entry (the 0th, every-th, 2·every-th …) in
// held and the rest in train; every < 2 is an error.
func Split(entries []string, every int) (train, held []string, err error) {
	if every < 2 {
		return nil, nil, fmt.Errorf("lm: hold out every %d-th entry, want ≥ 2", every)
	}
	for i, e := range entries {
		if i%every == 0 {
			held = append(held, e)
		} else {
			train = append(train, e)
		}
	}
	if len(train) == 0 || len(held) == 0 {
		return nil, nil, fmt.Errorf("lm: %d entries split 1 in %d: %w in one part", len(entries), every, ErrNoText)
	}
	return train, held, nil
}

// Stream encodes entries joined by Separator (and ending with one), as one
// token sequence.
func Stream(entries []string) []int {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e)
		b.WriteString(Separator)
	}
	return Encode(b.String())
}

// Windows returns the starts of the non-overlapping windows of ctx+1 tokens
// (ctx inputs, each with its next token) that fit in n tokens.
func Windows(n, ctx int) []int {
	var s []int
	for i := 0; i+ctx+1 <= n; i += ctx {
		s = append(s, i)
	}
	return slices.Clip(s)
}
