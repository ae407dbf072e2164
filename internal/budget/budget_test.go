package budget

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

const s = time.Second

func TestDefaultsFit(t *testing.T) {
	d := Defaults()
	if v := Check(d); v != nil {
		t.Fatalf("Defaults() violates the budget: %v", v)
	}
	// The defaults are meant to fill Fargate's default stopTimeout exactly.
	if got := d.ShutdownDelay + d.DrainTimeout + ShutdownMargin; got != DefaultStopTimeout {
		t.Errorf("defaults use %s of the %s stopTimeout", got, DefaultStopTimeout)
	}
	if got := d.DetectionTime(); got != d.ShutdownDelay {
		t.Errorf("DetectionTime = %s, want the shutdown delay %s", got, d.ShutdownDelay)
	}
}

func TestNothingDeclaredFits(t *testing.T) {
	if v := Check(Settings{}); v != nil {
		t.Fatalf("Check(Settings{}) = %v, want nil: undeclared fields skip their rules", v)
	}
}

// TestCheck changes Defaults() one way at a time and asserts exactly which fields are
// reported. Every rule has a breaking case and, where a boundary exists, a case that sits on
// the boundary and passes.
func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Settings)
		want   []string // violated fields, in Check's order
	}{
		// Target group ranges.
		{"lb interval below 5s", func(x *Settings) { x.LBHealthInterval = 4 * s; x.ShutdownDelay = 12 * s }, []string{"LBHealthInterval"}},
		{"lb interval above 300s", func(x *Settings) { x.LBHealthInterval = 301 * s }, []string{"LBHealthInterval", "ShutdownDelay", "HealthCheckGracePeriod"}},
		{"lb interval fractional", func(x *Settings) {
			x.LBHealthInterval = 5500 * time.Millisecond
			x.ShutdownDelay = 14 * s
			x.DrainTimeout = 13 * s
		}, []string{"LBHealthInterval"}},
		{"lb timeout below 2s", func(x *Settings) { x.LBHealthTimeout = time.Second }, []string{"LBHealthTimeout"}},
		{"lb timeout above 120s", func(x *Settings) { x.LBHealthInterval = 300 * s; x.LBHealthTimeout = 121 * s }, []string{"LBHealthTimeout", "ShutdownDelay", "HealthCheckGracePeriod"}},
		{"lb timeout equal to interval", func(x *Settings) { x.LBHealthTimeout = 5 * s; x.ShutdownDelay = 15 * s; x.DrainTimeout = 12 * s }, []string{"LBHealthTimeout"}},
		{"lb healthy threshold 1", func(x *Settings) { x.LBHealthyThreshold = 1 }, []string{"LBHealthyThreshold"}},
		{"lb healthy threshold 11", func(x *Settings) { x.LBHealthyThreshold = 11; x.HealthCheckGracePeriod = 65 * s }, []string{"LBHealthyThreshold"}},
		{"lb unhealthy threshold 1", func(x *Settings) { x.LBUnhealthyThreshold = 1 }, []string{"LBUnhealthyThreshold"}},
		{"lb unhealthy threshold 11", func(x *Settings) { x.LBUnhealthyThreshold = 11 }, []string{"LBUnhealthyThreshold", "ShutdownDelay"}},
		{"lb thresholds on the limits", func(x *Settings) {
			x.LBHealthyThreshold = 10
			x.LBUnhealthyThreshold = 2
			x.HealthCheckGracePeriod = 60 * s
		}, nil},
		{"grace shorter than cold start and healthy checks", func(x *Settings) { x.HealthCheckGracePeriod = 19 * s }, []string{"HealthCheckGracePeriod"}},
		{"grace covers cold start and healthy checks", func(x *Settings) { x.HealthCheckGracePeriod = 20 * s }, nil},
		{"dereg delay above 3600s", func(x *Settings) { x.DeregistrationDelay = 3601 * s }, []string{"DeregistrationDelay"}},
		{"dereg delay 3600s", func(x *Settings) { x.DeregistrationDelay = 3600 * s }, nil},

		// stopTimeout.
		{"stop timeout below 2s", func(x *Settings) { x.StopTimeout = time.Second }, []string{"StopTimeout", "StopTimeout"}},
		{"stop timeout above 120s", func(x *Settings) { x.StopTimeout = 121 * s }, []string{"StopTimeout"}},
		{"stop timeout 120s", func(x *Settings) { x.StopTimeout = 120 * s }, nil},
		{"stop timeout undeclared uses 30s", func(x *Settings) { x.StopTimeout = 0 }, nil},
		{"stop timeout undeclared too short", func(x *Settings) { x.StopTimeout = 0; x.DrainTimeout = 16 * s }, []string{"StopTimeout"}},

		// Container health check.
		{"container interval above 10s", func(x *Settings) { x.ContainerInterval = 30 * s }, []string{"ContainerInterval"}},
		{"container interval 10s", func(x *Settings) { x.ContainerInterval = 10 * s }, nil},
		{"container interval below 5s", func(x *Settings) { x.ContainerInterval = 4 * s; x.ContainerTimeout = 3 * s }, []string{"ContainerInterval"}},
		{"container interval above 300s", func(x *Settings) { x.ContainerInterval = 301 * s }, []string{"ContainerInterval"}},
		{"container timeout below 2s", func(x *Settings) { x.ContainerTimeout = time.Second }, []string{"ContainerTimeout"}},
		{"container timeout above 60s", func(x *Settings) { x.ContainerInterval = 10 * s; x.ContainerTimeout = 61 * s }, []string{"ContainerTimeout", "ContainerTimeout"}},
		{"container timeout equal to interval", func(x *Settings) { x.ContainerTimeout = 5 * s }, []string{"ContainerTimeout"}},
		// The probe gives up before ECS kills it: ContainerTimeout >= ProbeTimeout + ProbeMargin.
		{"container timeout equal to the probe's", func(x *Settings) { x.ProbeTimeout = 2 * s }, []string{"ContainerTimeout"}},
		{"container timeout within the probe margin", func(x *Settings) { x.ProbeTimeout = 1600 * time.Millisecond }, []string{"ContainerTimeout"}},
		{"container timeout on the probe margin", func(x *Settings) { x.ProbeTimeout = 1500 * time.Millisecond }, nil},
		{"probe timeout not declared is the default", func(x *Settings) { x.ProbeTimeout = 0 }, nil},
		{"longer probe, longer container timeout", func(x *Settings) { x.ProbeTimeout = 2 * s; x.ContainerTimeout = 3 * s }, nil},
		{"container retries 11", func(x *Settings) { x.ContainerRetries = 11 }, []string{"ContainerRetries"}},
		{"container retries 1", func(x *Settings) { x.ContainerRetries = 1 }, nil},
		{"container start period above 300s", func(x *Settings) { x.ContainerStartPeriod = 301 * s }, []string{"ContainerStartPeriod"}},
		{"container start period below cold start", func(x *Settings) { x.ContainerStartPeriod = 9 * s }, []string{"ContainerStartPeriod"}},
		{"container start period 0 with cold start", func(x *Settings) { x.ContainerStartPeriod = 0 }, []string{"ContainerStartPeriod"}},
		{"container start period 0, cold start undeclared", func(x *Settings) { x.ContainerStartPeriod = 0; x.ColdStart = 0 }, nil},
		{"container start period equal to cold start", func(x *Settings) { x.ContainerStartPeriod = 10 * s }, nil},
		{"no container health check", func(x *Settings) {
			x.ContainerInterval, x.ContainerTimeout, x.ContainerRetries, x.ContainerStartPeriod = 0, 0, 0, 0
		}, nil},

		// Shutdown delay against load-balancer detection.
		{"shutdown delay shorter than detection", func(x *Settings) { x.ShutdownDelay = 11 * s; x.DrainTimeout = 16 * s }, []string{"ShutdownDelay"}},
		{"slower lb needs longer delay", func(x *Settings) { x.LBHealthInterval = 10 * s }, []string{"ShutdownDelay"}},
		{"undeclared lb skips the delay rule", func(x *Settings) { x.LBHealthTimeout = 0; x.ShutdownDelay = 0 }, nil},

		// Shutdown window.
		{"shutdown overruns stop timeout", func(x *Settings) { x.DrainTimeout = 20 * s }, []string{"StopTimeout"}},
		{"shutdown fits a raised stop timeout", func(x *Settings) { x.DrainTimeout = 20 * s; x.StopTimeout = 35 * s }, nil},
		{"shutdown beyond Fargate's ceiling", func(x *Settings) {
			x.DrainTimeout = 110 * s
			x.StopTimeout = 120 * s
			x.LongestRequest = 100 * s
			x.DeregistrationDelay = 100 * s
		}, []string{"StopTimeout"}},
		// The proxy's margin is not a setting: it counts whatever the caller declares. A
		// stopTimeout that holds the delay and the drain but not the margin is refused.
		{"margin counts", func(x *Settings) { x.StopTimeout = 28 * s }, []string{"StopTimeout"}},
		{"margin exactly fits", func(x *Settings) { x.StopTimeout = 12*s + 15*s + ShutdownMargin }, nil},

		// Longest request.
		{"dereg delay shorter than longest request", func(x *Settings) { x.DeregistrationDelay = 9 * s }, []string{"DeregistrationDelay"}},
		{"dereg delay undeclared", func(x *Settings) { x.DeregistrationDelay = 0 }, nil},
		{"drain shorter than longest request", func(x *Settings) { x.LongestRequest = 15*s + time.Millisecond; x.DeregistrationDelay = 20 * s }, []string{"DrainTimeout"}},
		{"longest request undeclared", func(x *Settings) { x.LongestRequest = 0; x.DeregistrationDelay = time.Second }, nil},

		// Deployment.
		{"grace period below cold start", func(x *Settings) { x.HealthCheckGracePeriod = 5 * s }, []string{"HealthCheckGracePeriod"}},
		{"grace period undeclared", func(x *Settings) { x.HealthCheckGracePeriod = 0 }, nil},
		{"minimum healthy 50", func(x *Settings) { x.MinimumHealthyPercent = 50 }, []string{"MinimumHealthyPercent"}},
		{"maximum 150", func(x *Settings) { x.MaximumPercent = 150 }, []string{"MaximumPercent"}},
		{"percents undeclared", func(x *Settings) { x.MinimumHealthyPercent, x.MaximumPercent = 0, 0 }, nil},

		// Several at once: all are reported, not only the first.
		{"everything wrong", func(x *Settings) {
			x.LBHealthInterval = 30 * s
			x.LBHealthTimeout = 5 * s
			x.ContainerInterval = 30 * s
			x.StopTimeout = 10 * s
			x.MinimumHealthyPercent = 50
		}, []string{"ContainerInterval", "ShutdownDelay", "StopTimeout", "HealthCheckGracePeriod", "MinimumHealthyPercent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := Defaults()
			tt.change(&set)
			got := Check(set)
			var fields []string
			for _, v := range got {
				fields = append(fields, v.Field)
				if v.Value == "" || v.Rule == "" || v.Fix == "" {
					t.Errorf("incomplete violation %+v", v)
				}
				if !strings.Contains(v.Error(), v.Field) || !strings.Contains(v.Error(), v.Fix) {
					t.Errorf("Error() %q does not name the field and the fix", v.Error())
				}
			}
			if !reflect.DeepEqual(fields, tt.want) {
				t.Errorf("violated fields = %v, want %v\n%v", fields, tt.want, got)
			}
		})
	}
}

// TestFixesWork applies the number each fix names and checks that the violation goes away,
// so a fix never sends a user somewhere that still fails.
func TestFixesWork(t *testing.T) {
	set := Defaults()
	set.LBHealthInterval = 10 * s // detection 22 s
	set.DrainTimeout = 20 * s
	got := Check(set)
	if len(got) != 2 || got[0].Field != "ShutdownDelay" || got[1].Field != "StopTimeout" {
		t.Fatalf("got %v", got)
	}
	// Raising the delay lengthens the shutdown, so its fix names the stopTimeout it needs.
	if !strings.Contains(got[0].Fix, "raise ShutdownDelay to 22s and StopTimeout to 45 s") {
		t.Fatalf("shutdown fix %q does not name 22s and the stopTimeout of 45 s", got[0].Fix)
	}
	set.ShutdownDelay = 22 * s
	got = Check(set)
	if len(got) != 1 || !strings.Contains(got[0].Fix, "45 s") {
		t.Fatalf("want one stopTimeout violation naming 45 s, got %v", got)
	}
	set.StopTimeout = 45 * s
	if got := Check(set); got != nil {
		t.Fatalf("after applying the fixes: %v", got)
	}
}

func TestViolationError(t *testing.T) {
	v := Violation{Field: "StopTimeout", Value: "10s", Rule: "must fit", Fix: "raise it"}
	if got, want := v.Error(), "StopTimeout = 10s: must fit; fix: raise it"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func ExampleCheck() {
	s := Defaults()
	fmt.Println(len(Check(s)), "violations in the defaults")

	s.LBHealthInterval = 10 * time.Second // the load balancer now needs 22 s to notice
	for _, v := range Check(s) {
		fmt.Println(v)
	}
	// Output:
	// 0 violations in the defaults
	// ShutdownDelay = 12s: the shutdown delay must outlast the load balancer's detection of a failing target: LBHealthInterval × LBUnhealthyThreshold + LBHealthTimeout = 10s × 2 + 2s = 22s; shorter, and requests still routed to this task are refused; fix: raise ShutdownDelay to 22s and StopTimeout to 40 s (ShutdownDelay + DrainTimeout + Margin must fit within it), or make the target group notice sooner (shorter interval, fewer unhealthy checks)
}
