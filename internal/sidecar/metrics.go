package sidecar

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gangway-ecs/gangway/internal/version"
)

// processMetrics are the series of `proxy run` itself, beside the data plane's
// (internal/proxy) and the health model's (internal/health):
//
//	gangway_build_info{version,commit,go_version}  always 1; the binary's version
//	gangway_config_reloads_rejected_total          reloads rejected (parse, validation, apply)
//	gangway_config_last_reload_successful          1 when the file's version is the serving one
//
// The last two are what Prometheus and Alertmanager call their own reload series, so that
// one alert rule shape fits all three.
type processMetrics struct {
	rejected prometheus.Counter
	current  prometheus.Gauge
}

func newProcessMetrics(reg prometheus.Registerer) *processMetrics {
	m := &processMetrics{
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gangway_config_reloads_rejected_total",
			Help: "Configuration reloads rejected (the file does not parse, validate or apply); the last good configuration keeps serving.",
		}),
		current: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gangway_config_last_reload_successful",
			Help: "1 when the configuration file's version is the one serving; 0 after a rejected reload, until a reload succeeds.",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "gangway_build_info",
		Help:        "Always 1; labelled with the binary's version, commit and Go version.",
		ConstLabels: prometheus.Labels{"version": version.String(), "commit": version.Revision(), "go_version": runtime.Version()},
	})
	build.Set(1)
	m.current.Set(1) // the process starts only on a configuration that built
	reg.MustRegister(m.rejected, m.current, build)
	return m
}
