package probecmd

import (
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/gangway-ecs/gangway/internal/budget"
	"github.com/gangway-ecs/gangway/internal/health"
)

// The probe cannot import internal/health without linking net/http; this keeps the two
// sides of the probe equal.
func TestSameEndpointsAsServer(t *testing.T) {
	if DefaultAddr != health.DefaultAddr {
		t.Errorf("DefaultAddr %q, server listens on %q", DefaultAddr, health.DefaultAddr)
	}
	want := map[string]string{"container": health.PathContainer, "ready": health.PathReady, "live": health.PathLive, "startup": health.PathStartup}
	for probe, path := range want {
		if Paths[probe] != path {
			t.Errorf("-probe %s requests %q, server serves %q", probe, Paths[probe], path)
		}
	}
	if len(Paths) != len(want) {
		t.Errorf("Paths has %d probes, want %d", len(Paths), len(want))
	}
}

func parse(env map[string]string, args ...string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.Bind(fs, func(k string) string { return env[k] })
	return o, o.Parse(fs, args)
}

func TestDefaults(t *testing.T) {
	o, err := parse(nil)
	if err != nil || o.Addr != "127.0.0.1:28080" || o.Probe != "container" || o.Timeout != DefaultTimeout {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	// The default must let the container check's smallest timeout outlast the probe.
	s := budget.Defaults()
	s.ContainerTimeout, s.ProbeTimeout = budget.MinContainerTimeout, o.Timeout
	if v := budget.Check(s); v != nil {
		t.Errorf("the default -timeout %s does not fit ECS's smallest health-check timeout: %v", o.Timeout, v)
	}
	if o, _ := parse(map[string]string{AddrEnv: "10.0.0.1:9"}); o.Addr != "10.0.0.1:9" {
		t.Errorf("%s ignored: -addr defaults to %q", AddrEnv, o.Addr)
	}
	if o, _ := parse(map[string]string{AddrEnv: "10.0.0.1:9"}, "-addr", "[::1]:1"); o.Addr != "[::1]:1" {
		t.Errorf("-addr does not win over %s: %q", AddrEnv, o.Addr)
	}
}

func TestParseErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-bogus"}, {"-probe", "readiness"}, {"-timeout", "0s"}, {"-timeout", "-1s"}, {"-exclude", ""},
		{"extra"}, {"-addr", "nohost"}, {"-addr", ":1"}, {"-addr", "host:"}, {"-addr", "a b:1"},
	} {
		if _, err := parse(nil, args...); err == nil || errors.Is(err, flag.ErrHelp) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
	if _, err := parse(nil, "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: err = %v, want flag.ErrHelp", err)
	}
	if o, err := parse(nil, "-version", "-addr", "nohost"); err != nil || !o.Version {
		t.Errorf("-version: %+v, %v: want no error, whatever the other flags", o, err)
	}
}

func TestTarget(t *testing.T) {
	o, err := parse(nil, "-probe", "ready", "-exclude", "a b", "-exclude", "c&d")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := o.Target(), "/readyz?verbose&exclude=a+b&exclude=c%26d"; got != want {
		t.Errorf("Target() = %q, want %q", got, want)
	}
}

func TestStatusExit(t *testing.T) {
	for status, want := range map[int]ExitCode{200: ExitHealthy, 503: ExitUnhealthy, 500: ExitUnhealthy, 204: ExitUnhealthy, 301: ExitUnhealthy} {
		if got := StatusExit(status); got != want {
			t.Errorf("StatusExit(%d) = %d, want %d", status, got, want)
		}
	}
}
