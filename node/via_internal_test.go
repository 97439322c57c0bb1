package node

import (
	"testing"
	"time"

	"github.com/edgesplit/edgesplit/scheduler"
)

// The learned second-hop correction moves toward measured − uncorrected
// prediction, stays within ±maxViaCorrection, and is kept per server.
func TestLearnVia(t *testing.T) {
	n := &Node{edge: &edgeRole{viaCorr: make(map[string]*scheduler.EWMA), twoCorr: make(map[string]*scheduler.EWMA)}}
	if c := n.viaCorrection("box"); c != 0 {
		t.Fatalf("before any exchange: %v", c)
	}
	// Each exchange through box took 40 ms longer than predicted without a
	// correction; the plans carry the correction learned so far.
	for range 30 {
		n.learnVia("box", 40*time.Millisecond-n.viaCorrection("box"))
	}
	if c := n.viaCorrection("box"); c < 39*time.Millisecond || c > 41*time.Millisecond {
		t.Errorf("correction %v, want ≈ 40 ms", c)
	}
	if c := n.viaCorrection("other"); c != 0 {
		t.Errorf("another server's correction %v", c)
	}
	for range 30 {
		n.learnVia("stuck", time.Minute)
	}
	if c := n.viaCorrection("stuck"); c != maxViaCorrection {
		t.Errorf("a stalled server's correction %v, want the bound %v", c, maxViaCorrection)
	}
	// Two-tier offloads to a cloud predicted 25 ms too fast: their own
	// correction, apart from the servers'.
	for range 30 {
		n.learnCorrection(n.edge.twoCorr, "cloud", 25*time.Millisecond-n.correction(n.edge.twoCorr, "cloud"))
	}
	if c := n.correction(n.edge.twoCorr, "cloud"); c < 24*time.Millisecond || c > 26*time.Millisecond {
		t.Errorf("two-tier correction %v, want ≈ 25 ms", c)
	}
	if c := n.viaCorrection("cloud"); c != 0 {
		t.Errorf("the two-tier correction leaked into the servers': %v", c)
	}
}
