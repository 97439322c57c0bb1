package plotaxis

import "testing"

func TestTicks125(t *testing.T) {
	var labels []string
	for _, tk := range (Ticks125{}).Ticks(0.5, 30) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	want := []string{"0.5", "1", "2", "5", "10", "20"}
	if len(labels) != len(want) {
		t.Fatalf("labels %v, want %v", labels, want)
	}
	for i := range want {
		if labels[i] != want[i] {
			t.Fatalf("labels %v, want %v", labels, want)
		}
	}
}
