package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/node"
)

// TestThreeTierOnProcesses: a device (mcu-class, on Gigabit Ethernet), an
// edge server (12× slower than this machine) and a cloud behind an LTE-class WAN,
// each an `edgesplit node` process, with AlexNet. An edge planning three
// tiers sends the raw input over the LAN to the server, which runs the
// first layers (they shrink the input 4×) and sends the rest over the WAN
// to the cloud; it answers faster than the best plan of an edge of the same
// cluster planning two tiers only (the median of each two-tier plan it
// ran: the whole model on the server, or the raw input over the WAN).
// Both answer the same class for every request.
func TestThreeTierOnProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("three-tier cluster of processes skipped with -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	ca := newCA(t, bin, dir, "ca", map[string]string{"edge3": "edge", "edge2": "edge", "box": "edge-server", "cloud": "cloud"})
	clients := filepath.Join(dir, "clients.yaml")
	tok, _, _ := strings.Cut(run(t, bin, "token", "new", "--name", "op", "--scopes", "infer,cluster", "--clients", clients,
		"--rate", "1000", "--burst", "1000"), "\n")
	common := []string{"--ca", ca, "--model", "alexnet", "--bind", "127.0.0.1:0", "--codecs", "lossless"}
	cloud := launchNode(t, bin, append([]string{"--role", "cloud", "--name", "cloud", "--link", "lte"}, common...)...)
	box := launchNode(t, bin, append([]string{"--role", "edge-server", "--name", "box", "--device", "slowdown:12", "--join", cloud.gossip}, common...)...)
	edges := map[int]nodeProc{}
	for _, tiers := range []int{3, 2} {
		name := "edge" + string(rune('0'+tiers))
		edges[tiers] = launchNode(t, bin, append([]string{"--role", "edge", "--name", name, "--device", "mcu-class", "--link", "ethernet",
			"--join", cloud.gossip, "--http", "127.0.0.1:0", "--api-clients", clients, "--tiers", string(rune('0' + tiers))}, common...)...)
	}
	_ = box
	useAPI(t, "", tok)
	defer useAPI(t, "", "")
	x := filepath.Join(dir, "x.npy")
	writeRandomNPY(t, x, []int{1, 3, 224, 224})
	body, err := os.ReadFile(x)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edges {
		base := "http://" + e.http
		waitFor(t, 30*time.Second, func() bool {
			return clusterMember(t, base, "box").Alive && clusterMember(t, base, "cloud").Alive
		}, "the edge to see the server and the cloud")
	}
	// The server gossips its hop to the cloud once it has measured it.
	waitFor(t, 30*time.Second, func() bool {
		var members []node.ClusterMember
		getJSON(t, "http://"+edges[3].http+"/v1/cluster", &members)
		for _, m := range members {
			if m.Name == "box" && len(m.Hops) > 0 {
				return true
			}
		}
		return false
	}, "the edge server to gossip its link to the cloud")

	client := &http.Client{Timeout: 30 * time.Second}
	infer := func(e nodeProc) node.InferResponse {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+e.http+"/v1/infer", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r node.InferResponse
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil {
			t.Fatalf("infer: %s %s", resp.Status, b)
		}
		return r
	}
	class := -1
	medians := map[int]time.Duration{}
	median := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	best2, best2Plan := time.Duration(0), ""
	for _, tiers := range []int{3, 2} {
		e := edges[tiers]
		for range 12 { // the edge learns its links and the plans settle
			infer(e)
		}
		var lat []time.Duration
		plans := map[string]int{}
		perPlan := map[string][]time.Duration{}
		for range 15 {
			start := time.Now()
			r := infer(e)
			lat = append(lat, time.Since(start))
			if class < 0 {
				class = r.Class
			} else if r.Class != class {
				t.Errorf("%d tiers: class %d, the other answers %d", tiers, r.Class, class)
			}
			key := r.Cloud
			if r.Via != "" {
				key = r.Via + "→" + r.Cloud
			}
			plans[key]++
			perPlan[key] = append(perPlan[key], lat[len(lat)-1])
		}
		medians[tiers] = median(lat)
		t.Logf("%d tiers: median %v (min %v, max %v), plans %v", tiers, medians[tiers], slices.Min(lat), slices.Max(lat), plans)
		if tiers == 2 {
			for k, ds := range perPlan {
				t.Logf("  two-tier plan %s: median %v of %d", k, median(ds), len(ds))
				if len(ds) >= 3 && (best2 == 0 || median(ds) < best2) {
					best2, best2Plan = median(ds), k
				}
			}
		}
		if tiers == 3 && plans["box→cloud"] < 8 {
			t.Errorf("the three-tier edge planned %v: want most requests through box to cloud", plans)
		}
		if tiers == 2 && plans["box→cloud"] > 0 {
			t.Errorf("the two-tier edge planned three tiers: %v", plans)
		}
	}
	if best2 == 0 {
		best2, best2Plan = medians[2], "all"
	}
	if medians[3] >= best2 {
		t.Errorf("three tiers median %v ≥ the best two-tier plan's (%s) %v", medians[3], best2Plan, best2)
	}
	t.Logf("best two-tier plan (%s) median ÷ three-tier median = %.2f; the two-tier edge's median ÷ three-tier = %.2f",
		best2Plan, float64(best2)/float64(medians[3]), float64(medians[2])/float64(medians[3]))
}
