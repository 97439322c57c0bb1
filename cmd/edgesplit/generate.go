package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/train"
	"github.com/edgesplit/edgesplit/node"
	"github.com/spf13/cobra"
)

func newGenerateCmd() *cobra.Command {
	var modelPath, prompt, corpus string
	var n, threads, holdEvery int
	var r remoteGenerate
	cmd := &cobra.Command{
		Use: "generate --model gpt.onnx --prompt TEXT [-n 200] [--perplexity-corpus DIR]  |  generate --node http://EDGE --prompt TEXT [-n 200] [--model ID] [--cut K]",
		Short: "Continue a prompt with a causal language model (greedy decoding on the engine, tokens printed as they come); optionally its held-out perplexity; " +
			"with --node an edge generates it split with its clouds",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if r.node != "" {
				if corpus != "" {
					return fmt.Errorf("--perplexity-corpus runs a model file locally; it does not apply with --node")
				}
				if prompt == "" {
					return fmt.Errorf("--node needs --prompt")
				}
				r.model, r.prompt, r.tokens = modelPath, prompt, n
				if !cmd.Flags().Changed("cut") {
					if r.decodeCut >= 0 {
						return fmt.Errorf("--decode-cut needs --cut (the prefill's cut)")
					}
					r.cut = -1
				}
				return generateRemote(cmd, r)
			}
			if modelPath == "" {
				return fmt.Errorf("generate needs --model (a file; or --node URL to ask an edge)")
			}
			for flag, set := range map[string]bool{"--cut": cmd.Flags().Changed("cut"), "--decode-cut": cmd.Flags().Changed("decode-cut"),
				"--cloud": r.cloud != "", "--result": r.result != ""} {
				if set {
					return fmt.Errorf("%s applies to a generation on an edge node (--node URL)", flag)
				}
			}
			g, _, err := loadModel(modelPath)
			if err != nil {
				return err
			}
			m, err := lm.New(g, model.Options{Threads: threads})
			if err != nil {
				return fmt.Errorf("%s: %w", modelPath, err)
			}
			defer m.Close()
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			if corpus != "" {
				if !cmd.Flags().Changed("hold-every") {
					// The split the model was trained with, from its card.
					if b, err := os.ReadFile(train.LMCardPath(modelPath)); err == nil {
						var c train.LMCard
						if err := json.Unmarshal(b, &c); err != nil {
							return fmt.Errorf("%s: %w", train.LMCardPath(modelPath), err)
						}
						if c.HoldEvery > 0 {
							holdEvery = c.HoldEvery
						}
					}
				}
				entries, err := lm.ReadCorpus(corpus)
				if err != nil {
					return err
				}
				_, held, err := lm.Split(entries, holdEvery)
				if err != nil {
					return err
				}
				ppl, scored, err := m.Perplexity(cmd.Context(), lm.Stream(held))
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "held-out perplexity %.3f over %d tokens (every %d-th entry of %s)\n", ppl, scored, holdEvery, corpus)
			}
			if prompt == "" {
				return nil
			}
			fmt.Fprint(w, prompt)
			_, err = m.Generate(cmd.Context(), lm.Encode(prompt), n, func(tok int) error {
				fmt.Fprint(w, lm.Decode([]int{tok}))
				return w.Flush()
			})
			fmt.Fprintln(w)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "a causal language model (ONNX, e.g. from `edgesplit train --arch gpt-tiny`); with --node the id of a model the edge serves (default: its first)")
	f.StringVar(&prompt, "prompt", "", "text to continue (printable ASCII and newlines; other characters become the unknown token)")
	f.IntVarP(&n, "tokens", "n", 200, "tokens (characters) to generate")
	f.IntVar(&threads, "threads", 1, "intra-op threads")
	f.StringVar(&corpus, "perplexity-corpus", "", "also measure the perplexity on the held-out entries of this fortune folder")
	f.IntVar(&holdEvery, "hold-every", 20, "with --perplexity-corpus: the held-out entries are every N-th (default: as the model's .lm.json card says `edgesplit train` held them, else 20)")
	f.StringVar(&r.node, "node", "", "edge node's client API, e.g. http://127.0.0.1:8080: the edge generates, split with its clouds as it plans, and streams the tokens")
	f.IntVar(&r.cut, "cut", -1, "with --node: blocks on the edge (0: cloud-only, the model's depth: edge-only) instead of the edge's plan (needs scope override)")
	f.IntVar(&r.decodeCut, "decode-cut", -1, "with --node and --cut: decode at this cut (≥ --cut) instead: the cloud prefills blocks [cut, depth) and sends the caches of [cut, decode-cut) down, the edge decodes those blocks itself")
	f.StringVar(&r.cloud, "cloud", "", "with --node: the cloud to start on (needs scope override)")
	f.StringVar(&r.result, "result", "", "with --node: also write the finished generation's report (JSON: cut, cloud, bytes per token, tokens/s, failovers) here")
	f.StringVar(&r.tokenFile, "token-file", "", "with --node: file holding the API bearer token (default $EDGESPLIT_TOKEN)")
	f.StringVar(&r.caFile, "cacert", "", "with --node https://…: also trust this CA certificate (PEM; the cluster's ca.crt for --api-tls)")
	return cmd
}

// remoteGenerate is one POST /v1/generate to an edge.
type remoteGenerate struct {
	node, model, prompt, cloud, result, tokenFile, caFile string
	tokens, cut, decodeCut                                int
}

// maxEventBytes bounds one server-sent event's line (the done event holds
// every token id).
const maxEventBytes = 1 << 20

// generateRemote posts r to the edge's /v1/generate, prints the prompt and
// then each token as its event arrives, and ends with a summary line on
// stderr (and the report in r.result).
func generateRemote(cmd *cobra.Command, r remoteGenerate) error {
	u, err := edgeURL(r.node, "/v1/generate")
	if err != nil {
		return err
	}
	body := map[string]any{"prompt": r.prompt, "tokens": r.tokens}
	if r.model != "" {
		body["model"] = r.model
	}
	if r.cut >= 0 {
		body["cut"] = r.cut
	}
	if r.decodeCut >= 0 {
		body["decode_cut"] = r.decodeCut
	}
	if r.cloud != "" {
		body["cloud"] = r.cloud
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := openAPI(req, r.tokenFile, r.caFile)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w := bufio.NewWriter(cmd.OutOrStdout())
	defer w.Flush()
	fmt.Fprint(w, r.prompt)
	var done *node.GenerateResult
	err = readEvents(resp.Body, func(name string, data []byte) error {
		switch name {
		case "token":
			var e node.GenerateEvent
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("token event: %w", err)
			}
			fmt.Fprint(w, e.Text)
			return w.Flush()
		case "done":
			done = new(node.GenerateResult)
			if err := json.Unmarshal(data, done); err != nil {
				return fmt.Errorf("done event: %w", err)
			}
			return errStopEvents
		case "error":
			var e struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(data, &e)
			return fmt.Errorf("the edge failed the generation: %s", e.Error)
		}
		return nil // an event this client does not know
	})
	fmt.Fprintln(w)
	if err != nil {
		return fmt.Errorf("%s: %w", u.Redacted(), err)
	}
	if done == nil {
		return fmt.Errorf("%s: the stream ended before its done event", u.Redacted())
	}
	where := "edge-only"
	switch {
	case done.Cut < done.Blocks && done.DecodeCut > done.Cut:
		where = fmt.Sprintf("prefill cut %d, decode cut %d of %d blocks, cloud %s, %d B of caches and answers down", done.Cut, done.DecodeCut, done.Blocks, done.Cloud, done.BytesDown)
	case done.Cut < done.Blocks:
		where = fmt.Sprintf("cut %d of %d blocks, cloud %s", done.Cut, done.Blocks, done.Cloud)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%d tokens, %s: first token %.0f ms, %.1f tokens/s, %.0f B per token up, %d failovers\n",
		len(done.Tokens), where, done.FirstTokenMS, done.TokensPerSec, done.BytesPerToken, done.Failovers)
	if r.result != "" {
		out, err := json.MarshalIndent(done, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(r.result, append(out, '\n'), 0o644)
	}
	return nil
}

// errStopEvents ends readEvents without an error.
var errStopEvents = errors.New("stop")

// readEvents reads a server-sent event stream and calls on with each
// event's name and data (lines of at most maxEventBytes) until the stream
// ends or on returns an error (errStopEvents: a clean stop).
func readEvents(r io.Reader, on func(name string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
	name, data := "message", []byte(nil)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if data != nil {
				if err := on(name, data); err != nil {
					if errors.Is(err, errStopEvents) {
						return nil
					}
					return err
				}
			}
			name, data = "message", nil
		case bytes.HasPrefix(line, []byte("event:")):
			name = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			d := bytes.TrimPrefix(line[len("data:"):], []byte(" "))
			if data != nil {
				data = append(data, '\n')
			}
			data = append(append([]byte{}, data...), d...)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	return nil
}
