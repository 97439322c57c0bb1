// Command mkinput writes a seeded uniform [0,1) float32 tensor
// (model.UniformTensor) as .npy, for benchmark scripts that feed the same
// input to edgesplit and a reference runtime.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"

	"github.com/edgesplit/edgesplit/model"
	"github.com/edgesplit/edgesplit/model/npy"
)

func main() {
	shapeFlag := flag.String("shape", "1,3,224,224", "comma-separated shape")
	out := flag.String("out", "x.npy", "output file")
	seed := flag.Uint64("seed", 1, "PCG seed")
	flag.Parse()
	var shape []int
	n := 1
	for _, f := range strings.Split(*shapeFlag, ",") {
		d, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			log.Fatalf("mkinput: bad -shape %q", *shapeFlag)
		}
		if n > model.MaxTensorElements/d {
			log.Fatalf("mkinput: shape %s has more than %d elements", *shapeFlag, model.MaxTensorElements)
		}
		shape = append(shape, d)
		n *= d
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	if err := npy.Write(f, model.UniformTensor(shape, *seed)); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(*out)
}
