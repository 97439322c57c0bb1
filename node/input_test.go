package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"strings"
	"testing"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/model/zoo"
	"golang.org/x/sync/semaphore"
)

// readInferBody reads only what a body's own header allows for the model,
// and holds its share of the shared budget until released.
func TestReadInferBody(t *testing.T) {
	m, err := NewModel("lenet5", "", zoo.LeNet5(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	var arr bytes.Buffer
	if err := npy.Write(&arr, model.UniformTensor([]int{1, 1, 28, 28}, 1)); err != nil {
		t.Fatal(err)
	}
	var img bytes.Buffer
	if err := png.Encode(&img, image.NewGray(image.Rect(0, 0, 40, 30))); err != nil {
		t.Fatal(err)
	}
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32([]byte("IHDR"), 4096), 4096)
	ihdr = append(ihdr, 16, 6, 0, 0, 0)
	bomb := binary.BigEndian.AppendUint32(append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"), ihdr...), crc32.ChecksumIEEE(ihdr))
	padded := append(bytes.Clone(arr.Bytes()), make([]byte, 2<<20)...)
	for _, c := range []struct {
		name     string
		body     []byte
		declared int64
		tooLarge bool
		errHas   string
	}{
		{"npy", arr.Bytes(), int64(arr.Len()), false, ""},
		{"npy sent chunked", arr.Bytes(), -1, false, ""},
		{"png", img.Bytes(), -1, false, ""},
		{"npy with 2 MiB more", padded, -1, true, "over"},
		{"npy declaring 2 MiB more", arr.Bytes(), int64(len(padded)), true, "declared"},
		{"garbage", bytes.Repeat([]byte{0xA5}, 1<<20), -1, false, "neither .npy nor"},
		{"png bomb", bomb, int64(len(bomb)), false, "pixels"},
		{"empty", nil, 0, false, "neither .npy nor"},
	} {
		t.Run(c.name, func(t *testing.T) {
			budget := semaphore.NewWeighted(MaxBufferedBodies)
			body, release, err := readInferBody(context.Background(), bytes.NewReader(c.body), c.declared, m, budget)
			switch {
			case c.errHas == "" && err != nil:
				t.Fatalf("error %v", err)
			case c.errHas != "" && (err == nil || !strings.Contains(err.Error(), c.errHas)):
				t.Fatalf("error %v, want one saying %q", err, c.errHas)
			case errors.Is(err, errBodyTooLarge) != c.tooLarge:
				t.Fatalf("error %v: too large %v, want %v", err, errors.Is(err, errBodyTooLarge), c.tooLarge)
			}
			if err != nil {
				if !budget.TryAcquire(MaxBufferedBodies) {
					t.Error("a refused body kept its share of the budget")
				}
				return
			}
			if !bytes.Equal(body, c.body) {
				t.Errorf("read %d bytes, sent %d", len(body), len(c.body))
			}
			if budget.TryAcquire(MaxBufferedBodies) {
				t.Error("a body held nothing of the budget")
			}
			release()
			if !budget.TryAcquire(MaxBufferedBodies) {
				t.Error("release did not return the body's share")
			}
		})
	}
}

// FuzzReadInferBody: any body, declared length or none, is read or refused
// without a panic, never beyond the model's bound, and leaves the budget
// whole once released.
func FuzzReadInferBody(f *testing.F) {
	m, err := NewModel("lenet5", "", zoo.LeNet5(1), nil)
	if err != nil {
		f.Fatal(err)
	}
	var arr bytes.Buffer
	if err := npy.Write(&arr, model.UniformTensor([]int{1, 1, 28, 28}, 1)); err != nil {
		f.Fatal(err)
	}
	f.Add(arr.Bytes(), int64(arr.Len()))
	f.Add([]byte("\x89PNG\r\n\x1a\n"), int64(-1))
	f.Add([]byte("\xff\xd8\xff"), int64(3))
	f.Fuzz(func(t *testing.T, b []byte, declared int64) {
		budget := semaphore.NewWeighted(MaxBufferedBodies)
		body, release, err := readInferBody(context.Background(), bytes.NewReader(b), max(declared, -1), m, budget)
		if err == nil {
			if int64(len(body)) > max(npyLimit(m), int64(len(b))) || !bytes.Equal(body, b) {
				t.Fatalf("read %d bytes of %d", len(body), len(b))
			}
			release()
		}
		if !budget.TryAcquire(MaxBufferedBodies) {
			t.Fatal("budget not returned")
		}
	})
}
