package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/npy"
	"github.com/edgesplit/edgesplit/model/ocr"
	"github.com/spf13/cobra"
	"gorgonia.org/tensor"
)

func newOCRCmd() *cobra.Command {
	def := ocr.CachedConfig()
	cfg := def
	var boxes, line bool
	var jobs int
	var remote edgeRecognizer
	cmd := &cobra.Command{
		Use:   "ocr [--boxes] [--line] [--node https://EDGE [--cacert ca.crt] [--token-file F] [--rec-model NAME]] img.png...",
		Short: "Read the text in images with PP-OCRv4 (detect lines, crop, recognise) on edgesplit's engine, or recognise on an edge node",
		Long: "Reads the text in each image: the PP-OCRv4 detector finds the text lines, each is cropped and read by the\n" +
			"recogniser, and the CTC output is decoded with ppocr_keys_v1.txt. One line of output per text line (with\n" +
			"--boxes: x0,y0,x1,y1, score, text, tab-separated). The models default to those scripts/fetch-models.sh caches.\n\n" +
			"With --node, detection and decoding stay here and each line's recogniser input goes to the edge's\n" +
			"POST /v1/infer (model --rec-model), which splits it with its clouds as it plans; the edge serves the\n" +
			"recogniser with one input shape (edgesplit export --model " + ocr.RecFile + " --shape 1,3,48,320), so\n" +
			"every line is fitted to --width (default 320 with --node). A summary of the plans goes to stderr.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if line {
				cfg.Det = ""
			}
			if remote.base != "" {
				if cfg.FixedWidth == 0 {
					cfg.FixedWidth = ocr.DefaultFixedWidth
				}
				// One client and token for every line (its connections
				// are reused); a bad --cacert or --token-file fails here.
				var err error
				if remote.api, err = newAPICaller(remote.tokenFile, remote.caFile); err != nil {
					return err
				}
				if remote.url, err = edgeURL(remote.base, "/v1/infer"); err != nil {
					return err
				}
				if remote.model != "" {
					remote.url.RawQuery = url.Values{"model": {remote.model}}.Encode()
				}
				cfg.Recognizer = &remote
			} else if remote.model != "" || remote.caFile != "" || remote.tokenFile != "" {
				return fmt.Errorf("--rec-model, --cacert and --token-file apply to an edge node (--node URL)")
			}
			p, err := ocr.New(cfg)
			if err != nil {
				return err
			}
			defer p.Close()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			cmd.SetContext(ctx)
			out := cmd.OutOrStdout()
			start := time.Now()
			// Read up to --jobs images at once (the local engine runs one
			// model at a time; an edge takes requests concurrently), and
			// print them in order.
			type result struct {
				lines []ocr.Line
				err   error
			}
			results := make([]chan result, len(args))
			sem := make(chan struct{}, max(1, jobs))
			for i, path := range args {
				results[i] = make(chan result, 1)
				go func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					if err := cmd.Context().Err(); err != nil {
						results[i] <- result{err: err}
						return
					}
					lines, err := readImage(cmd.Context(), p, path, line)
					results[i] <- result{lines, err}
				}()
			}
			for i, path := range args {
				r := <-results[i]
				if r.err != nil {
					cancel()
					for _, c := range results[i+1:] {
						<-c
					}
					return r.err
				}
				if len(args) > 1 {
					fmt.Fprintf(out, "# %s\n", path)
				}
				for _, l := range r.lines {
					if boxes {
						b := l.Box
						fmt.Fprintf(out, "%d,%d,%d,%d\t%.3f\t%s\n", b.Min.X, b.Min.Y, b.Max.X, b.Max.Y, l.Score, l.Text)
					} else {
						fmt.Fprintln(out, l.Text)
					}
				}
			}
			if remote.base != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s in %.0f ms\n", remote.summary(), float64(time.Since(start))/1e6)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Det, "det", def.Det, "text detector (ONNX)")
	f.StringVar(&cfg.Rec, "rec", def.Rec, "text recogniser (ONNX; unused with --node)")
	f.StringVar(&cfg.Keys, "keys", def.Keys, "the recogniser's alphabet, one entry per line")
	f.IntVar(&cfg.Threads, "threads", 1, "intra-op threads")
	f.IntVar(&cfg.Detect.MaxSide, "max-side", 960, "scale images down so that the longer side is at most this for detection")
	f.IntVar(&cfg.FixedWidth, "width", 0, "fit every line to this recogniser input width: pad, or squeeze a wider line (default: the line's own width; 320 with --node)")
	f.BoolVar(&boxes, "boxes", false, "print each line's box and score too")
	f.BoolVar(&line, "line", false, "treat each image as one text line (no detection)")
	f.IntVar(&jobs, "jobs", 1, "read up to this many images at once (with --node: concurrent requests to the edge)")
	f.StringVar(&remote.base, "node", "", "edge node's client API, e.g. https://127.0.0.1:8080: recognise there (detection stays here)")
	f.StringVar(&remote.model, "rec-model", "", "with --node: the name the edge serves the recogniser under (default: its first model)")
	f.StringVar(&remote.caFile, "cacert", "", "with --node https://…: also trust this CA certificate (the cluster's ca.crt for --api-tls)")
	f.StringVar(&remote.tokenFile, "token-file", "", "with --node: file holding the API bearer token (default $EDGESPLIT_TOKEN)")
	return cmd
}

// readImage reads the text of the image file path: every line (Read), or
// the whole image as one line.
func readImage(ctx context.Context, p *ocr.Pipeline, path string, line bool) ([]ocr.Line, error) {
	img, err := dataset.DecodeImage(path)
	if err != nil {
		return nil, err
	}
	if !line {
		lines, err := p.Read(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return lines, nil
	}
	l, err := p.ReadLine(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return []ocr.Line{l}, nil
}

// edgeRecognizer runs the recogniser on an edge node's POST /v1/infer and
// tallies the plans the edge chose. It is safe for concurrent use.
type edgeRecognizer struct {
	base, model, caFile, tokenFile string

	url *url.URL
	api *apiCaller

	mu    sync.Mutex
	plans map[string]int // "cut K codec C cloud N" → lines
	ms    []float64      // the edge's total_ms per line
}

var _ ocr.Recognizer = (*edgeRecognizer)(nil)

// Recognize posts x as .npy and returns the answer's output as 1×N.
func (e *edgeRecognizer) Recognize(ctx context.Context, x *tensor.Dense) (*tensor.Dense, error) {
	var body bytes.Buffer
	if err := npy.Write(&body, x); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url.String(), &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	b, err := e.api.call(req, 64<<20)
	if err != nil {
		return nil, err
	}
	var ans struct {
		Output []float32 `json:"output"`
		Cut    int       `json:"cut"`
		Codec  string    `json:"codec"`
		Cloud  string    `json:"cloud"`
		Total  float64   `json:"total_ms"`
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return nil, fmt.Errorf("%s: answer is not JSON: %w", e.url.Redacted(), err)
	}
	if len(ans.Output) == 0 {
		return nil, fmt.Errorf("%s: the answer carries no output", e.url.Redacted())
	}
	plan := fmt.Sprintf("cut %d", ans.Cut)
	if ans.Cloud != "" {
		plan += fmt.Sprintf(" codec %s cloud %s", ans.Codec, ans.Cloud)
	} else {
		plan += " (on the edge)"
	}
	e.mu.Lock()
	if e.plans == nil {
		e.plans = map[string]int{}
	}
	e.plans[plan]++
	e.ms = append(e.ms, ans.Total)
	e.mu.Unlock()
	return tensor.New(tensor.WithShape(1, len(ans.Output)), tensor.WithBacking(ans.Output)), nil
}

// summary is "recognised N lines on EDGE: plans …; edge total median M ms".
func (e *edgeRecognizer) summary() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var plans []string
	for p, n := range e.plans {
		plans = append(plans, fmt.Sprintf("%s ×%d", p, n))
	}
	sort.Strings(plans)
	ms := append([]float64(nil), e.ms...)
	sort.Float64s(ms)
	med := 0.0
	if len(ms) > 0 {
		med = ms[len(ms)/2]
	}
	return fmt.Sprintf("recognised %d lines on %s: %s; edge total median %.1f ms", len(ms), e.url.Redacted(), strings.Join(plans, ", "), med)
}
