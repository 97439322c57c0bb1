package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/internal/nodeline"
	"github.com/edgesplit/edgesplit/node"
)

// proc is one `edgesplit node` OS process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	log    *os.File
	done   chan struct{} // closed when the process has exited
}

// startNode starts `edgesplit node ARGS`, its stderr going to logPath, and
// waits (up to wait: a cloud may calibrate first) for its start line; it
// returns the gossip and HTTP addresses.
func startNode(bin, name, logPath string, wait time.Duration, args ...string) (*proc, string, string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"node", "--name", name}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	lf, err := os.Create(logPath)
	if err != nil {
		cancel()
		return nil, "", "", err
	}
	cmd.Stderr = lf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		lf.Close()
		return nil, "", "", err
	}
	fmt.Fprintf(lf, "# %s %s\n", bin, strings.Join(cmd.Args[1:], " "))
	if err := cmd.Start(); err != nil {
		cancel()
		lf.Close()
		return nil, "", "", err
	}
	p := &proc{name: name, cmd: cmd, cancel: cancel, log: lf, done: make(chan struct{})}
	lines := nodeline.First(stdout)
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(p.done) }()
	select {
	case l := <-lines:
		st, err := nodeline.Parse(l)
		if err != nil {
			p.stop()
			return nil, "", "", fmt.Errorf("node %s: %w (see %s)", name, err, logPath)
		}
		return p, st.Gossip, st.HTTP, nil
	case <-p.done:
		p.stop()
		return nil, "", "", fmt.Errorf("node %s exited before starting (%v); see %s", name, waitErr, logPath)
	case <-time.After(wait):
		p.stop()
		return nil, "", "", fmt.Errorf("node %s did not start within %v; see %s", name, wait, logPath)
	}
}

// stop interrupts the process (it shuts down cleanly) and waits for it.
func (p *proc) stop() {
	p.cancel()
	<-p.done
	p.log.Close()
}

// cluster is one edge and two clouds serving one model.
type cluster struct {
	procs []*proc
	base  string // the edge's HTTP API
}

func (c *cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop()
	}
}

// clusterConfig is what startCluster needs.
type clusterConfig struct {
	bin, ca        string
	model          string // --model spec
	table, calib   string // --calibration-table and (cloud1 only) --calibration
	calibSamples   int
	link, device   string
	logDir, prefix string
}

// startCluster starts cloud1 (which calibrates the model when its table is
// missing), cloud2 and the edge, and waits until the edge sees both clouds
// alive and has their profiles (a cloud-only request is offloaded).
func startCluster(cfg clusterConfig, probe []byte) (*cluster, error) {
	common := []string{"--ca", cfg.ca, "--model", cfg.model, "--bind", "127.0.0.1:0",
		"--calibration-table", cfg.table}
	c := &cluster{}
	logf := func(n string) string { return filepath.Join(cfg.logDir, cfg.prefix+"-"+n+".log") }
	args := append([]string{"--role", "cloud", "--calibration", cfg.calib,
		"--calibration-samples", fmt.Sprint(cfg.calibSamples)}, common...)
	p, seed, _, err := startNode(cfg.bin, "cloud1", logf("cloud1"), 60*time.Minute, args...)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	p, _, _, err = startNode(cfg.bin, "cloud2", logf("cloud2"), 2*time.Minute,
		append([]string{"--role", "cloud", "--join", seed}, common...)...)
	if err != nil {
		c.stop()
		return nil, err
	}
	c.procs = append(c.procs, p)
	p, _, httpAddr, err := startNode(cfg.bin, "edge", logf("edge"), 2*time.Minute,
		// The bench's own loopback cluster: its API is left open on
		// purpose (--insecure-api) so the load loop needs no tokens.
		append([]string{"--role", "edge", "--join", seed, "--http", "127.0.0.1:0", "--insecure-api", "--link", cfg.link,
			"--device", cfg.device}, common...)...)
	if err != nil {
		c.stop()
		return nil, err
	}
	c.procs = append(c.procs, p)
	c.base = "http://" + httpAddr
	deadline := time.Now().Add(60 * time.Second)
	for {
		alive, err := c.aliveClouds()
		if err == nil && alive == 2 {
			break
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("edge sees %d live clouds after 60 s (%v)", alive, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		res, code, _, err := c.infer("policy=cloud-only", probe)
		if err == nil && code == http.StatusOK && res.Cloud != "" {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("the edge does not offload yet after 60 s (status %d, %v)", code, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *cluster) aliveClouds() (int, error) {
	resp, err := http.Get(c.base + "/v1/cluster")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var members []node.ClusterMember
	if err := json.NewDecoder(resp.Body).Decode(&members); err != nil {
		return 0, err
	}
	n := 0
	for _, m := range members {
		if m.Alive && m.Role == node.RoleCloud {
			n++
		}
	}
	return n, nil
}

var client = &http.Client{Timeout: 60 * time.Second}

// infer posts body to /v1/infer?QUERY and returns the answer, the status,
// the body of a non-200 answer, and the client-side latency.
func (c *cluster) infer(query string, body []byte) (*node.InferResponse, int, string, error) {
	r, code, msg, _, err := c.inferTimed(query, body)
	return r, code, msg, err
}

func (c *cluster) inferTimed(query string, body []byte) (*node.InferResponse, int, string, time.Duration, error) {
	start := time.Now()
	resp, err := client.Post(c.base+"/v1/infer?"+query, "image/png", bytes.NewReader(body))
	if err != nil {
		return nil, 0, "", 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, resp.StatusCode, "", 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, strings.TrimSpace(string(b)), 0, nil
	}
	var res node.InferResponse
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, resp.StatusCode, "", 0, err
	}
	return &res, resp.StatusCode, "", time.Since(start), nil
}

// waitOffload sends cloud-only requests until one is offloaded (no cloud is
// banned any more), for at most d; it returns how long it waited.
func (c *cluster) waitOffload(probe []byte, d time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		res, code, msg, err := c.infer("policy=cloud-only", probe)
		if err == nil && code == http.StatusOK && res.Cloud != "" {
			return time.Since(start), nil
		}
		if time.Since(start) > d {
			return time.Since(start), fmt.Errorf("the edge did not offload for %v (status %d %s, %v)", d, code, msg, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
