package node

import "github.com/prometheus/client_golang/prometheus"

// metrics are a node's Prometheus collectors, registered on its own
// registry (no global state).
type metrics struct {
	requests     *prometheus.CounterVec   // outcome: offloaded, edge, fallback-local, retried, error
	latency      *prometheus.HistogramVec // stage: total, edge, transfer, cloud
	bytesSent    prometheus.Counter
	segments     *prometheus.CounterVec // served by a cloud: code
	segmentTime  prometheus.Histogram
	queueDepth   prometheus.Gauge
	cut          prometheus.Gauge
	clusterNodes *prometheus.GaugeVec   // role, alive
	accuracy     *prometheus.GaugeVec   // model: lower bound on agreement of the last plan
	codecs       *prometheus.CounterVec // codec, fidelity
	refusals     *prometheus.CounterVec // reason: unauthenticated, forbidden, rate_limited, overloaded, wrong_role, untrusted_peer, gossip_key, name_conflict
	hedges       *prometheus.CounterVec // winner: primary, backup
	failed       *prometheus.CounterVec // API requests answered with an error: status
	bans         *prometheus.CounterVec // clouds banned after a failed offload: cloud
	viaFallbacks prometheus.Counter     // an edge server ran a three-tier plan's cloud piece itself
}

func newMetrics(reg *prometheus.Registry, node string) *metrics {
	labels := prometheus.Labels{"node": node}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgesplit_requests_total", Help: "Inference requests handled by this edge, by outcome.", ConstLabels: labels,
		}, []string{"outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "edgesplit_request_seconds", Help: "Measured latency of inference requests, by stage.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"stage"}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgesplit_boundary_bytes_sent_total", Help: "Encoded boundary bytes sent to clouds.", ConstLabels: labels,
		}),
		segments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgesplit_segments_served_total", Help: "Segments run for edges, by result code.", ConstLabels: labels,
		}, []string{"code"}),
		segmentTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "edgesplit_segment_seconds", Help: "Time to run a served segment (queue excluded).", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgesplit_queue_depth", Help: "Segments waiting for a worker.", ConstLabels: labels,
		}),
		cut: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgesplit_last_cut", Help: "Cut position of the last plan (-1: a DAG cut).", ConstLabels: labels,
		}),
		clusterNodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edgesplit_cluster_nodes", Help: "Peers seen through gossip, by role and liveness.", ConstLabels: labels,
		}, []string{"role", "alive"}),
	}
	m.accuracy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "edgesplit_plan_agreement_lower", ConstLabels: labels,
		Help: "Lower confidence bound on top-1 agreement with the unsplit model of the last plan that ran (1: exact), by model.",
	}, []string{"model"})
	m.codecs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgesplit_requests_by_codec_total", ConstLabels: labels,
		Help: "Answered requests by the codec of the plan that ran (none: edge-only) and its fidelity (exact, bounded, lossy).",
	}, []string{"codec", "fidelity"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgesplit_api_refusals_total", ConstLabels: labels,
		Help: "Requests and peers refused before any work, by reason: API clients (unauthenticated, forbidden, rate_limited, overloaded), QUIC peers (wrong_role, untrusted_peer), gossip (gossip_key, name_conflict).",
	}, []string{"reason"})
	m.hedges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgesplit_hedged_offloads_total", ConstLabels: labels,
		Help: "Offloads sent to a second cloud because the first had not answered by the hedge point, by which answered first.",
	}, []string{"winner"})
	m.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgesplit_api_errors_total", ConstLabels: labels,
		Help: "Inference requests that got an error, by HTTP status: 400 bad input, 404 unknown model, 413 too large, 504 deadline passed, 500 the cluster failed (refusals are in edgesplit_api_refusals_total).",
	}, []string{"status"})
	m.bans = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgesplit_cloud_bans_total", ConstLabels: labels,
		Help: "Times a cloud was banned from plans after a failed offload, by cloud.",
	}, []string{"cloud"})
	m.viaFallbacks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edgesplit_via_fallbacks_total", ConstLabels: labels,
		Help: "Three-tier requests whose cloud failed, so this edge server ran the cloud's piece itself.",
	})
	reg.MustRegister(m.viaFallbacks, m.failed, m.bans, m.hedges, m.refusals, m.requests, m.latency, m.bytesSent, m.segments, m.segmentTime, m.queueDepth, m.cut, m.clusterNodes, m.accuracy, m.codecs)
	return m
}
