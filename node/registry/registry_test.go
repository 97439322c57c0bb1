package registry

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func key() []byte { return bytes.Repeat([]byte{7}, 32) }

func TestPutRead(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "sealed"}[sealed], func(t *testing.T) {
			dir := t.TempDir()
			var opts Options
			if sealed {
				opts.Key = key()
			}
			s, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			model := randBytes(2*ChunkSize+123, 1) // three chunks, the last short
			calib := []byte(`{"format":"edgesplit-calibration"}`)
			e, err := s.Put("mnist", model, calib)
			if err != nil {
				t.Fatal(err)
			}
			if e.Version != Digest(model, calib) || len(e.Chunks) != 3 || e.Size() != int64(len(model)+len(calib)) {
				t.Fatalf("entry %+v", e)
			}
			if again, err := s.Put("mnist", model, calib); err != nil || again.Version != e.Version || len(s.Entries()) != 1 {
				t.Fatalf("second Put of the same bytes: %v, %d entries", err, len(s.Entries()))
			}
			if v, ok := s.Active("mnist"); !ok || v != e.Version {
				t.Errorf("active %q %v, want the first version", v, ok)
			}
			// Reopen: the manifest persisted.
			s2, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			m, c, err := s2.Read("mnist", e.Version)
			if err != nil || !bytes.Equal(m, model) || !bytes.Equal(c, calib) {
				t.Fatalf("Read after reopen: %v (model equal %v, calib %q)", err, bytes.Equal(m, model), c)
			}
			raw, _ := os.ReadFile(filepath.Join(dir, "blobs", string(e.Version)+".blob"))
			if sealed == bytes.Contains(raw, model[:4096]) {
				t.Errorf("sealed=%v but the blob holds the model in clear: %v", sealed, !sealed)
			}
			// The wrong key, or a key for an unsealed store, is an error.
			other := Options{Key: bytes.Repeat([]byte{9}, 32)}
			if sealed {
				if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "encrypted") {
					t.Errorf("sealed store opened without key: %v", err)
				}
				s3, _ := Open(dir, other)
				if _, _, err := s3.Read("mnist", e.Version); !errors.Is(err, ErrCorrupt) {
					t.Errorf("Read with the wrong key: %v, want ErrCorrupt", err)
				}
			} else if _, err := Open(dir, other); err == nil {
				t.Error("unsealed store opened with a key")
			}
			// A flipped byte on disk is caught.
			raw[len(raw)/2] ^= 1
			os.WriteFile(filepath.Join(dir, "blobs", string(e.Version)+".blob"), raw, 0o600)
			if _, _, err := s2.Read("mnist", e.Version); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Read of a corrupted blob: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestPutErrors(t *testing.T) {
	s, _ := Open(t.TempDir(), Options{MaxBytes: 3 * ChunkSize, MaxModelBytes: 2 * ChunkSize})
	for _, tc := range []struct {
		name  string
		model []byte
		want  string
	}{
		{"bad name", []byte("x"), "invalid model name"},
		{"empty", nil, "empty model"},
		{"too big", make([]byte, 2*ChunkSize+1), "limit"},
	} {
		n := "m"
		if tc.name == "bad name" {
			n = "../etc"
		}
		if _, err := s.Put(n, tc.model, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := s.Put("a", randBytes(2*ChunkSize, 1), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("b", randBytes(2*ChunkSize, 2), nil); !errors.Is(err, ErrFull) {
		t.Errorf("over MaxBytes: %v, want ErrFull", err)
	}
	if _, err := Open(t.TempDir(), Options{Key: []byte("short")}); err == nil {
		t.Error("a 5-byte key was accepted")
	}
}

func TestActiveRemove(t *testing.T) {
	s, _ := Open(t.TempDir(), Options{})
	v1, _ := s.Put("m", []byte("one"), nil)
	v2, _ := s.Put("m", []byte("two"), nil)
	if err := s.Remove("m", v1.Version); err == nil {
		t.Error("removed the active version")
	}
	if err := s.SetActive("m", v2.Version); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("m", v1.Version); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Read("m", v1.Version); !errors.Is(err, ErrNotFound) {
		t.Errorf("read of a removed version: %v", err)
	}
	if err := s.SetActive("m", v1.Version); !errors.Is(err, ErrNotFound) {
		t.Errorf("activate a removed version: %v", err)
	}
}

// TestTransfer moves a version between two stores (one sealed) chunk by
// chunk, out of order, with a bad chunk, an interruption and a resume.
func TestTransfer(t *testing.T) {
	src, _ := Open(t.TempDir(), Options{})
	dstDir := t.TempDir()
	dst, _ := Open(dstDir, Options{Key: key()})
	model := randBytes(4*ChunkSize+7, 3)
	e, err := src.Put("det", model, []byte("calib"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := dst.Begin(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Missing(); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("missing %v", got)
	}
	chunk := func(i int) []byte {
		c, err := src.ReadChunk("det", e.Version, i, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	bad := slices.Clone(chunk(4))
	bad[0] ^= 1
	if err := d.Write(4, bad); !errors.Is(err, ErrBadChunk) {
		t.Fatalf("bad chunk: %v, want ErrBadChunk", err)
	}
	if err := d.Write(4, chunk(3)); !errors.Is(err, ErrBadChunk) {
		t.Fatalf("chunk 3 as chunk 4: %v", err)
	}
	for _, i := range []int{4, 1} {
		if err := d.Write(i, chunk(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Commit(); err == nil || !strings.Contains(err.Error(), "3 of 5 chunks missing") {
		t.Fatalf("commit with chunks missing: %v", err)
	}
	// A crash: a new Store on the same directory resumes with 1 and 4.
	d2 := mustResume(t, dstDir, e, []int{0, 2, 3})
	for _, i := range d2.Missing() {
		if err := d2.Write(i, chunk(i)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d2.Commit()
	if err != nil {
		t.Fatal(err)
	}
	dst2, _ := Open(dstDir, Options{Key: key()})
	m, c, err := dst2.Read("det", got.Version)
	if err != nil || !bytes.Equal(m, model) || string(c) != "calib" {
		t.Fatalf("transferred version: %v", err)
	}
	if des, _ := os.ReadDir(filepath.Join(dstDir, "partial")); len(des) != 0 {
		t.Errorf("partial folder keeps %d files after the commit", len(des))
	}
	// The same bytes under another name need no transfer.
	e2 := e
	e2.Name = "det-copy"
	d3, err := dst2.Begin(e2)
	if err != nil || len(d3.Missing()) != 0 {
		t.Fatalf("known bytes under a new name: %v, missing %v", err, d3.Missing())
	}
	if _, err := d3.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, ok := dst2.Lookup("det-copy", e.Version); !ok {
		t.Error("det-copy not listed")
	}
}

func mustResume(t *testing.T, dir string, e Entry, missing []int) *Download {
	t.Helper()
	s, err := Open(dir, Options{Key: key()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Begin(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Missing(); !slices.Equal(got, missing) {
		t.Fatalf("resume: missing %v, want %v", got, missing)
	}
	return d
}

// TestForgedEntry: a peer lists the chunk digests of other bytes under a
// version's name; the chunks verify, the whole version does not.
func TestForgedEntry(t *testing.T) {
	src, _ := Open(t.TempDir(), Options{})
	real, _ := src.Put("m", []byte("real model"), nil)
	evil, _ := src.Put("m", []byte("evil model"), nil)
	forged := evil
	forged.Version = real.Version
	dst, _ := Open(t.TempDir(), Options{})
	d, err := dst.Begin(forged)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := src.ReadChunk("m", evil.Version, 0, nil)
	if err := d.Write(0, c); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Commit(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("forged entry committed: %v", err)
	}
	if len(dst.Entries()) != 0 {
		t.Errorf("store lists %v", dst.Entries())
	}
}

func TestEntryCheck(t *testing.T) {
	good := Entry{Name: "m", Version: Digest([]byte("x"), nil), ModelSize: 1, Chunks: []string{strings.Repeat("ab", 32)}}
	if err := good.Check(1 << 20); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Entry)
		want string
	}{
		{"name", func(e *Entry) { e.Name = "a/b" }, "invalid model name"},
		{"version", func(e *Entry) { e.Version = "abc" }, "64 hex digits"},
		{"upper-case version", func(e *Entry) { e.Version = Version(strings.ToUpper(string(e.Version))) }, "64 hex digits"},
		{"size", func(e *Entry) { e.ModelSize = 2 << 20 }, "outside"},
		{"negative calib", func(e *Entry) { e.CalibSize = -1 }, "outside"},
		{"chunk count", func(e *Entry) { e.Chunks = nil }, "0 chunk digests"},
		{"chunk digest", func(e *Entry) { e.Chunks = []string{"zz"} }, "not a SHA-256"},
	} {
		e := good
		e.Chunks = slices.Clone(good.Chunks)
		tc.mod(&e)
		if err := e.Check(1 << 20); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
