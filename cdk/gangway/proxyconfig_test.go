package gangway

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/budget"
	"github.com/gangway-ecs/gangway/internal/config"
)

// proxyAccepts resolves env with the proxy's own function (what `proxy run` and `proxy
// validate` call) and checks the result the way the stack uses it: a listener the target
// groups reach on port with readiness on ReadyPath, and the probe server where /healthcheck
// dials. It returns "" when the task would start and pass both health checks.
func proxyAccepts(env map[string]string, port int) string {
	cfg, _, err := config.Resolve("", func(k string) string { return env[k] })
	if err != nil {
		return "proxy refuses: " + err.Error()
	}
	served := false
	for _, l := range cfg.Listeners {
		host, p, _ := net.SplitHostPort(l.Address)
		if p == fmt.Sprint(port) && wildcardHost(host) && l.Protocol == config.ProtocolHTTP && l.TLS == nil && l.ReadinessPath == ReadyPath {
			served = true
		}
	}
	if !served {
		return fmt.Sprintf("no http listener on :%d with readiness on %s: %+v", port, ReadyPath, cfg.Listeners)
	}
	probe := DefaultProbeAddr
	if a := env[EnvHealthAddr]; a != "" {
		probe = a // `proxy run` listens there too
	} else if !reaches(cfg.Admin.Address, probe) {
		return fmt.Sprintf("probe server on %s, /healthcheck dials %s", cfg.Admin.Address, probe)
	}
	return ""
}

// sidecarDoc is a proxy configuration for the tests: one listener, one route to the app.
func sidecarDoc(listen, ready, admin string) string {
	doc := fmt.Sprintf(`listeners:
  - name: public
    address: %q
    readiness_path: %q
routes: [{name: app, cluster: app, required: true}]
clusters: [{name: app, endpoints: ["127.0.0.1:80"]}]
`, listen, ready)
	if admin != "" {
		doc += fmt.Sprintf("admin: {address: %q}\n", admin)
	}
	return doc
}

// TestConstructAgreesWithProxy is the contract between the construct and the proxy: for
// each set of props, the construct accepts them exactly when the environment it renders
// into the task definition makes a proxy that starts (config.Resolve, as `proxy run` calls
// it) and serves what the target groups and /healthcheck expect. A refusal names the prop
// and the field.
func TestConstructAgreesWithProxy(t *testing.T) {
	withBudget := func(change func(*budget.Settings)) func(*GangwayServiceProps) {
		return func(p *GangwayServiceProps) {
			b := budget.Defaults()
			change(&b)
			p.Budget = &b
		}
	}
	tests := []struct {
		name   string
		change func(*GangwayServiceProps)
		// refuse: substrings of one problem (the prop and field, then the rule); nil:
		// accepted. A third element says why the construct refuses props whose environment
		// the proxy would accept: a rule the proxy cannot see (the load balancer's timing),
		// or a setting the proxy would silently ignore.
		refuse []string
	}{
		{"defaults", func(*GangwayServiceProps) {}, nil},
		// The budget: 12 s + 15 s fit 28 s only without the proxy's 3 s margin.
		{"stopTimeout without room for the margin", withBudget(func(b *budget.Settings) { b.StopTimeout = 28 * time.Second }),
			[]string{"Budget.StopTimeout = 28s", "+ 3s = 30s must fit"}},
		{"stopTimeout exactly the window", withBudget(func(b *budget.Settings) { b.StopTimeout = 12*time.Second + 15*time.Second + budget.ShutdownMargin }), nil},
		{"drain that fits a raised stopTimeout", withBudget(func(b *budget.Settings) {
			b.DrainTimeout, b.StopTimeout = 40*time.Second, 55*time.Second
		}), nil},
		{"drain one second too long", withBudget(func(b *budget.Settings) {
			b.DrainTimeout, b.StopTimeout = 41*time.Second, 55*time.Second
		}), []string{"Budget.StopTimeout = 55s", "must fit"}},
		{"shutdown delay 0", withBudget(func(b *budget.Settings) { b.ShutdownDelay = 0 }), []string{"Budget.ShutdownDelay = 0s", "detection",
			"the load balancer's detection time is not the proxy's to know"}},

		{"config on ProxyPort", func(p *GangwayServiceProps) { p.ProxyConfig = sidecarDoc(":8080", ReadyPath, "") }, nil},
		{"config on a custom ProxyPort", func(p *GangwayServiceProps) {
			p.ProxyPort = 9000
			p.ProxyConfig = sidecarDoc("0.0.0.0:9000", ReadyPath, "")
		}, nil},
		{"config listening elsewhere", func(p *GangwayServiceProps) {
			p.ProxyPort = 9000
			p.ProxyConfig = sidecarDoc(":8443", ReadyPath, "")
		}, []string{"ProxyPort = 9000", `listeners[0].address ":8443"`}},
		{"config on loopback", func(p *GangwayServiceProps) { p.ProxyConfig = sidecarDoc("127.0.0.1:8080", ReadyPath, "") },
			[]string{`ProxyConfig = listeners[0].address = "127.0.0.1:8080"`, "every interface"}},
		{"config readiness elsewhere", func(p *GangwayServiceProps) { p.ProxyConfig = sidecarDoc(":8080", "/ready", "") },
			[]string{`ProxyConfig = listeners[0].readiness_path = "/ready"`, "health-check path"}},
		{"config without readiness", func(p *GangwayServiceProps) { p.ProxyConfig = sidecarDoc(":8080", "", "") },
			[]string{`ProxyConfig = listeners[0].readiness_path = ""`, "health-check path"}},
		{"config moves the probe server", func(p *GangwayServiceProps) { p.ProxyConfig = sidecarDoc(":8080", ReadyPath, "127.0.0.1:29090") },
			[]string{`ProxyConfig = admin.address = "127.0.0.1:29090"`, "exit 3"}},
		{"probe server on every interface", func(p *GangwayServiceProps) { p.ProxyConfig = sidecarDoc(":8080", ReadyPath, "0.0.0.0:28080") }, nil},
		{"probe server moved with GANGWAY_HEALTH_ADDR", func(p *GangwayServiceProps) {
			p.ProxyConfig = sidecarDoc(":8080", ReadyPath, "")
			p.ProxyEnvironment = map[string]string{EnvHealthAddr: "127.0.0.1:29090"}
		}, nil},
		{"GANGWAY_HEALTH_ADDR on the traffic port", func(p *GangwayServiceProps) {
			p.ProxyEnvironment = map[string]string{EnvHealthAddr: "127.0.0.1:8080"}
		}, []string{`ProxyEnvironment[GANGWAY_HEALTH_ADDR] = "127.0.0.1:8080"`, "must not use ProxyPort",
			"`proxy run` would fail to bind; the configuration alone cannot see the override"}},
		{"admin.address overridden by GANGWAY_HEALTH_ADDR", func(p *GangwayServiceProps) {
			p.ProxyConfig = sidecarDoc(":8080", ReadyPath, "127.0.0.1:29091")
			p.ProxyEnvironment = map[string]string{EnvHealthAddr: "127.0.0.1:29090"}
		}, []string{`ProxyConfig = admin.address = "127.0.0.1:29091"`, "is ignored", "a setting the proxy ignores"}},
		{"config with TLS on the traffic port", func(p *GangwayServiceProps) {
			p.ProxyConfig = strings.Replace(sidecarDoc(":8080", ReadyPath, ""), "    readiness_path:",
				"    tls: {cert_file: /etc/gangway/tls.crt, key_file: /etc/gangway/tls.key}\n    readiness_path:", 1)
		}, []string{"ProxyConfig = listeners[0].tls set", "plain HTTP"}},
		{"config with a tcp listener on the traffic port", func(p *GangwayServiceProps) {
			p.ProxyConfig = "listeners: [{name: t, address: \":8080\", protocol: tcp, cluster: app}]\nclusters: [{name: app, endpoints: [\"127.0.0.1:80\"]}]\n"
		}, []string{"ProxyConfig = listeners[0].protocol = tcp", "must be http"}},
		{"config the proxy refuses", func(p *GangwayServiceProps) { p.ProxyConfig = "listeners: [{name: public}]\n" },
			[]string{"ProxyConfig = (document)", "$GANGWAY_CONFIG_YAML:1:13: listeners[0].address: required"}},
		{"split-mode data plane", func(p *GangwayServiceProps) {
			p.ProxyConfig = "services: proxy\ncontrol_plane_url: [\"gangway-control.internal:18000\"]\n"
		}, []string{"ProxyConfig = services: proxy", "split-mode"}},
		{"sidecar variable next to a config", func(p *GangwayServiceProps) {
			p.ProxyConfig = sidecarDoc(":8080", ReadyPath, "")
			p.ProxyEnvironment = map[string]string{EnvUpstream: "127.0.0.1:81"}
		}, []string{"ProxyEnvironment[GANGWAY_UPSTREAM]", "ignored by the proxy once ProxyConfig is given", "a variable the proxy ignores"}},
		{"config file in the image", func(p *GangwayServiceProps) {
			p.ProxyEnvironment = map[string]string{EnvConfigFile: "/etc/gangway/gangway.yaml"}
		}, []string{`ProxyEnvironment[GANGWAY_CONFIG] = "/etc/gangway/gangway.yaml"`, "pass the document in ProxyConfig"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := baseProps(t)
			tc.change(p)
			r, problems := resolve(*p)
			var lines []string
			for _, pr := range problems {
				lines = append(lines, pr.String())
			}
			all := strings.Join(lines, "\n")
			verdict := proxyAccepts(r.proxyEnvironment(), r.ProxyPort)
			if r.ProxyEnvironment[EnvConfigFile] != "" {
				verdict = "the proxy reads a file the construct cannot see"
			}
			if tc.refuse == nil {
				if len(problems) > 0 {
					t.Fatalf("construct refuses:\n%s", all)
				}
				if verdict != "" {
					t.Fatalf("construct accepts, but %s", verdict)
				}
				return
			}
			if verdict == "" && len(tc.refuse) < 3 {
				t.Errorf("the proxy and the health checks accept the rendered environment; the case is wrong")
			}
			found := false
			for _, l := range lines {
				found = found || strings.Contains(l, tc.refuse[0]) && strings.Contains(l, tc.refuse[1])
			}
			if !found {
				t.Errorf("no problem with %q and %q in:\n%s\n(proxy: %s)", tc.refuse[0], tc.refuse[1], all, verdict)
			}
		})
	}
}

// TestConfigMakesSidecarVariablesGo: with ProxyConfig the construct renders no variable the
// proxy would ignore.
func TestConfigMakesSidecarVariablesGo(t *testing.T) {
	p := baseProps(t)
	p.ProxyConfig = sidecarDoc(":8080", ReadyPath, "")
	r, problems := resolve(*p)
	if problems != nil {
		t.Fatal(problems)
	}
	env := r.proxyEnvironment()
	for _, k := range []string{EnvListenAddr, EnvReadyPath, EnvUpstream} {
		if v, ok := env[k]; ok {
			t.Errorf("%s = %q rendered next to %s, which makes the proxy ignore it", k, v, EnvConfigYAML)
		}
	}
	if env[EnvConfigYAML] != p.ProxyConfig {
		t.Errorf("%s = %q", EnvConfigYAML, env[EnvConfigYAML])
	}
}

// TestSynthesizedEnvironmentStartsTheProxy feeds the proxy container's environment, as the
// synthesized template carries it, to the proxy's configuration resolution, and checks the
// result against the template's own target group: its port and health-check path are
// where the proxy serves readiness, and the probe server is where /healthcheck dials.
func TestSynthesizedEnvironmentStartsTheProxy(t *testing.T) {
	b := budget.Defaults()
	b.DrainTimeout, b.StopTimeout = 40*time.Second, 55*time.Second
	custom := baseProps(t)
	custom.Budget = &b
	withConfig := baseProps(t)
	withConfig.ProxyPort = 9000
	withConfig.ProxyConfig = sidecarDoc(":9000", ReadyPath, "")
	for name, p := range map[string]*GangwayServiceProps{"custom budget": custom, "ProxyConfig on 9000": withConfig} {
		t.Run(name, func(t *testing.T) {
			s := synth(t, p)
			env := envOf(container(t, s, ProxyContainerName))
			want := p.ProxyPort
			if want == 0 {
				want = DefaultProxyPort
			}
			for id, tg := range s.resources("AWS::ElasticLoadBalancingV2::TargetGroup") {
				if tg["TargetType"] == "lambda" {
					continue // NoRoute
				}
				port := int(num(tg["Port"]))
				if tg["HealthCheckPath"] != ReadyPath || tg["HealthCheckPort"] != "traffic-port" || port != want {
					t.Errorf("target group %s: port %v, health check %v on %v", id, tg["Port"], tg["HealthCheckPath"], tg["HealthCheckPort"])
				}
				if verdict := proxyAccepts(env, port); verdict != "" {
					t.Errorf("target group %s on port %d: %s\nenvironment: %v", id, port, verdict, env)
				}
			}
			if p.ProxyConfig != "" {
				for _, k := range []string{EnvListenAddr, EnvReadyPath, EnvUpstream} {
					if _, ok := env[k]; ok {
						t.Errorf("template sets %s next to %s: the proxy ignores it", k, EnvConfigYAML)
					}
				}
			}
		})
	}
}
