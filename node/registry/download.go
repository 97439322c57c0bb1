package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Download assembles a version fetched from peers, chunk by chunk, in the
// store's partial folder. Chunks may arrive in any order and from several
// peers; each is checked against the entry's digest before it is written.
// A Download is not safe for concurrent use.
type Download struct {
	s     *Store
	e     Entry
	f     *os.File
	have  []bool
	left  int
	buf   []byte
	ended bool
}

// Begin starts (or resumes) the download of e, whose chunk list came from
// a peer. Chunks of an earlier, interrupted download that still verify are
// kept. A version whose bytes the store already holds (under another name)
// needs no transfer: Missing is then empty.
func (s *Store) Begin(e Entry) (*Download, error) {
	if err := e.Check(s.opts.MaxModelBytes); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &Download{s: s, e: e, have: make([]bool, len(e.Chunks)), left: len(e.Chunks)}
	if s.hasBlobLocked(e.Version) {
		d.have, d.left = trues(len(e.Chunks)), 0
		return d, nil
	}
	partSize := int64(0)
	if fi, err := os.Stat(s.partPath(e.Version)); err == nil {
		partSize = fi.Size()
	}
	if used := s.usedLocked() - partSize; used+s.diskSize(e.Size()) > s.opts.MaxBytes {
		return nil, fmt.Errorf("%w: %s@%s needs %d bytes, %d of %d used", ErrFull, e.Name, e.Version.Short(), s.diskSize(e.Size()), used, s.opts.MaxBytes)
	}
	f, err := os.OpenFile(s.partPath(e.Version), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	d.f = f
	for i := range e.Chunks {
		if int64(i)*s.diskSize(ChunkSize)+s.diskSize(int64(chunkLen(e, i))) > partSize {
			break
		}
		if c, err := s.readChunk(f, e, i, d.buf); err == nil {
			d.have[i] = true
			d.left--
			d.buf = c[:0]
		}
	}
	return d, nil
}

func trues(n int) []bool {
	b := make([]bool, n)
	for i := range b {
		b[i] = true
	}
	return b
}

// Entry returns the version being fetched.
func (d *Download) Entry() Entry { return d.e }

// Missing returns the chunks still to fetch, in order.
func (d *Download) Missing() []int {
	var out []int
	for i, ok := range d.have {
		if !ok {
			out = append(out, i)
		}
	}
	return out
}

// ErrBadChunk is wrapped when a chunk does not match its digest (the peer
// that sent it should not be asked again).
var ErrBadChunk = errors.New("registry: chunk fails its digest")

// Write checks chunk i against the entry and stores it.
func (d *Download) Write(i int, data []byte) error {
	if d.ended {
		if d.f == nil && d.left == 0 {
			return nil // nothing was needed
		}
		return fmt.Errorf("registry: download of %s@%s already ended", d.e.Name, d.e.Version.Short())
	}
	if i < 0 || i >= len(d.e.Chunks) {
		return fmt.Errorf("registry: %s@%s has %d chunks, not %d", d.e.Name, d.e.Version.Short(), len(d.e.Chunks), i)
	}
	if len(data) != chunkLen(d.e, i) {
		return fmt.Errorf("%w: %s@%s chunk %d is %d bytes, want %d", ErrBadChunk, d.e.Name, d.e.Version.Short(), i, len(data), chunkLen(d.e, i))
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != d.e.Chunks[i] {
		return fmt.Errorf("%w: %s@%s chunk %d", ErrBadChunk, d.e.Name, d.e.Version.Short(), i)
	}
	if d.have[i] {
		return nil
	}
	d.buf = d.s.appendChunk(d.buf[:0], d.e.Version, i, data)
	if _, err := d.f.WriteAt(d.buf, int64(i)*d.s.diskSize(ChunkSize)); err != nil {
		return fmt.Errorf("registry: write %s@%s chunk %d: %w", d.e.Name, d.e.Version.Short(), i, err)
	}
	d.have[i] = true
	d.left--
	return nil
}

// Commit checks the whole version against its digest and adds it to the
// store. It fails, keeping the partial file for a resume, while chunks are
// missing; a version whose chunks all match but whose whole digest does not
// (a peer listed chunks of other bytes) is deleted.
func (d *Download) Commit() (Entry, error) {
	s := d.s
	if d.ended {
		return Entry{}, fmt.Errorf("registry: download of %s@%s already ended", d.e.Name, d.e.Version.Short())
	}
	if d.left > 0 {
		return Entry{}, fmt.Errorf("registry: %s@%s: %d of %d chunks missing", d.e.Name, d.e.Version.Short(), d.left, len(d.e.Chunks))
	}
	d.ended = true
	if d.f != nil {
		err := s.verify(d.f, d.e)
		if err == nil {
			err = d.f.Sync()
		}
		if cerr := d.f.Close(); err == nil {
			err = cerr
		}
		if errors.Is(err, ErrCorrupt) {
			os.Remove(s.partPath(d.e.Version))
		}
		if err != nil {
			return Entry{}, err
		}
		if err := os.Rename(s.partPath(d.e.Version), s.blobPath(d.e.Version)); err != nil {
			return Entry{}, fmt.Errorf("registry: %w", err)
		}
		if err := syncDir(filepath.Dir(s.blobPath(d.e.Version))); err != nil {
			return Entry{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.lookupLocked(d.e.Name, d.e.Version); ok {
		return old, nil
	}
	e := d.e
	e.Added = time.Now().UTC()
	return e, s.addLocked(e)
}

// verify streams a blob file through the version digest.
func (s *Store) verify(f *os.File, e Entry) error {
	h := sha256.New()
	h.Write(digestPrefix(e.ModelSize))
	var buf []byte
	for i := range e.Chunks {
		c, err := s.readChunk(f, e, i, buf)
		if err != nil {
			return err
		}
		h.Write(c)
		buf = c[:0]
	}
	if Version(hex.EncodeToString(h.Sum(nil))) != e.Version {
		return fmt.Errorf("%w: %s@%s: its chunks make other bytes", ErrCorrupt, e.Name, e.Version.Short())
	}
	return nil
}

// Abort stops the download, keeping the chunks written so far for a
// later Begin to resume.
func (d *Download) Abort() error {
	if d.ended || d.f == nil {
		d.ended = true
		return nil
	}
	d.ended = true
	return d.f.Close()
}
