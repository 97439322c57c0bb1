// Package scheduler decides where a model is split: which cut, which tensor
// codec and which cloud node minimise the predicted end-to-end latency of one
// request, given the model's per-node profiles, link estimates and cloud load.
//
// # Cost model
//
// For a split whose head runs on the edge and whose tail runs on a cloud node
// the predicted latency is
//
//	edge_compute(head) + encode + wire_bytes/uplink + RTT/2
//	  + queue + cloud_compute(tail) + decode + result/downlink + RTT/2
//
// where encode and decode are raw boundary bytes divided by the codec's
// throughput, wire_bytes are raw bytes divided by the codec's ratio, result
// is the model output (sent back uncompressed), and queue is the cloud's
// advertised queueing delay. Edge-only plans cost edge_compute(all) and
// nothing else. Every term is in [Breakdown].
//
// # Objectives and the power model
//
// [Inputs.Objective] says what every policy minimises: latency (the
// default, the cost model above), the edge device's energy, or seconds +
// [Inputs.EnergyWeight] × joules (weighted; default [DefaultEnergyWeight],
// 0.1 s per joule). Energy comes from [Inputs.Power], a [PowerModel]:
//
//	compute = ComputeW × (overhead + edge_compute + encode)
//	radio   = (α_u·up_Mbps + β) × uplink + (α_d·down_Mbps + β) × downlink
//	tail    = TailMW × (RTT + queue + cloud_compute + decode + min(Tail, Interval))
//
// the radio model and its 3G, LTE and Wi-Fi numbers being Huang et al.'s
// (MobiSys 2012), kept with the link profiles in internal/linkprofile
// ([RadioFor]); the radio waits at its tail power from the end of the
// upload until the result arrives and then for its RRC tail, cut short by
// the device's next request (Interval). [DeviceComputeW] gives ComputeW per
// device profile. Every plan carries its [EnergyBreakdown] ([Plan.Energy]).
// Each term is linear in the time spent in one state, so the prefix scan,
// the DADS min cut (each capacity becomes the objective's price of its
// term) and Auto's hysteresis ([Inputs.Score]) obey any objective exactly;
// the latency objective compares integer totals as before. A node sets
// Inputs.Objective, Inputs.Power and Inputs.EnergyWeight to plan under it.
//
// # Burst-aware links
//
// On a cellular link a short burst gets less bandwidth than a long flow
// (CellReplay, NSDI 2025). A [LinkEstimate] with an UpCurve or DownCurve
// ([TransferCurve], built from a CellReplay trace by [CurveFromCellReplay])
// prices a transfer of n bytes as the curve's Time(n) instead of n ÷ rate:
// the light trains' mean packet arrival offsets for a short burst, the
// long-flow rate past them, so the effective bandwidth grows with the
// transfer's size. Prefix scans stay exact; DADS prices each tensor as a
// burst of its own (see buildDADSWeighted).
//
// # Accuracy budget
//
// No plan may buy latency with wrong answers. Every [CodecModel] has a
// [Fidelity]: exact codecs (lossless) may carry any boundary; bounded ones
// (fp16-class, relative error bounded by construction) any boundary under a
// non-zero budget unless calibration saw them change an answer there and
// cannot certify them; lossy ones (integer quantisers) only the prefix cuts
// K whose calibration (CutAgreement[K]: top-1 agreement with the unsplit
// model over real inputs) certifies them: the one-sided Wilson lower bound
// of the agreement at [AccuracyBudget.Conf] confidence must be ≥ 1 -
// [AccuracyBudget.Loss] (default 99.9 % at 95 %, so 20 agreeing samples, a
// bound of 88 %, certify nothing; about 2 700 are needed). A node-set (DAG)
// split takes the calibration of the prefix cut that sends the same tensors,
// since the answer depends only on which tensors went through the codec; one
// that sends a combination never calibrated may use exact and bounded codecs
// only. Every policy obeys the budget ([Inputs.Accuracy]); [Plan.Accuracy]
// says what the chosen plan risks, and [Inputs.Evaluate] fails with
// [ErrAccuracy] for a plan the budget no longer allows, so [Auto] leaves it
// at once.
//
// # Policies
//
// A [Policy] turns [Inputs] into a [Plan]. [ParsePolicy] understands
// "edge-only", "cloud-only", "fixed:K", "neurosurgeon" (scan of the cuts whose
// boundary is a single tensor, Kang et al., ASPLOS 2017), "dads" (a minimum
// s–t cut over the model DAG, Hu et al., INFOCOM 2019, so that cuts inside
// residual blocks are found) and "auto" (the best of those, codec and cloud
// chosen jointly, with hysteresis). [Explain] tabulates the predicted latency
// of every cut × codec × cloud for `edgesplit plan`.
//
// # DADS construction
//
// The DAG of a model is a set of nodes (operators, in the canonical
// topological order of partition's profile) and tensors (each with one
// producer, or none for a graph input, and its consumers). The flow network
// has a source s standing for the edge device and a sink t for the cloud; a
// node on the s side of the cut runs on the edge, one on the t side on the
// cloud. Its arcs are:
//
//   - s → v with capacity cloud_compute(v) (+ downlink time of any graph output
//     v produces): cut when v runs on the cloud;
//   - v → t with capacity edge_compute(v): cut when v runs on the edge;
//   - for every tensor x an auxiliary vertex a(x), producer(x) → a(x) (s → a(x)
//     for a graph input) with capacity encode+transfer+decode of x, and
//     a(x) → c with infinite capacity for each consumer c, so a tensor read by
//     several cloud nodes is paid for once (the DADS paper's auxiliary-vertex
//     trick for multi-successor vertices; a tensor with one reader gets a
//     direct producer → reader arc instead);
//   - c → producer(x) with infinite capacity, so the edge side is closed under
//     predecessors: data never flows back from the cloud to the edge.
//
// The capacity of a cut is then exactly the additive part of the cost model;
// the constant part (RTT and queue, paid once if anything is offloaded) is
// added afterwards and the result compared with edge-only, which makes the
// choice exact. The max-flow is Dinic's algorithm; the edge side is the set
// of vertices reachable from s in the residual network (the minimal one).
// The edge side need not be a prefix of the canonical order; then
// [Plan.K] is -1 and [Plan.Head] lists the edge nodes.
//
// # Estimators
//
// [EdgeLearner] is the edge's one link-learning core (RTT, uplink per
// cloud and access link, overhead, codec ratios, probe timing and target),
// clock-injected and I/O-free, used as it is by node (real transfers) and
// sim (simulated events); [EWMA] smooths a series; [BanList] keeps failed
// clouds out of the plan for an exponentially growing backoff (15 s first,
// as Petals does), and suspected ones (a hedge overtook them) for a moment,
// without a ban.
//
// Planning is pure computation: a decision takes microseconds and allocates
// little; [Auto] and [BanList] are safe for concurrent use (EdgeLearner is
// not: its owner locks it), and so are the policies without state.
package scheduler
