package ocr_test

import (
	"context"
	"fmt"
	"log"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/ocr"
)

// Reading the text of an image with the models scripts/fetch-models.sh
// caches (not run: it needs them).
func Example() {
	p, err := ocr.New(ocr.CachedConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	img, err := dataset.DecodeImage("page.png")
	if err != nil {
		log.Fatal(err)
	}
	lines, err := p.Read(context.Background(), img)
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range lines {
		fmt.Printf("%v %.2f %s\n", l.Box, l.Score, l.Text)
	}
}
