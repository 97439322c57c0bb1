package lm_test

import (
	"context"
	"fmt"
	"log"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/lm"
	"github.com/edgesplit/edgesplit/model/zoo"
)

func ExampleEncode() {
	ids := lm.Encode("Hi!\n")
	fmt.Println(ids, lm.Decode(ids) == "Hi!\n")
	fmt.Println(lm.Decode(lm.Encode("naïve")))
	// Output:
	// [40 73 1 95] true
	// na�ve
}

// A language model from the zoo (gpt-tiny: untrained weights here; `edgesplit
// train --arch gpt-tiny` trains one) scores a text and extends a prompt.
func ExampleModel() {
	m, err := lm.New(zoo.GPTTiny(1), model.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	text := lm.Stream([]string{"A journey of a thousand miles begins with a single step.", "Know thyself."})
	ppl, scored, err := m.Perplexity(ctx, text)
	if err != nil {
		log.Fatal(err)
	}
	// Untrained, it is about as perplexed as a uniform guess over the
	// vocabulary (97); trained on the fortunes it scores about 5.
	fmt.Printf("context %d, %d tokens scored, perplexity near uniform: %v\n",
		m.Context(), scored, ppl > lm.VocabSize/2 && ppl < 2*lm.VocabSize)
	out, err := m.Generate(ctx, lm.Encode("Know "), 10, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(out), "tokens generated")
	// Output:
	// context 64, 64 tokens scored, perplexity near uniform: true
	// 10 tokens generated
}
