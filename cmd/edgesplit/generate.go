package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/train"
	"github.com/spf13/cobra"
)

func newGenerateCmd() *cobra.Command {
	var modelPath, prompt, corpus string
	var n, threads, holdEvery int
	cmd := &cobra.Command{
		Use:   "generate --model gpt.onnx --prompt TEXT [-n 200] [--perplexity-corpus DIR]",
		Short: "Continue a prompt with a causal language model (greedy decoding on the engine, tokens printed as they come); optionally its held-out perplexity",
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	f.StringVar(&modelPath, "model", "", "a causal language model (ONNX, e.g. from `edgesplit train --arch gpt-tiny`)")
	f.StringVar(&prompt, "prompt", "", "text to continue (printable ASCII and newlines; other characters become the unknown token)")
	f.IntVarP(&n, "tokens", "n", 200, "tokens (characters) to generate")
	f.IntVar(&threads, "threads", 1, "intra-op threads")
	f.StringVar(&corpus, "perplexity-corpus", "", "also measure the perplexity on the held-out entries of this fortune folder")
	f.IntVar(&holdEvery, "hold-every", 20, "with --perplexity-corpus: the held-out entries are every N-th (default: as the model's .lm.json card says `edgesplit train` held them, else 20)")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}
