// Package lm runs causal language models on the engine: the character
// tokenizer their graphs are trained with (printable ASCII, newline and an
// unknown token), a reader for text corpora in the fortune(6) format (the
// Debian fortunes packages), held-out perplexity, and greedy generation
// token by token. A model is any graph shaped like zoo's GPTs: one input of
// 1×Context×Vocab one-hot rows and one output of 1×Context×Vocab next-token
// probabilities, causal (position t sees positions ≤ t only).
package lm
