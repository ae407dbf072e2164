package proxy

import "github.com/prometheus/client_golang/prometheus"

// metrics are the data plane's Prometheus series:
//
//	gangway_http_requests_total{route,cluster,code}        finished requests by status class
//	gangway_http_unrouted_requests_total                    requests that matched no route (404)
//	gangway_upstream_request_duration_seconds{cluster}      time to upstream response headers
//	gangway_upstream_connect_failures_total{cluster}        failed upstream connects
//	gangway_upstream_ejections_total{cluster}               outlier ejections
//	gangway_upstream_endpoint_healthy{cluster,endpoint}     1 when the endpoint takes traffic
//	gangway_upstream_endpoints{cluster,state}               healthy and total endpoints
//	gangway_downstream_connections_active{listener}         open downstream connections
//	gangway_tcp_tunnels_total{listener,cluster}             TCP tunnels opened
//	gangway_listeners_draining                              replaced listeners still draining
//	gangway_http_rejected_requests_total{listener,reason}   request heads refused for their framing
type metrics struct {
	// reg and registered let Close unregister the series, so that a Server built again on
	// the same registry (after a failed Start) can register them.
	reg        prometheus.Registerer
	registered []prometheus.Collector

	requests          *prometheus.CounterVec
	unrouted          prometheus.Counter
	upstreamLatency   *prometheus.HistogramVec
	connectFailures   *prometheus.CounterVec
	ejections         *prometheus.CounterVec
	endpointHealthy   *prometheus.GaugeVec
	clusterEndpoints  *prometheus.GaugeVec
	activeConns       *prometheus.GaugeVec
	tunnels           *prometheus.CounterVec
	drainingListeners prometheus.Gauge
	rejected          *prometheus.CounterVec
}

// statusClasses labels requests by status/100; index 0 is a request aborted before any
// status was written.
var statusClasses = [6]string{"aborted", "1xx", "2xx", "3xx", "4xx", "5xx"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gangway_http_requests_total", Help: "Finished HTTP requests by route, cluster and status class.",
		}, []string{"route", "cluster", "code"}),
		unrouted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gangway_http_unrouted_requests_total", Help: "HTTP requests that matched no route.",
		}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gangway_upstream_request_duration_seconds",
			Help:    "Time from sending a request upstream to its response headers.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"cluster"}),
		connectFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gangway_upstream_connect_failures_total", Help: "Failed connects to upstream endpoints.",
		}, []string{"cluster"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gangway_upstream_ejections_total", Help: "Endpoints ejected by outlier detection.",
		}, []string{"cluster"}),
		endpointHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gangway_upstream_endpoint_healthy", Help: "1 when the endpoint is healthy and not ejected.",
		}, []string{"cluster", "endpoint"}),
		clusterEndpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gangway_upstream_endpoints", Help: "Endpoints of a cluster by state (healthy, total).",
		}, []string{"cluster", "state"}),
		activeConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gangway_downstream_connections_active", Help: "Open downstream connections, WebSockets and TCP tunnels included.",
		}, []string{"listener"}),
		tunnels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gangway_tcp_tunnels_total", Help: "TCP tunnels opened.",
		}, []string{"listener", "cluster"}),
		drainingListeners: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gangway_listeners_draining", Help: "Listeners replaced by a reload that are still draining.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gangway_http_rejected_requests_total", Help: "HTTP/1 request heads refused with 400 for an ambiguous framing (request smuggling).",
		}, []string{"listener", "reason"}),
	}
	m.reg = reg
	for _, c := range []prometheus.Collector{m.requests, m.unrouted, m.upstreamLatency, m.connectFailures, m.ejections,
		m.endpointHealthy, m.clusterEndpoints, m.activeConns, m.tunnels, m.drainingListeners, m.rejected} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return nil, err
		}
		m.registered = append(m.registered, c)
	}
	return m, nil
}

// unregister removes the series from the registry. It is safe to call more than once.
func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}
