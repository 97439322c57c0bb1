package train

import (
	"fmt"
	"testing"

	"github.com/edgesplit/edgesplit/model/zoo"
)

// BenchmarkSeedCNNStep times one training step (batch 32, Adam) of seed-cnn
// with 1 and 2 workers and reports images/s.
func BenchmarkSeedCNNStep(b *testing.B) {
	sp := mnistSubset(b, 320)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			net, err := New(zoo.SeedCNN(1))
			if err != nil {
				b.Fatal(err)
			}
			tr, err := NewTrainer(net, Options{Workers: workers, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			x := sp.Train.Images[:32*784]
			labels := sp.Train.Labels[:32]
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := tr.Step(x, labels); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(32*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
