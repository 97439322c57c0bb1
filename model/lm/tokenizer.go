package lm

import "strings"

// The character vocabulary: ids 0..94 are the printable ASCII bytes 0x20
// ('␠') to 0x7e ('~'), Newline is '\n' and Unknown stands for every other
// character (a tab, a non-ASCII rune). zoo.GPTTinyConfig.Vocab is VocabSize.
const (
	Newline   = 95
	Unknown   = 96
	VocabSize = 97
)

// Encode maps s to token ids, one per rune.
func Encode(s string) []int {
	ids := make([]int, 0, len(s))
	for _, r := range s {
		ids = append(ids, tokenOf(r))
	}
	return ids
}

func tokenOf(r rune) int {
	switch {
	case r >= 0x20 && r <= 0x7e:
		return int(r - 0x20)
	case r == '\n':
		return Newline
	}
	return Unknown
}

// Decode maps token ids back to text; Unknown (and any id outside the
// vocabulary) becomes U+FFFD.
func Decode(ids []int) string {
	var b strings.Builder
	b.Grow(len(ids))
	for _, id := range ids {
		switch {
		case id >= 0 && id < Newline:
			b.WriteByte(byte(id + 0x20))
		case id == Newline:
			b.WriteByte('\n')
		default:
			b.WriteRune('\uFFFD')
		}
	}
	return b.String()
}
