package main

import (
	"fmt"

	"github.com/edgesplit/edgesplit/model/dataset"
	"github.com/edgesplit/edgesplit/model/ocr"
	"github.com/spf13/cobra"
)

func newOCRCmd() *cobra.Command {
	def := ocr.CachedConfig()
	cfg := def
	var boxes, line bool
	cmd := &cobra.Command{
		Use:   "ocr [--boxes] [--line] img.png...",
		Short: "Read the text in images with PP-OCRv4 (detect lines, crop, recognise) on edgesplit's engine",
		Long: "Reads the text in each image: the PP-OCRv4 detector finds the text lines, each is cropped and read by the\n" +
			"recogniser, and the CTC output is decoded with ppocr_keys_v1.txt. One line of output per text line (with\n" +
			"--boxes: x0,y0,x1,y1, score, text, tab-separated). The models default to those scripts/fetch-models.sh caches.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if line {
				cfg.Det = ""
			}
			p, err := ocr.New(cfg)
			if err != nil {
				return err
			}
			defer p.Close()
			out := cmd.OutOrStdout()
			for _, path := range args {
				img, err := dataset.DecodeImage(path)
				if err != nil {
					return err
				}
				var lines []ocr.Line
				if line {
					l, err := p.ReadLine(cmd.Context(), img)
					if err != nil {
						return fmt.Errorf("%s: %w", path, err)
					}
					lines = []ocr.Line{l}
				} else if lines, err = p.Read(cmd.Context(), img); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				if len(args) > 1 {
					fmt.Fprintf(out, "# %s\n", path)
				}
				for _, l := range lines {
					if boxes {
						b := l.Box
						fmt.Fprintf(out, "%d,%d,%d,%d\t%.3f\t%s\n", b.Min.X, b.Min.Y, b.Max.X, b.Max.Y, l.Score, l.Text)
					} else {
						fmt.Fprintln(out, l.Text)
					}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Det, "det", def.Det, "text detector (ONNX)")
	f.StringVar(&cfg.Rec, "rec", def.Rec, "text recogniser (ONNX)")
	f.StringVar(&cfg.Keys, "keys", def.Keys, "the recogniser's alphabet, one entry per line")
	f.IntVar(&cfg.Threads, "threads", 1, "intra-op threads")
	f.IntVar(&cfg.Detect.MaxSide, "max-side", 960, "scale images down so that the longer side is at most this for detection")
	f.BoolVar(&boxes, "boxes", false, "print each line's box and score too")
	f.BoolVar(&line, "line", false, "treat each image as one text line (no detection)")
	return cmd
}
