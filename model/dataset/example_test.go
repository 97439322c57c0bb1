package dataset_test

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"

	"github.com/edgesplit/edgesplit/model/dataset"
)

// The preprocessing a model was trained with travels in its sidecar and is
// applied to any image at inference time.
func ExamplePreprocess() {
	p := dataset.MNISTPreprocess()
	b, _ := json.Marshal(p)
	fmt.Println(string(b))

	// Any size and colour model; a light background is inverted to MNIST's
	// light-on-dark.
	img := image.NewRGBA(image.Rect(0, 0, 56, 56))
	for y := 0; y < 56; y++ {
		for x := 0; x < 56; x++ {
			img.Set(x, y, color.RGBA{255, 255, 255, 255})
		}
	}
	x, err := p.Image(img)
	if err != nil {
		panic(err)
	}
	fmt.Println(x.Shape(), x.Data().([]float32)[0])
	// Output:
	// {"grayscale":true,"width":28,"height":28,"auto_invert":true}
	// (1, 1, 28, 28) 0
}
