package ocr

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrAlphabet is wrapped by errors about a CTC alphabet that does not fit.
var ErrAlphabet = errors.New("ocr: bad alphabet")

// Alphabet maps the recogniser's output classes to text: class 0 is the CTC
// blank, classes 1…len(Chars) are the lines of the keys file, and, with
// PaddleOCR's use_space_char, the last class is a space.
type Alphabet struct {
	Chars []string // the keys file's entries, in order
	Space bool     // whether a trailing space class follows Chars
}

// LoadAlphabet reads a keys file (one entry per line, as ppocr_keys_v1.txt)
// with a trailing space class.
func LoadAlphabet(path string) (*Alphabet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ocr: alphabet: %w", err)
	}
	defer f.Close()
	a, err := ReadAlphabet(f)
	if err != nil {
		return nil, fmt.Errorf("ocr: alphabet %s: %w", path, err)
	}
	return a, nil
}

// ReadAlphabet reads keys, one entry per line ("\r\n" or "\n"), with a
// trailing space class. An empty line is an error (it would be a class that
// prints nothing).
func ReadAlphabet(r io.Reader) (*Alphabet, error) {
	a := &Alphabet{Space: true}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			return nil, fmt.Errorf("%w: empty entry on line %d", ErrAlphabet, len(a.Chars)+1)
		}
		a.Chars = append(a.Chars, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAlphabet, err)
	}
	if len(a.Chars) == 0 {
		return nil, fmt.Errorf("%w: no entries", ErrAlphabet)
	}
	return a, nil
}

// Classes is the number of output classes the alphabet decodes: the blank,
// the entries and the optional space.
func (a *Alphabet) Classes() int {
	n := 1 + len(a.Chars)
	if a.Space {
		n++
	}
	return n
}

// class returns the text of class c ≥ 1.
func (a *Alphabet) class(c int) string {
	if c-1 < len(a.Chars) {
		return a.Chars[c-1]
	}
	return " "
}

// Decode is greedy CTC decoding of probs, T time steps × Classes() values
// (row-major, as the recogniser's softmax output for one line): the most
// probable class at each step, repeats merged, blanks dropped. score is the
// mean probability of the kept steps (0 for an empty result).
func (a *Alphabet) Decode(probs []float32, steps int) (text string, score float32, err error) {
	nc := a.Classes()
	if steps < 0 || len(probs) != steps*nc {
		return "", 0, fmt.Errorf("%w: %d values for %d steps of %d classes", ErrAlphabet, len(probs), steps, nc)
	}
	var sb strings.Builder
	var sum float64
	kept, prev := 0, -1
	for t := 0; t < steps; t++ {
		row := probs[t*nc : (t+1)*nc]
		best, bp := 0, row[0]
		for c, p := range row[1:] {
			if p > bp {
				best, bp = c+1, p
			}
		}
		if best != 0 && best != prev {
			sb.WriteString(a.class(best))
			sum += float64(bp)
			kept++
		}
		prev = best
	}
	if kept > 0 {
		score = float32(sum / float64(kept))
	}
	return sb.String(), score, nil
}
