// Package sim is a discrete-event simulator of split inference at scale:
// thousands of edge devices with their radio links (fixed profiles, Mahimahi
// traces, or a shared cell whose uplink is divided among active flows), a
// backhaul, and cloud servers with queues, N workers and optional batching.
// Each device plans every request with the real scheduler package's policies,
// fed with the estimates the simulated world exposes (sampled every
// estimation interval, delayed by a lag, perturbed by noise; or learned by
// each device from its own transfers and probes, as a node does) — the same cost
// model the nodes run — and an oracle with perfect knowledge measures regret.
//
// A run is described by a Scenario (YAML, see docs/scenarios/), is seeded
// (math/rand/v2 PCG) and single-threaded: the same scenario and seed give
// the same per-request CSV byte for byte. Run returns a Summary (mean, p50,
// p95, p99 latency, throughput, SLO hit rate, cloud utilisation, edge energy).
//
// # Timing model
//
// Times are integer nanoseconds. Requests arrive at each device by a Poisson
// process, periodically (video frames), from a trace of times, or closed-loop
// (the next one a think time after the previous answer, as a benchmark
// client sends them). A request arrives at its device, waits for
// the device's processor (FIFO) and runs the head; the boundary is encoded
// (raw bytes ÷ codec encode throughput) and sent: on a fixed link at the
// configured rate × (1 − loss) after the device's previous transfer; on a
// Mahimahi trace one 1500-byte packet per delivery opportunity (the trace
// loops; each device starts at a random phase); in a cell by egalitarian
// processor sharing of the cell's uplink among the flows in progress. One-way
// propagation is the link delay plus the backhaul delay, and the backhaul adds
// bytes ÷ its rate (no contention). The cloud server queues requests FIFO for
// its workers; a batch of b requests (batching on) takes the longest
// request's service time plus Scale × the others'. The result returns over
// the downlink at the link's (or cell's) down rate. Cloud compute is the
// model's tail on the cloud profile × the cloud's slowdown; edge compute the
// head × the device's slowdown. A scenario's synthetic models are the zoo's
// real graphs (their static profiles: nodes, bytes, MACs, cuts) with
// latencies of partition's analytic reference device (SyntheticModel); any
// other profile, such as one the engine measured, comes from a file or
// Config.Resolve.
//
// # Accuracy
//
// Planners obey the same accuracy budget as nodes (scheduler.AccuracyBudget;
// max_accuracy_loss, default 0.1 % at 95 % confidence): a codec declared
// exact (raw, lossless) or bounded (fast, fp16) may carry any cut, a lossy
// one only a cut where its calibration — an agreement count in the scenario
// (agreement, cut_agreement) or a model's calibration table (the file
// `edgesplit codec bench --write-calibration` or a node writes) — certifies
// the budget by its lower confidence bound. An uncalibrated lossy codec is
// never planned. The Summary counts the requests a lossy codec carried and
// the lowest agreement bound any of them was planned with.
//
// # Power model
//
// Energy is the scheduler's power model (scheduler.PowerModel, one source
// for planners and accounting): each request is charged ComputeW × its
// head's compute and encode time, the radio's (α·Mbit/s + β) while it sent
// and while it received the result, at the rates it actually got, and the
// radio's tail power while it waited for the result and for min(tail,
// interval) after it (Huang et al., MobiSys 2012; the 3G, LTE and Wi-Fi
// numbers live with the link profiles in internal/linkprofile, 5G uses
// LTE's). A class's power (Power) defaults to the phone's 2 W, the radio of
// its link profile (LTE's otherwise) and, as interval, its mean time
// between arrivals. The scenario's objective (latency, energy, weighted)
// is what its planners minimise; energy_mj in the CSV and the Summary's
// split (compute, radio, tail) report what they spent.
//
// # Estimates and the oracle
//
// Every Estimation.Interval the world samples, per cell, the number of flows
// in progress and, per cloud server, its backlog (queued work ÷ workers). A
// device planning at time t sees the sample taken at t − Lag: cell uplink
// capacity ÷ (flows + 1), a trace's mean rate over the Window before t − Lag,
// a fixed link's rate, each multiplied by (1 + Noise·N(0,1)) (at least 5 %).
// A device re-plans when a new sample is available (not per request) so that
// planning stays off the per-request path; when a class's policy is
// stateless and its estimates are the same for all its devices (no noise,
// no trace), the plan is made once per class and sample. The "oracle"
// policy plans every request on the exact current state; with Regret on,
// every request is also scored against the oracle's choice (both predicted
// on the exact state), which costs a full planning per request.
//
// With Estimation.Source "learned" a device knows its link only from its
// own traffic, by the learning core an edge node uses (scheduler.EdgeLearner,
// fed through DeviceLearner): the uplink from each transfer's airtime, the
// downlink from each result's, weighted by airtime (Noise then perturbs each
// sample); the RTT the median of the last three of its pings (one each
// scheduler.PingInterval) and transfers; the link's rates at time 0 until
// the first sample. While it plans edge-only it sends probes
// (one at a time, sized to its estimate, through its link or cell like any
// transfer; they count in Summary.Probes, not in the CSV). It re-plans after
// every sample. Cloud backlogs are still sampled with Interval and Lag. Not
// modelled: learning from a transfer still in flight (a node's deadline
// does), so after a deep drop a device learns only as its slow transfers
// complete.
//
// # Links
//
// A device's own link is a named profile (LinkProfileNamed: the table
// transport/linkem builds its emulated links from, internal/linkprofile, at
// its mean rates), explicit rates, a schedule of such
// phases over time (a transfer runs at the rate of the phase it starts in),
// or a Mahimahi trace. Random loss on a fixed link reduces its goodput to
// rate × (1 − loss); traces and cells have no loss. A CellReplay link
// (LinkSpec.CellReplay, NSDI 2025's burst-aware traces, internal/cellreplay)
// replays each transfer as a burst on an idle link: the base delay of that
// moment (it varies over the trace), the light train's delivery
// opportunities for its first packets, the heavy trace's for the rest;
// planners see the base delay at t − lag and the heavy trace's mean rate,
// and price transfers with the traces' mean transfer curve (model "burst",
// scheduler.TransferCurve) or bytes ÷ rate (model "plain"). A transfer
// that starts the moment the previous one ends starts a new light train
// (CellReplay would keep the heavy phase); learned estimation is not
// modelled on such a link. A cell's downlink is not
// shared (results are small).
//
// Not modelled: cloud failures and retries, uplink contention between a
// device's own link and the cell; the radio tail is the model's
// min(tail, interval), not each device's actual next transfer.
//
// # Generation
//
// SimulateGeneration runs one token-by-token generation of a causal
// language model (a GenerationProfile: gpt-tiny or a GPT-2-small-class
// config, the edge's slowdown a parameter) over a GenerationLink (fixed
// rates and RTT, or Mahimahi traces), event by event: the prompt's prefill
// (the device's blocks, the window's hidden state up, the cloud's blocks,
// key/value caches across when the prefill and decode cuts differ, the
// token down), then one call per token (one hidden state up), prefilling
// again where lm.Start's window jumps. Its costs are analytic
// (partition.AnalyticGPTPrefill, AnalyticGPTStep on the reference device:
// attention grows with the sequence); the policies (edge-only, cloud-only,
// the best single cut, a split that keeps the tokens on the device, auto)
// plan with scheduler.PlanGeneration, whose prediction the simulation
// matches on a fixed link while the window does not jump. It reports the
// time to the first token, tokens/s after it and bytes per token.
package sim
