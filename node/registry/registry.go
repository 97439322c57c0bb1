package registry

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"
)

// ChunkSize is the unit of transfer and of sealing: 1 MiB.
const ChunkSize = 1 << 20

// Version is a model version: the hex SHA-256 Digest of its content.
type Version string

// Short returns the first 12 hex digits, for display.
func (v Version) Short() string {
	if len(v) > 12 {
		return string(v[:12])
	}
	return string(v)
}

// Valid reports whether v is 64 lowercase hex digits.
func (v Version) Valid() bool {
	if len(v) != 64 {
		return false
	}
	_, err := hex.DecodeString(string(v))
	return err == nil && string(v) == hexLower(string(v))
}

func hexLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Digest returns the version of a model: SHA-256 over a domain tag, the
// model's length, the model bytes and the calibration table (nil: none).
func Digest(model, calib []byte) Version {
	h := sha256.New()
	h.Write(digestPrefix(int64(len(model))))
	h.Write(model)
	h.Write(calib)
	return Version(hex.EncodeToString(h.Sum(nil)))
}

// digestPrefix is what Digest hashes before the bytes: a domain tag and
// the model's length (so model and calibration bytes cannot trade places).
func digestPrefix(modelSize int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("edgesplit-model-v1\n"), uint64(modelSize))
}

// Entry describes one stored version. Its blob is the model bytes followed
// by the calibration table.
type Entry struct {
	Name      string    `json:"name"`
	Version   Version   `json:"version"`
	ModelSize int64     `json:"model_size"`
	CalibSize int64     `json:"calib_size"`
	Chunks    []string  `json:"chunks"` // hex SHA-256 of each ChunkSize piece of the blob
	Added     time.Time `json:"added"`
}

// Size is the blob's length.
func (e Entry) Size() int64 { return e.ModelSize + e.CalibSize }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$`)

// ValidName reports whether s can name a model: 1–63 letters, digits, '.',
// '_' or '-', starting with a letter or digit.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Check validates an entry (one from a peer, say) against limit bytes.
func (e Entry) Check(limit int64) error {
	if !ValidName(e.Name) {
		return fmt.Errorf("registry: invalid model name %q", e.Name)
	}
	if !e.Version.Valid() {
		return fmt.Errorf("registry: %s: version %q is not 64 hex digits", e.Name, e.Version)
	}
	if e.ModelSize <= 0 || e.CalibSize < 0 || e.Size() > limit {
		return fmt.Errorf("registry: %s@%s: sizes %d+%d outside (0, %d]", e.Name, e.Version.Short(), e.ModelSize, e.CalibSize, limit)
	}
	if want := int((e.Size() + ChunkSize - 1) / ChunkSize); len(e.Chunks) != want {
		return fmt.Errorf("registry: %s@%s: %d chunk digests for %d bytes, want %d", e.Name, e.Version.Short(), len(e.Chunks), e.Size(), want)
	}
	for i, c := range e.Chunks {
		if b, err := hex.DecodeString(c); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("registry: %s@%s: chunk %d digest %q is not a SHA-256", e.Name, e.Version.Short(), i, c)
		}
	}
	return nil
}

// Errors callers branch on.
var (
	ErrNotFound = errors.New("registry: no such model version")
	ErrCorrupt  = errors.New("registry: stored model fails its digest")
	ErrFull     = errors.New("registry: store full")
)

// Options configure a Store.
type Options struct {
	// Key, when set (32 bytes), seals every blob with AES-256-GCM.
	Key []byte
	// MaxBytes bounds the blobs on disk, partial downloads included
	// (DefaultOptions: 4 GiB); MaxModelBytes one version (1 GiB).
	MaxBytes, MaxModelBytes int64
}

// DefaultOptions returns an unsealed store of at most 4 GiB, 1 GiB per
// version.
func DefaultOptions() Options { return Options{MaxBytes: 4 << 30, MaxModelBytes: 1 << 30} }

type manifest struct {
	Format  string             `json:"format"`
	Sealed  bool               `json:"sealed"`
	Entries []Entry            `json:"entries"`
	Active  map[string]Version `json:"active"`
}

const manifestFormat = "edgesplit-model-store-v1"

// Store is a directory of model versions. Its methods are safe for
// concurrent use within one process; one directory belongs to one Store.
type Store struct {
	dir  string
	opts Options
	aead cipher.AEAD

	mu  sync.Mutex
	man manifest
}

// Open opens (creating if missing) the store in dir. A store sealed with
// a key cannot be opened without it, nor an unsealed one with one.
func Open(dir string, opts Options) (*Store, error) {
	d := DefaultOptions()
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = d.MaxBytes
	}
	if opts.MaxModelBytes <= 0 {
		opts.MaxModelBytes = min(d.MaxModelBytes, opts.MaxBytes)
	}
	s := &Store{dir: dir, opts: opts, man: manifest{Format: manifestFormat, Sealed: opts.Key != nil, Active: map[string]Version{}}}
	if opts.Key != nil {
		if len(opts.Key) != 32 {
			return nil, fmt.Errorf("registry: key is %d bytes, want 32 (AES-256)", len(opts.Key))
		}
		block, err := aes.NewCipher(opts.Key)
		if err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		if s.aead, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	for _, sub := range []string{"", "blobs", "partial"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, s.saveLocked()
	case err != nil:
		return nil, fmt.Errorf("registry: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil || m.Format != manifestFormat {
		return nil, fmt.Errorf("registry: %s: not a model store manifest (%v)", filepath.Join(dir, "manifest.json"), err)
	}
	if m.Sealed != (opts.Key != nil) {
		if m.Sealed {
			return nil, fmt.Errorf("registry: %s is encrypted: give its key", dir)
		}
		return nil, fmt.Errorf("registry: %s is not encrypted but a key was given", dir)
	}
	for _, e := range m.Entries {
		if err := e.Check(opts.MaxModelBytes); err != nil {
			return nil, fmt.Errorf("registry: manifest: %w", err)
		}
	}
	if m.Active == nil {
		m.Active = map[string]Version{}
	}
	s.man = m
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) blobPath(v Version) string { return filepath.Join(s.dir, "blobs", string(v)+".blob") }
func (s *Store) partPath(v Version) string { return filepath.Join(s.dir, "partial", string(v)+".part") }

// saveLocked writes the manifest atomically.
func (s *Store) saveLocked() error {
	b, err := json.MarshalIndent(s.man, "", " ")
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return writeAtomic(filepath.Join(s.dir, "manifest.json"), b)
}

// writeAtomic writes b to path through a temporary file, fsyncing the file
// and its directory.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("registry: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("registry: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("registry: sync %s: %w", dir, err)
	}
	return nil
}

// Entries returns every stored version, by name then time added.
func (s *Store) Entries() []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.man.Entries)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Added.Before(out[j].Added)
	})
	return out
}

// Lookup returns the entry of name at version.
func (s *Store) Lookup(name string, v Version) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupLocked(name, v)
}

func (s *Store) lookupLocked(name string, v Version) (Entry, bool) {
	for _, e := range s.man.Entries {
		if e.Name == name && e.Version == v {
			return e, true
		}
	}
	return Entry{}, false
}

func (s *Store) hasBlobLocked(v Version) bool {
	return slices.ContainsFunc(s.man.Entries, func(e Entry) bool { return e.Version == v })
}

// Active returns the version of name this node serves by default ("" and
// false when none is set).
func (s *Store) Active(name string) (Version, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.man.Active[name]
	return v, ok
}

// SetActive makes a stored version the one name serves by default.
func (s *Store) SetActive(name string, v Version) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.lookupLocked(name, v); !ok {
		return fmt.Errorf("%w: %s@%s", ErrNotFound, name, v.Short())
	}
	s.man.Active[name] = v
	return s.saveLocked()
}

// usedLocked returns the bytes the store holds, partial files included.
func (s *Store) usedLocked() int64 {
	var n int64
	seen := map[Version]bool{}
	for _, e := range s.man.Entries {
		if !seen[e.Version] {
			seen[e.Version] = true
			n += s.diskSize(e.Size())
		}
	}
	if des, err := os.ReadDir(filepath.Join(s.dir, "partial")); err == nil {
		for _, de := range des {
			if fi, err := de.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// diskSize returns the on-disk length of a blob of n bytes.
func (s *Store) diskSize(n int64) int64 {
	if s.aead == nil {
		return n
	}
	chunks := (n + ChunkSize - 1) / ChunkSize
	return n + chunks*int64(s.aead.NonceSize()+s.aead.Overhead())
}

// Put stores a model version (idempotent: the same bytes give the same
// entry) and returns its entry. The first version of a name becomes its
// active one.
func (s *Store) Put(name string, model, calib []byte) (Entry, error) {
	if !ValidName(name) {
		return Entry{}, fmt.Errorf("registry: invalid model name %q (want 1-63 of [A-Za-z0-9._-])", name)
	}
	if len(model) == 0 {
		return Entry{}, fmt.Errorf("registry: %s: empty model", name)
	}
	if n := int64(len(model) + len(calib)); n > s.opts.MaxModelBytes {
		return Entry{}, fmt.Errorf("%w: %s is %d bytes, limit %d per version", ErrFull, name, n, s.opts.MaxModelBytes)
	}
	e := Entry{Name: name, Version: Digest(model, calib), ModelSize: int64(len(model)), CalibSize: int64(len(calib)), Added: time.Now().UTC()}
	blob := slices.Concat(model, calib)
	for off := 0; off < len(blob); off += ChunkSize {
		sum := sha256.Sum256(blob[off:min(off+ChunkSize, len(blob))])
		e.Chunks = append(e.Chunks, hex.EncodeToString(sum[:]))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.lookupLocked(name, e.Version); ok {
		return old, nil
	}
	if !s.hasBlobLocked(e.Version) {
		if s.usedLocked()+s.diskSize(e.Size()) > s.opts.MaxBytes {
			return Entry{}, fmt.Errorf("%w: %s needs %d bytes, %d of %d used", ErrFull, name, s.diskSize(e.Size()), s.usedLocked(), s.opts.MaxBytes)
		}
		var sealed []byte
		for i := range e.Chunks {
			sealed = s.appendChunk(sealed, e.Version, i, blob[i*ChunkSize:min((i+1)*ChunkSize, len(blob))])
		}
		if err := writeAtomic(s.blobPath(e.Version), sealed); err != nil {
			return Entry{}, err
		}
	}
	return e, s.addLocked(e)
}

func (s *Store) addLocked(e Entry) error {
	s.man.Entries = append(s.man.Entries, e)
	if _, ok := s.man.Active[e.Name]; !ok {
		s.man.Active[e.Name] = e.Version
	}
	return s.saveLocked()
}

// appendChunk appends chunk i of version v in its on-disk form: the plain
// bytes, or nonce‖sealed bytes with (version, i) as additional data so a
// chunk cannot be moved to another place or version.
func (s *Store) appendChunk(dst []byte, v Version, i int, plain []byte) []byte {
	if s.aead == nil {
		return append(dst, plain...)
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // never returns an error (Go ≥ 1.24)
	dst = append(dst, nonce...)
	return s.aead.Seal(dst, nonce, plain, chunkAD(v, i))
}

func chunkAD(v Version, i int) []byte {
	return binary.BigEndian.AppendUint64([]byte(v), uint64(i))
}

// chunkLen returns the plain length of chunk i of e.
func chunkLen(e Entry, i int) int {
	return int(min(int64(ChunkSize), e.Size()-int64(i)*ChunkSize))
}

// readChunk reads and opens chunk i of e from f into buf.
func (s *Store) readChunk(f *os.File, e Entry, i int, buf []byte) ([]byte, error) {
	n := chunkLen(e, i)
	stride := s.diskSize(ChunkSize)
	disk := int(s.diskSize(int64(n)))
	if cap(buf) < disk {
		buf = make([]byte, disk)
	}
	raw := buf[:disk]
	if _, err := f.ReadAt(raw, int64(i)*stride); err != nil {
		return nil, fmt.Errorf("registry: %s@%s chunk %d: %w", e.Name, e.Version.Short(), i, err)
	}
	plain := raw
	if s.aead != nil {
		ns := s.aead.NonceSize()
		var err error
		if plain, err = s.aead.Open(raw[ns:ns], raw[:ns], raw[ns:], chunkAD(e.Version, i)); err != nil {
			return nil, fmt.Errorf("%w: %s@%s chunk %d does not open: %w", ErrCorrupt, e.Name, e.Version.Short(), i, err)
		}
	}
	sum := sha256.Sum256(plain)
	if hex.EncodeToString(sum[:]) != e.Chunks[i] {
		return nil, fmt.Errorf("%w: %s@%s chunk %d", ErrCorrupt, e.Name, e.Version.Short(), i)
	}
	return plain, nil
}

// ReadChunk returns chunk i of a stored version in plain form, checked
// against its digest, using buf when it is large enough (for serving
// peers one chunk at a time).
func (s *Store) ReadChunk(name string, v Version, i int, buf []byte) ([]byte, error) {
	e, ok := s.Lookup(name, v)
	if !ok {
		return nil, fmt.Errorf("%w: %s@%s", ErrNotFound, name, v.Short())
	}
	if i < 0 || i >= len(e.Chunks) {
		return nil, fmt.Errorf("registry: %s@%s has %d chunks, not %d", name, v.Short(), len(e.Chunks), i)
	}
	f, err := os.Open(s.blobPath(v))
	if err != nil {
		return nil, fmt.Errorf("%w: %s@%s: %w", ErrCorrupt, name, v.Short(), err)
	}
	defer f.Close()
	return s.readChunk(f, e, i, buf)
}

// Read returns a stored version's model bytes and calibration table (nil
// when it has none), every chunk and the whole checked.
func (s *Store) Read(name string, v Version) (model, calib []byte, err error) {
	e, ok := s.Lookup(name, v)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s@%s", ErrNotFound, name, v.Short())
	}
	f, err := os.Open(s.blobPath(v))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s@%s: %w", ErrCorrupt, name, v.Short(), err)
	}
	defer f.Close()
	blob := make([]byte, 0, e.Size())
	var buf []byte
	for i := range e.Chunks {
		c, err := s.readChunk(f, e, i, buf)
		if err != nil {
			return nil, nil, err
		}
		blob = append(blob, c...)
		buf = c[:0]
	}
	model, calib = blob[:e.ModelSize], blob[e.ModelSize:]
	if len(calib) == 0 {
		calib = nil
	}
	if Digest(model, calib) != v {
		return nil, nil, fmt.Errorf("%w: %s@%s", ErrCorrupt, name, v.Short())
	}
	return model, calib, nil
}

// Remove deletes a version (not the active one of its name).
func (s *Store) Remove(name string, v Version) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.man.Entries, func(e Entry) bool { return e.Name == name && e.Version == v })
	if i < 0 {
		return fmt.Errorf("%w: %s@%s", ErrNotFound, name, v.Short())
	}
	if s.man.Active[name] == v {
		return fmt.Errorf("registry: %s@%s is active; activate another version first", name, v.Short())
	}
	s.man.Entries = slices.Delete(s.man.Entries, i, i+1)
	if err := s.saveLocked(); err != nil {
		return err
	}
	if !s.hasBlobLocked(v) {
		if err := os.Remove(s.blobPath(v)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("registry: %w", err)
		}
	}
	return nil
}
