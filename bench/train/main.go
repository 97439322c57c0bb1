// Command train-bench times one epoch of seed-cnn on MNIST (batch 32, Adam)
// with edgesplit's trainer, for comparison with torch_epoch.py (see run.sh).
//
//	go run ./bench/train -workers 1 -limit 60000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/train"
	"github.com/edgesplit/edgesplit/model/zoo"
)

func main() {
	workers := flag.Int("workers", 1, "worker goroutines (= threads; GOMAXPROCS is set to this)")
	limit := flag.Int("limit", 0, "training images (0 = all 60,000)")
	batch := flag.Int("batch", 32, "batch size")
	flag.Parse()
	runtime.GOMAXPROCS(*workers)
	ctx := context.Background()
	sp, err := dataset.Load(ctx, "mnist", dataset.Options{Limit: *limit, Seed: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	net, err := train.New(zoo.SeedCNN(1))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tr, err := train.NewTrainer(net, train.Options{Batch: *batch, Workers: *workers, Seed: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	start := time.Now()
	st, err := tr.Epoch(ctx, sp.Train, 0, 1, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	el := time.Since(start)
	ev, err := tr.Evaluate(ctx, sp.Test, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("edgesplit threads=%d images=%d epoch_s=%.3f images_per_s=%.0f loss=%.4f test_acc=%.4f\n",
		*workers, sp.Train.Len(), el.Seconds(), float64(sp.Train.Len())/el.Seconds(), st.Loss, ev.Accuracy)
}
