package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/train"
	"github.com/edgesplit/edgesplit/model/zoo"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func newTrainCmd() *cobra.Command {
	var arch, ds, out, optimizer, corpus string
	var epochs, batch, workers, limit, shift int
	var lr, decay float64
	var flip bool
	var patch int
	var seed uint64
	cmd := &cobra.Command{
		Use:   "train --arch seed-cnn|lenet5|lenet-exits|resnet-exits|vit-tiny|gpt-tiny --dataset mnist|fashion-mnist|DIR (--corpus DIR for gpt-tiny) --epochs N [--batch 32] [--lr] [--seed] --out model.onnx",
		Short: "Train a CNN, a small vision transformer or a small GPT-style language model in Go and write it as ONNX plus a JSON sidecar (preprocessing, labels, accuracy; for a language model its card: held-out perplexity)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			errOut := cmd.ErrOrStderr()
			var bar *progressbar.ProgressBar
			barEpoch := -1
			onTerminal := isTerminal(errOut)
			lastTenth := -1
			cfg := train.Config{
				Arch: arch, Dataset: ds, Epochs: epochs, Batch: batch, LR: lr, LRDecay: decay, Optimizer: optimizer,
				Seed: seed, Workers: workers, Shift: shift, Flip: flip, DatasetOptions: dataset.Options{Seed: seed, Limit: limit},
				Progress: func(p train.Progress) {
					unit := "img/s"
					if train.IsLM(arch) {
						unit = "windows/s"
					}
					desc := fmt.Sprintf("epoch %d/%d loss %.4f acc %.2f%% %.0f %s ETA %v", p.Epoch+1, p.Epochs,
						p.Loss, 100*p.Accuracy, p.ImagesPerSec, unit, p.ETA.Round(time.Second))
					if !onTerminal {
						// Logs and CI: one line per tenth of each epoch.
						tenth := p.Epoch*10 + 10*p.Batch/max(p.Batches, 1)
						if tenth != lastTenth {
							lastTenth = tenth
							fmt.Fprintf(errOut, "%s (%d/%d batches)\n", desc, p.Batch, p.Batches)
						}
						return
					}
					if bar == nil || barEpoch != p.Epoch {
						if bar != nil {
							_ = bar.Finish()
						}
						barEpoch = p.Epoch
						bar = progressbar.NewOptions(p.Batches, progressbar.OptionSetWriter(errOut),
							progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true), progressbar.OptionFullWidth(),
							progressbar.OptionOnCompletion(func() { fmt.Fprintln(errOut) }))
					}
					bar.Describe(desc)
					_ = bar.Set(p.Batch)
				},
			}
			if train.IsLM(arch) {
				if !cmd.Flags().Changed("lr-decay") {
					decay = 0.8
				}
				res, err := train.RunLM(cmd.Context(), train.LMConfig{Arch: arch, Corpus: corpus, Epochs: epochs, Batch: batch,
					LR: lr, LRDecay: decay, Seed: seed, Workers: workers, Limit: limit, Progress: cfg.Progress})
				if bar != nil {
					_ = bar.Finish()
				}
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				for _, e := range res.Epochs {
					fmt.Fprintf(w, "epoch %d: loss %.4f nats/token, next-token accuracy %.2f%%, %.0f windows/s, %v\n",
						e.Epoch+1, e.Loss, 100*e.Accuracy, e.ImagesPerSec, e.Duration.Round(time.Millisecond))
				}
				c := res.Card
				fmt.Fprintf(w, "held-out perplexity %.3f over %d tokens (%d training tokens, %d parameters)\n",
					c.HeldPerplexity, c.HeldScored, c.TrainTokens, c.Params)
				if err := res.Save(out); err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %s and %s\n", out, train.LMCardPath(out))
				return nil
			}
			if cmd.Flags().Changed("patch") {
				if arch != "vit-tiny" {
					return fmt.Errorf("--patch applies to --arch vit-tiny, not %s", arch)
				}
				c := zoo.ViTTinyConfig
				c.Patch = patch
				if patch < 1 || c.Size%patch != 0 {
					return fmt.Errorf("--patch %d: want a divisor of the %d-pixel image side (7: 16 tokens, 4: 49)", patch, c.Size)
				}
				g, err := zoo.BuildViT(fmt.Sprintf("vit-tiny-p%d", patch), c, seed)
				if err != nil {
					return err
				}
				cfg.Graph = g
			}
			if limit > 0 && (ds == "mnist" || ds == "fashion-mnist") {
				fmt.Fprintf(errOut, "--limit %d: training on at most %d images and testing on at most %d (a sixth, as the data set's split)\n",
					limit, limit, max(limit/6, 1))
			}
			res, err := train.Run(cmd.Context(), cfg)
			if bar != nil {
				_ = bar.Finish()
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, e := range res.Epochs {
				fmt.Fprintf(w, "epoch %d: loss %.4f, train accuracy %.2f%%, %.0f images/s, %v\n",
					e.Epoch+1, e.Loss, 100*e.Accuracy, e.ImagesPerSec, e.Duration.Round(time.Millisecond))
			}
			if len(res.Skipped) > 0 {
				fmt.Fprintf(w, "skipped %d unusable files, e.g. %+v\n", len(res.Skipped), res.Skipped[0])
			}
			if err := res.Test.Format(w, res.Sidecar.Labels); err != nil {
				return err
			}
			if err := res.Save(out); err != nil {
				return err
			}
			fmt.Fprintf(w, "wrote %s and %s\n", out, dataset.SidecarPath(out))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&arch, "arch", "seed-cnn", "architecture: seed-cnn, lenet5, lenet-exits, resnet-exits, vit-tiny, gpt-tiny (a character language model)")
	f.StringVar(&corpus, "corpus", lm.DefaultCorpus, "gpt-tiny: a folder of fortune files (Debian package fortunes); every 20th entry is held out")
	f.StringVar(&ds, "dataset", "mnist", "mnist, fashion-mnist, or a folder with one sub-folder of images per class")
	f.IntVar(&epochs, "epochs", 3, "epochs")
	f.IntVar(&batch, "batch", 32, "mini-batch size")
	f.Float64Var(&lr, "lr", 0, "learning rate (default: the optimiser's, 0.001 for Adam)")
	f.Float64Var(&decay, "lr-decay", 0.3, "learning-rate factor per epoch (step decay; 1 = constant)")
	f.StringVar(&optimizer, "optimizer", "adam", "adam or sgd (momentum 0.9)")
	f.Uint64Var(&seed, "seed", 1, "seed for weights, shuffling and the data split")
	f.IntVar(&workers, "workers", 2, "goroutines per mini-batch")
	f.IntVar(&shift, "shift", 0, "augment training images with random translations of up to this many pixels (0 = none)")
	f.IntVar(&patch, "patch", 7, "vit-tiny: the patches' side in pixels (7: 16 tokens; 4: 49 tokens, about 3.5× the compute per image)")
	f.BoolVar(&flip, "flip", false, "augment training images with random left-right mirroring (not for digits)")
	f.IntVar(&limit, "limit", 0, "use at most this many training images, and for mnist/fashion-mnist a sixth as many test images; for gpt-tiny this many training tokens (0 = all)")
	f.StringVar(&out, "out", "model.onnx", "output ONNX file (the sidecar goes beside it as .json)")
	return cmd
}

func newEvalCmd() *cobra.Command {
	var modelPath, ds string
	var threshold float64
	var workers int
	cmd := &cobra.Command{
		Use:   "eval --model M.onnx --dataset mnist",
		Short: "Evaluate a model on a dataset's test split: accuracy, confusion matrix, and per-exit figures for multi-exit models",
		RunE: func(cmd *cobra.Command, _ []string) error {
			g, sc, err := loadModel(modelPath)
			if err != nil {
				return err
			}
			opts := dataset.Options{}
			if sc != nil {
				opts.Preprocess = &sc.Preprocess
			}
			data, err := dataset.Load(cmd.Context(), ds, opts)
			if err != nil {
				return err
			}
			ev, err := train.EvaluateGraph(cmd.Context(), g, data.Test, workers, threshold)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "accuracy %.2f%% on %d test images of %s\n", 100*ev.Accuracy, ev.N, ds)
			if untrainedZoo(modelPath) {
				fmt.Fprintf(w, "note: %s is a zoo architecture with seeded random weights, not trained: chance accuracy is expected (train one with `edgesplit train --arch NAME`, or use %s)\n", modelPath, trainedName)
			}
			return ev.Format(w, data.Classes)
		},
	}
	cmd.Flags().StringVar(&modelPath, "model", "", modelFlagHelp)
	cmd.Flags().StringVar(&ds, "dataset", "mnist", "mnist, fashion-mnist or an image folder")
	cmd.Flags().Float64Var(&threshold, "threshold", 0.5, "early-exit entropy threshold in nats (multi-exit models)")
	cmd.Flags().IntVar(&workers, "workers", 2, "goroutines")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}

// untrainedZoo reports whether spec names a zoo architecture (random
// seeded weights) rather than a file or the embedded trained model.
func untrainedZoo(spec string) bool {
	if spec == trainedName || strings.HasSuffix(spec, ".onnx") {
		return false
	}
	_, err := os.Stat(spec)
	return err != nil
}
