package ocr

import (
	"errors"
	"strings"
	"testing"
)

func TestReadAlphabet(t *testing.T) {
	a, err := ReadAlphabet(strings.NewReader("a\r\nb\n中\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(a.Chars, ","); got != "a,b,中" || !a.Space || a.Classes() != 5 {
		t.Fatalf("chars %q, space %v, classes %d", got, a.Space, a.Classes())
	}
	for _, bad := range []string{"", "a\n\nb\n"} {
		if _, err := ReadAlphabet(strings.NewReader(bad)); !errors.Is(err, ErrAlphabet) {
			t.Errorf("ReadAlphabet(%q): err = %v, want ErrAlphabet", bad, err)
		}
	}
	if _, err := LoadAlphabet("testdata/does-not-exist.txt"); err == nil {
		t.Error("LoadAlphabet of a missing file succeeded")
	}
}

func TestDecode(t *testing.T) {
	a := &Alphabet{Chars: []string{"a", "b", "中"}, Space: true} // classes: blank a b 中 space
	onehot := func(classes ...int) []float32 {
		p := make([]float32, len(classes)*a.Classes())
		for t, c := range classes {
			for k := range a.Classes() {
				p[t*a.Classes()+k] = 0.05
			}
			p[t*a.Classes()+c] = 0.8
		}
		return p
	}
	for _, tc := range []struct {
		classes []int
		want    string
	}{
		{nil, ""},
		{[]int{0, 0, 0}, ""},
		{[]int{1, 1, 0, 1, 2, 2, 4, 3}, "aab 中"},
		{[]int{0, 3, 3, 3, 0}, "中"},
		{[]int{4, 0, 4}, "  "},
	} {
		text, score, err := a.Decode(onehot(tc.classes...), len(tc.classes))
		if err != nil {
			t.Fatal(err)
		}
		if text != tc.want {
			t.Errorf("Decode(%v) = %q, want %q", tc.classes, text, tc.want)
		}
		if wantScore := float32(0.8); tc.want != "" && score != wantScore || tc.want == "" && score != 0 {
			t.Errorf("Decode(%v): score %v", tc.classes, score)
		}
	}
	// A tie goes to the lower class, as argmax does.
	if text, _, _ := a.Decode([]float32{0.1, 0.4, 0.4, 0.05, 0.05}, 1); text != "a" {
		t.Errorf("tie decoded as %q, want a", text)
	}
	for _, steps := range []int{-1, 2} {
		if _, _, err := a.Decode(make([]float32, 5), steps); !errors.Is(err, ErrAlphabet) {
			t.Errorf("Decode with %d steps of 5 values: err = %v, want ErrAlphabet", steps, err)
		}
	}
}
