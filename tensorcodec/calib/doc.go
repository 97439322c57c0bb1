// Package calib calibrates a model's split points on real inputs: for every
// selected prefix cut and every tensorcodec preset it runs the model's tail
// on the decoded boundary of each calibration input and records how often
// the split answer (top-1 of the last output) equals the unsplit one, the
// largest change of any output probability, the real compression ratio and
// the error introduced, and each preset's encode and decode speed on those
// activations. The result is a [scheduler.Calibration] table, stored beside
// the model so nodes load it instead of recalibrating, from which the
// scheduler's accuracy budget decides which codec may carry which boundary;
// the per-row detail backs `edgesplit codec bench`, and [Variants] measures
// encoder stage combinations (tensorcodec.Variant) the same way.
//
// A calibration is costly (one tail run per cut × non-exact preset × input),
// so exact presets are not run through the tail (their answer is the unsplit
// one by construction), a preset stops being measured at a cut once it has
// changed so many answers that it could no longer be certified above
// [Config.StopBelow], and cuts are spread over the available cores.
package calib
