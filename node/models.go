package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/scheduler"
	"gorgonia.org/tensor"
)

// ErrUnknownModel is returned for a model id the node does not hold.
var ErrUnknownModel = errors.New("node: unknown model")

// Model is one model version a node holds: the simplified graph every
// piece is cut from, its version (a digest of the graph's ONNX form unless
// given: a model store names versions by their registry digest), and its
// sidecar (preprocessing, labels) when known.
type Model struct {
	ID      string
	Version string
	// Weights is the digest of the simplified graph's ONNX form: what a
	// calibration table is measured for (the same weights have the same
	// Weights under any version name).
	Weights string
	Graph   *model.Graph
	Sidecar *dataset.Sidecar
	// Calibration is the model's measured accuracy and codec table (nil:
	// uncalibrated, so the scheduler uses only exact codecs).
	// Set it with SetCalibration before the node starts.
	Calibration *scheduler.Calibration

	mu     sync.Mutex
	pieces map[string]*pieceRunner
}

// NewModel simplifies g and wraps it. An empty version is derived from the
// graph's content, so two nodes holding the same weights agree on it.
func NewModel(id, version string, g *model.Graph, sc *dataset.Sidecar) (*Model, error) {
	sg, err := model.Simplify(g, nil)
	if err != nil {
		return nil, fmt.Errorf("node: model %s: %w", id, err)
	}
	b, err := onnx.Encode(sg)
	if err != nil {
		return nil, fmt.Errorf("node: model %s: digest: %w", id, err)
	}
	sum := sha256.Sum256(b)
	weights := hex.EncodeToString(sum[:6])
	if version == "" {
		version = weights
	}
	return &Model{ID: id, Version: version, Weights: weights, Graph: sg, Sidecar: sc, pieces: make(map[string]*pieceRunner)}, nil
}

// SetCalibration attaches a calibration table after checking it belongs
// to this model's version and node count.
func (m *Model) SetCalibration(c *scheduler.Calibration) error {
	if c == nil {
		m.Calibration = nil
		return nil
	}
	if err := c.Check(m.Weights, m.Nodes()); err != nil {
		return fmt.Errorf("node: model %s: %w", m.ID, err)
	}
	m.Calibration = c
	return nil
}

// Nodes is the number of nodes in the model's canonical order.
func (m *Model) Nodes() int { return len(m.Graph.Nodes) }

// maxPieces bounds the compiled segments a model caches: at most one per
// cut of each side, plus DAG cuts, so a node's memory stays bounded whatever
// its peers ask.
const maxPieces = 256

// pieceSet returns the segment of the node set idx (ascending), cut once and
// compiled on its first run: an edge needs the boundary of a tail it sends
// away but compiles it only if it ever has to finish that tail itself.
func (m *Model) pieceSet(idx []int) (*pieceRunner, error) {
	key := formatRanges(idx)
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.pieces[key]; ok {
		return p, nil
	}
	seg, err := partition.SegmentNodes(m.Graph, idx)
	if err != nil {
		return nil, err
	}
	if len(seg.Nodes) == 0 {
		return nil, fmt.Errorf("node: empty segment of model %s", m.ID)
	}
	if len(m.pieces) >= maxPieces {
		clear(m.pieces)
	}
	p := &pieceRunner{piece: &partition.Piece{From: idx[0], To: idx[len(idx)-1] + 1, Graph: seg}, key: key, model: m.ID}
	m.pieces[key] = p
	return p, nil
}

// pieceRunner runs one piece from any goroutine, with a pool of extractors
// so concurrent requests don't share an arena.
type pieceRunner struct {
	piece      *partition.Piece
	key, model string // for errors

	once sync.Once
	err  error // from compiling
	pool sync.Pool
}

// compile compiles the piece on first use.
func (p *pieceRunner) compile() error {
	p.once.Do(func() {
		net, err := model.Compile(p.piece.Graph, model.Options{})
		if err != nil {
			p.err = fmt.Errorf("node: compile segment %s of model %s: %w", p.key, p.model, err)
			return
		}
		p.piece.Net = net
		p.pool.New = func() any { return net.NewExtractor() }
	})
	return p.err
}

// run executes the piece on inputs (in the piece's input order) and returns
// copies of its outputs (the extractor's buffers go back to the pool).
func (p *pieceRunner) run(ctx context.Context, inputs []*tensor.Dense) ([]*tensor.Dense, error) {
	if len(inputs) != len(p.piece.Graph.Inputs) {
		return nil, fmt.Errorf("node: segment [%d,%d) takes %d tensors, got %d",
			p.piece.From, p.piece.To, len(p.piece.Graph.Inputs), len(inputs))
	}
	if err := p.compile(); err != nil {
		return nil, err
	}
	ex := p.pool.Get().(*model.Extractor)
	defer p.pool.Put(ex)
	outs, err := ex.Run(ctx, inputs...)
	if err != nil {
		return nil, err
	}
	cp := make([]*tensor.Dense, len(outs))
	for i, o := range outs {
		cp[i] = o.Clone().(*tensor.Dense)
	}
	return cp, nil
}

// formatRanges writes ascending indices as "a-b,c,...".
func formatRanges(idx []int) string {
	var sb strings.Builder
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		if j == i {
			fmt.Fprintf(&sb, "%d", idx[i])
		} else {
			fmt.Fprintf(&sb, "%d-%d", idx[i], idx[j])
		}
		i = j + 1
	}
	return sb.String()
}
