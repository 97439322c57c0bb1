package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/partition"
	"github.com/edgesplit/edgesplit/transport/pki"
	"github.com/spf13/cobra"
	"gorgonia.org/tensor"
)

// loadInput reads the model's single input from a .npy file or an image.
// An empty path gives a seeded uniform [0,1) tensor of the input's shape.
func loadInput(path string, g *model.Graph, sc *dataset.Sidecar) (*tensor.Dense, error) {
	if len(g.Inputs) != 1 {
		return nil, fmt.Errorf("model has %d inputs; this command feeds exactly one", len(g.Inputs))
	}
	vi := g.Inputs[0]
	if path == "" {
		return model.UniformTensor(vi.Shape, 1), nil
	}
	var t *tensor.Dense
	var err error
	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		t, err = readNPY(path)
	case ".png", ".jpg", ".jpeg":
		t, err = imageInput(path, vi, sc)
	default:
		return nil, fmt.Errorf("input %s: want a .npy, .png, .jpg or .jpeg file", path)
	}
	if err != nil {
		return nil, err
	}
	if err := checkInputShape(vi, t); err != nil {
		return nil, err
	}
	return t, nil
}

func newInferCmd() *cobra.Command {
	var modelPath, inputPath, outputPath, nodeURL, policy, codec, deadline, maxLoss, tokenFile, caFile string
	var k int
	cmd := &cobra.Command{
		Use:   "infer --model M.onnx --input x.npy|img.png|img.jpg [--output y.npy] [--cut K]  |  infer --node http://EDGE [--model ID] [--cut K] [--output y.npy] img.png",
		Short: "Run a model locally (with --cut: head then tail), or ask an edge node (--node) to run it split",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if inputPath != "" {
					return fmt.Errorf("give the input either as an argument or with --input, not both")
				}
				inputPath = args[0]
			}
			if inputPath == "" {
				return fmt.Errorf("no input: pass a file or --input")
			}
			if nodeURL != "" {
				if k >= 0 {
					if policy != "" {
						return fmt.Errorf("--cut %d and --policy %s both choose the split; give one", k, policy)
					}
					policy = fmt.Sprintf("fixed:%d", k)
				}
				return inferRemote(cmd, remoteInfer{base: nodeURL, path: inputPath, model: modelPath, policy: policy,
					codec: codec, deadline: deadline, maxLoss: maxLoss, output: outputPath, tokenFile: tokenFile, caFile: caFile})
			}
			for flag, v := range map[string]string{"--policy": policy, "--codec": codec, "--deadline": deadline, "--max-loss": maxLoss} {
				if v != "" {
					return fmt.Errorf("%s applies to a request to an edge node (--node URL); locally the model runs unsplit or at --cut", flag)
				}
			}
			if modelPath == "" {
				return fmt.Errorf("local inference needs --model (or use --node URL)")
			}
			g, _, x, err := loadModelInput(modelPath, inputPath)
			if err != nil {
				return err
			}
			if k < 0 {
				k = len(g.Nodes)
			}
			r, err := partition.NewRunner(g, k, model.Options{})
			if err != nil {
				return err
			}
			outs, _, err := r.Run(cmd.Context(), x)
			if err != nil {
				return err
			}
			y := outs[0]
			data := y.Data().([]float32)
			best := 0
			for i, v := range data {
				if v > data[best] {
					best = i
				}
			}
			if outputPath == "" {
				fmt.Fprintf(cmd.OutOrStdout(), "%s shape %v; argmax %d (%.6g)\n", g.Outputs[0].Name, []int(y.Shape()), best, data[best])
				return nil
			}
			if err := writeNPY(outputPath, y); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s shape %v; argmax %d (%.6g)\n",
				outputPath, g.Outputs[0].Name, []int(y.Shape()), best, data[best])
			return nil
		},
	}
	cmd.Flags().StringVar(&modelPath, "model", "", modelFlagHelp)
	cmd.Flags().StringVar(&inputPath, "input", "", "input .npy (float32) or image (.png/.jpg: resized to the model input, grayscale when it has 1 channel, scaled to [0,1])")
	cmd.Flags().StringVar(&outputPath, "output", "", "where to write the first output (.npy float32; with --node the answer's output as 1×N); default: print the prediction only")
	cmd.Flags().IntVar(&k, "cut", -1, "run head [0,K) then tail [K,N) passing the boundary tensors (default: unsplit); with --node: policy fixed:K")
	cmd.Flags().StringVar(&nodeURL, "node", "", "edge node's client API, e.g. http://127.0.0.1:8080: send the input there instead of running locally")
	cmd.Flags().StringVar(&policy, "policy", "", "with --node: split policy for this request")
	cmd.Flags().StringVar(&codec, "codec", "", "with --node: force a codec preset")
	cmd.Flags().StringVar(&deadline, "deadline", "", "with --node: request deadline, e.g. 500ms")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "with --node: file holding the API bearer token (default $EDGESPLIT_TOKEN)")
	cmd.Flags().StringVar(&caFile, "cacert", "", "with --node https://…: also trust this CA certificate (PEM; the cluster's ca.crt for --api-tls)")
	cmd.Flags().StringVar(&maxLoss, "max-loss", "", "with --node: accuracy budget for this request (max loss of top-1 agreement, e.g. 0.01)")
	return cmd
}

// remoteInfer is one request to an edge node's client API.
type remoteInfer struct {
	base, path, model, policy, codec, deadline, maxLoss, output string
	tokenFile, caFile                                           string
}

// apiToken reads the bearer token for an edge's API: --token-file, else
// $EDGESPLIT_TOKEN ("" when neither is set: the API may be open).
func apiToken(file string) (string, error) {
	if file == "" {
		return os.Getenv("EDGESPLIT_TOKEN"), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("--token-file %s: want one token on one line", file)
	}
	return tok, nil
}

// apiClient is an HTTP client trusting caFile (PEM) besides the system
// roots when given: the cluster CA of an edge serving --api-tls.
func apiClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return http.DefaultClient, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--cacert: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", caFile)
	}
	// Nodes' certificates name the node and the cluster, not an address.
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: pki.ClusterDNSName}}}, nil
}

// apiCaller sends requests to an edge's API with one bearer token over one
// HTTP client (so its connections are reused); safe for concurrent use.
type apiCaller struct {
	client *http.Client
	token  string
}

// newAPICaller reads the token (tokenFile, else $EDGESPLIT_TOKEN) and
// builds a client trusting caFile.
func newAPICaller(tokenFile, caFile string) (*apiCaller, error) {
	tok, err := apiToken(tokenFile)
	if err != nil {
		return nil, err
	}
	client, err := apiClient(caFile)
	if err != nil {
		return nil, err
	}
	return &apiCaller{client: client, token: tok}, nil
}

// callAPI sends req to an edge's API with the bearer token (tokenFile, else
// $EDGESPLIT_TOKEN) over a client trusting caFile, and returns the body of
// a 2xx answer (at most limit bytes); any other answer is an error naming
// the request, the status and what the node said.
func callAPI(req *http.Request, tokenFile, caFile string, limit int64) ([]byte, error) {
	c, err := newAPICaller(tokenFile, caFile)
	if err != nil {
		return nil, err
	}
	return c.call(req, limit)
}

// openAPI sends req as callAPI does and returns a 2xx response with its
// body still to read (a stream); the caller closes it.
func openAPI(req *http.Request, tokenFile, caFile string) (*http.Response, error) {
	c, err := newAPICaller(tokenFile, caFile)
	if err != nil {
		return nil, err
	}
	return c.open(req)
}

// call is callAPI on c's client and token.
func (c *apiCaller) call(req *http.Request, limit int64) ([]byte, error) {
	resp, err := c.open(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}

// open is openAPI on c's client and token.
func (c *apiCaller) open(req *http.Request) (*http.Response, error) {
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Redacted(), resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

// edgeURL turns an --node value into the URL of path (such as /v1/infer)
// on the edge's API: a bare host:port means http://host:port.
func edgeURL(base, path string) (*url.URL, error) {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("--node %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("--node %q: want http:// or https:// (or host:port)", base)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("--node %q: no host", base)
	}
	u.Path = strings.TrimRight(u.Path, "/") + path
	return u, nil
}

// inferRemote posts the input file to an edge node's /v1/infer, prints the
// JSON answer and, when asked, writes its output as .npy.
func inferRemote(cmd *cobra.Command, r remoteInfer) error {
	u, err := edgeURL(r.base, "/v1/infer")
	if err != nil {
		return err
	}
	body, err := os.ReadFile(r.path)
	if err != nil {
		return err
	}
	q := url.Values{}
	for k, v := range map[string]string{"model": r.model, "policy": r.policy, "codec": r.codec, "deadline": r.deadline, "max_loss": r.maxLoss} {
		if v != "" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	out, err := callAPI(req, r.tokenFile, r.caFile, 64<<20)
	if err != nil {
		return err
	}
	if r.output != "" {
		var ans struct {
			Output []float32 `json:"output"`
		}
		if err := json.Unmarshal(out, &ans); err != nil {
			return fmt.Errorf("%s: answer is not JSON: %w", u.Redacted(), err)
		}
		if len(ans.Output) == 0 {
			return fmt.Errorf("%s: the answer carries no output to write to %s", u.Redacted(), r.output)
		}
		y := tensor.New(tensor.WithShape(1, len(ans.Output)), tensor.WithBacking(ans.Output))
		if err := writeNPY(r.output, y); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: output shape [1 %d]\n", r.output, len(ans.Output))
	}
	_, err = cmd.OutOrStdout().Write(out)
	return err
}
