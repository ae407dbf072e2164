package health

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the registry as Prometheus gauges, evaluated from one snapshot per
// scrape so that metrics agree with the probes:
//
//	gangway_health_check_ok{check}          1 when the check passes every probe it gates
//	gangway_health_check_status{check,status} 1 for the check's current status
//	gangway_health_probe_ok{probe}          1 when the probe passes
//
// Register it on a prometheus.Registry owned by the process.
type Collector struct {
	reg *Registry

	checkOK, checkStatus, probeOK *prometheus.Desc
}

// NewCollector returns a collector for r.
func NewCollector(r *Registry) *Collector {
	return &Collector{
		reg: r,
		checkOK: prometheus.NewDesc("gangway_health_check_ok",
			"1 when the check passes every probe it gates, 0 otherwise.", []string{"check"}, nil),
		checkStatus: prometheus.NewDesc("gangway_health_check_status",
			"1 for the check's current lifecycle status.", []string{"check", "status"}, nil),
		probeOK: prometheus.NewDesc("gangway_health_probe_ok",
			"1 when the probe (startup, readiness, liveness, container) passes.", []string{"probe"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.checkOK
	ch <- c.checkStatus
	ch <- c.probeOK
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.reg.Snapshot()
	failing := snap.failing()
	for _, p := range []Probe{Startup, Readiness, Liveness} {
		ch <- prometheus.MustNewConstMetric(c.probeOK, prometheus.GaugeValue, b2f(snap.Evaluate(p).OK), p.String())
	}
	// Container gates no check of its own, so it only has its probe gauge.
	ch <- prometheus.MustNewConstMetric(c.probeOK, prometheus.GaugeValue, b2f(snap.Evaluate(Container).OK), Container.String())
	for _, rec := range snap.Records {
		ch <- prometheus.MustNewConstMetric(c.checkOK, prometheus.GaugeValue, b2f(!failing[rec.Name]), rec.Name)
		for _, st := range []Status{Starting, Running, Terminating} {
			ch <- prometheus.MustNewConstMetric(c.checkStatus, prometheus.GaugeValue, b2f(rec.Status == st), rec.Name, st.String())
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// failing names the checks that fail a probe they gate: the checks whose
// gangway_health_check_ok and /status "ok" are false.
func (s Snapshot) failing() map[string]bool {
	failing := map[string]bool{}
	for _, p := range []Probe{Startup, Readiness, Liveness} {
		for _, cr := range s.Evaluate(p).Checks {
			if !cr.OK {
				failing[cr.Name] = true
			}
		}
	}
	return failing
}
