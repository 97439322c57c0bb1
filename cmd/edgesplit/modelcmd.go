package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/onnx"
	"github.com/edgesplit/edgesplit/node"
	"github.com/edgesplit/edgesplit/node/registry"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// storeFlags are node's model-store flags.
type storeFlags struct {
	dir     string
	encrypt bool
	maxGB   float64
}

func (s *storeFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.dir, "model-dir", "", "the node's model store (created if missing): every --model is stored there, versions can be pushed and rolled out ('edgesplit model'), and a restarted node serves what the store holds")
	f.BoolVar(&s.encrypt, "encrypt-models", false, "seal the model store with AES-256-GCM under the key CA_DIR/model.key (created with mode 0600 if missing)")
	f.Float64Var(&s.maxGB, "model-dir-max-gb", 4, "most disk the model store may use, GiB")
}

// modelName is the registry name of a --model spec: NAME=SPEC names it;
// else a file's base name without .onnx, or the zoo name, with characters
// a name cannot hold replaced by '-'.
func modelName(spec string) (name, rest string) {
	if i := strings.IndexByte(spec, '='); i > 0 && !strings.ContainsAny(spec[:i], `/\`) {
		return spec[:i], spec[i+1:]
	}
	base := strings.TrimSuffix(filepath.Base(spec), ".onnx")
	b := []byte(base)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b), spec
}

// open opens the store the flags name (nil without --model-dir).
func (s *storeFlags) open(caDir string) (*registry.Store, error) {
	if s.dir == "" {
		if s.encrypt {
			return nil, errors.New("--encrypt-models needs --model-dir")
		}
		return nil, nil
	}
	opts := registry.DefaultOptions()
	if s.maxGB <= 0 {
		return nil, fmt.Errorf("--model-dir-max-gb %v: want a positive size", s.maxGB)
	}
	opts.MaxBytes = int64(s.maxGB * (1 << 30))
	opts.MaxModelBytes = min(opts.MaxModelBytes, opts.MaxBytes)
	if s.encrypt {
		k, err := modelKey(filepath.Join(caDir, "model.key"))
		if err != nil {
			return nil, fmt.Errorf("--encrypt-models: %w", err)
		}
		opts.Key = k
	}
	st, err := registry.Open(s.dir, opts)
	if err != nil {
		return nil, fmt.Errorf("--model-dir: %w", err)
	}
	return st, nil
}

// modelKey reads the store key (32 bytes, hex) at path, creating it when
// missing; a node racing another to create it reads the winner's.
func modelKey(path string) ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		_, werr := f.WriteString(hex.EncodeToString(k) + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, werr
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err = hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("%s: want 32 bytes as 64 hex digits", path)
	}
	return k, nil
}

// storeModel puts --model spec (loaded and calibrated as m) into st under
// name, and makes it the active version unless the store has one for that
// name already (a restarted node keeps the version it was rolled out to).
func storeModel(st *registry.Store, name, spec string, m *node.Model) (registry.Entry, error) {
	var b []byte
	var err error
	if strings.HasSuffix(spec, ".onnx") {
		b, err = os.ReadFile(spec)
	} else {
		b, err = onnx.Encode(m.Graph)
	}
	if err != nil {
		return registry.Entry{}, fmt.Errorf("--model %s: %w", spec, err)
	}
	extras, err := node.PackExtras(m.Calibration, m.Sidecar)
	if err != nil {
		return registry.Entry{}, err
	}
	e, err := st.Put(name, b, extras)
	if err != nil {
		return registry.Entry{}, fmt.Errorf("--model %s: %w", spec, err)
	}
	if _, ok := st.Active(name); !ok {
		if err := st.SetActive(name, e.Version); err != nil {
			return registry.Entry{}, err
		}
	}
	return e, nil
}

// adminFlags say how model commands reach an edge's API.
type adminFlags struct {
	node, tokenFile, caFile string
}

func (a *adminFlags) register(f *pflag.FlagSet) {
	f.StringVar(&a.node, "node", "127.0.0.1:8080", "edge node's client API (http://… or https://…; host:port means http)")
	f.StringVar(&a.tokenFile, "token-file", "", "file holding the API bearer token, of a client with scope models (default $EDGESPLIT_TOKEN)")
	f.StringVar(&a.caFile, "cacert", "", "also trust this CA certificate (PEM; the cluster's ca.crt for --api-tls)")
}

// do sends one request to the edge's API and decodes a 2xx JSON answer
// into out.
func (a *adminFlags) do(cmd *cobra.Command, method, path string, q url.Values, body io.Reader, ctype string, out any) error {
	u, err := edgeURL(a.node, path)
	if err != nil {
		return err
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(cmd.Context(), method, u.String(), body)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	b, err := callAPI(req, a.tokenFile, a.caFile, 16<<20)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: answer is not JSON: %w", method, u.Redacted(), err)
	}
	return nil
}

func newModelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Push model versions to a cluster and roll them out (through an edge's API)",
		Long: `model manages the versions of a model a cluster serves. A version is the SHA-256 of the ONNX bytes
with their calibration table and sidecar, the same on every node. 'push' stores a version on an edge
(started with --model-dir); 'rollout' moves the cluster to a version one node at a time — clouds first,
each fetching it in checked chunks from the edge or any peer holding it and serving it beside the version
it replaces, then the edge — with every request pinned to one version end to end; --canary sends only a
share of the edge's requests to it and reports their agreement with the active version; rolling out the
old version is a rollback. The API client needs scope models (push, rollout) or cluster (list).`,
	}
	cmd.AddCommand(newModelPushCmd(), newModelRolloutCmd(), newModelListCmd())
	return cmd
}

func newModelPushCmd() *cobra.Command {
	var a adminFlags
	var calibPath, sidecarPath string
	cmd := &cobra.Command{
		Use:   "push NAME FILE.onnx [--calibration-table T] [--sidecar S] [--node URL]",
		Short: "Store a model version on an edge; prints its version",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, file := args[0], args[1]
			if !registry.ValidName(name) {
				return fmt.Errorf("model name %q: want 1-63 of [A-Za-z0-9._-], starting with a letter or digit", name)
			}
			if calibPath == "" {
				if p := strings.TrimSuffix(file, ".onnx") + ".calib.json"; fileExists(p) {
					calibPath = p
				}
			}
			if sidecarPath == "" {
				if p := dataset.SidecarPath(file); fileExists(p) {
					sidecarPath = p
				}
			}
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			for _, part := range []struct{ field, path string }{{"model", file}, {"calibration", calibPath}, {"sidecar", sidecarPath}} {
				if part.path == "" {
					continue
				}
				b, err := os.ReadFile(part.path)
				if err != nil {
					return err
				}
				w, err := mw.CreateFormFile(part.field, filepath.Base(part.path))
				if err != nil {
					return err
				}
				if _, err := w.Write(b); err != nil {
					return err
				}
			}
			if err := mw.Close(); err != nil {
				return err
			}
			var got node.StoredModel
			if err := a.do(cmd, http.MethodPut, "/v1/models/"+url.PathEscape(name), nil, &body, mw.FormDataContentType(), &got); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored %s version %s (%d bytes)\n", got.Name, got.Version, got.Bytes)
			return nil
		},
	}
	a.register(cmd.Flags())
	cmd.Flags().StringVar(&calibPath, "calibration-table", "", "calibration table to store with it (default: FILE.calib.json when present)")
	cmd.Flags().StringVar(&sidecarPath, "sidecar", "", "sidecar (preprocessing, labels) to store with it (default: FILE.json when present)")
	return cmd
}

func newModelRolloutCmd() *cobra.Command {
	var a adminFlags
	var canary float64
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "rollout NAME VERSION [--canary SHARE] [--node URL]",
		Short: "Move the cluster to a version of a model, one node at a time (a rollback is a rollout of the old version)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			q := url.Values{"version": {args[1]}}
			if canary != 0 {
				q.Set("canary", fmt.Sprint(canary))
			}
			var st node.RolloutStatus
			if err := a.do(cmd, http.MethodPost, "/v1/models/"+url.PathEscape(name)+"/rollout", q, nil, "", &st); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "rollout of %s to %s started\n", name, registry.Version(st.Version).Short())
			if !wait {
				return nil
			}
			deadline := time.Now().Add(timeout)
			for {
				var v node.ModelsView
				if err := a.do(cmd, http.MethodGet, "/v1/models", nil, nil, "", &v); err != nil {
					return err
				}
				for _, r := range v.Rollouts {
					if r.Model != name || r.Version != st.Version || r.State == "running" {
						continue
					}
					w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "node\trole\tstate\tms\terror")
					for _, s := range r.Steps {
						fmt.Fprintf(w, "%s\t%s\t%s\t%.0f\t%s\n", s.Node, s.Role, s.State, s.MS, s.Error)
					}
					w.Flush()
					if r.State != "done" {
						return fmt.Errorf("rollout of %s to %s failed: %s", name, registry.Version(st.Version).Short(), r.Error)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "rollout of %s to %s done in %v\n", name, registry.Version(st.Version).Short(), r.Ended.Sub(r.Started).Round(time.Millisecond))
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("rollout of %s still running after %v (GET /v1/models follows it)", name, timeout)
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	}
	a.register(cmd.Flags())
	cmd.Flags().Float64Var(&canary, "canary", 0, "send only this share of the edge's requests (0 < SHARE < 1) to the version, comparing their answers with the active version's ('model list' reports the agreement); a rollout without --canary promotes it")
	cmd.Flags().BoolVar(&wait, "wait", true, "wait for the rollout to end and print its steps")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "with --wait: give up waiting after this long")
	return cmd
}

func newModelListCmd() *cobra.Command {
	var a adminFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--node URL] [--json]",
		Short: "The versions an edge serves and stores, its rollouts and canaries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v node.ModelsView
			if err := a.do(cmd, http.MethodGet, "/v1/models", nil, nil, "", &v); err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "model\tversion\tserved\tactive\tcanary")
			for _, s := range v.Serving {
				fmt.Fprintf(w, "%s\t%s\tyes\t%v\t%v\n", s.ID, s.Version, s.Active, s.Canary)
			}
			for _, s := range v.Stored {
				fmt.Fprintf(w, "%s\t%s\tstored (%d bytes)\t%v\t\n", s.Name, registry.Version(s.Version).Short(), s.Bytes, s.Active)
			}
			w.Flush()
			for _, c := range v.Canaries {
				fmt.Fprintf(cmd.OutOrStdout(), "canary %s %s against %s: %d requests, %d compared, %d agreed (%.1f %%), %d skipped\n",
					c.Model, c.Version, c.Against, c.Requests, c.Compared, c.Agreed, 100*c.Agreement, c.Skipped)
			}
			return nil
		},
	}
	a.register(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print GET /v1/models as JSON")
	return cmd
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}
