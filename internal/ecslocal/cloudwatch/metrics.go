package cloudwatch

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"

	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/lb"
)

// The metrics of the AWS/ApplicationELB namespace ecslocal publishes ("CloudWatch metrics for
// your Application Load Balancer",
// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html).
const (
	namespaceALB       = "AWS/ApplicationELB"
	metricRequests     = "RequestCount"
	metricTarget5XX    = "HTTPCode_Target_5XX_Count"
	metricELB5XX       = "HTTPCode_ELB_5XX_Count"
	metricHealthy      = "HealthyHostCount"
	metricUnhealthy    = "UnHealthyHostCount"
	metricResponseTime = "TargetResponseTime"
)

// counted are the metrics computed from the load balancer's request counters: the count in a
// period is the difference of the counters at its ends.
var counted = map[string]func(lb.Counters) int64{
	metricRequests:  func(c lb.Counters) int64 { return c.Requests },
	metricTarget5XX: func(c lb.Counters) int64 { return c.Target5XX },
	metricELB5XX:    func(c lb.Counters) int64 { return c.ELB5XX },
}

// Counters is the load balancer's request counters by target group ARN (lb.LB).
type Counters interface {
	Counters() map[string]lb.Counters
}

// ELB is what the sampler reads of the load balancer's control plane (elbapi.API).
type ELB interface {
	DescribeTargetGroups(context.Context, *elb.DescribeTargetGroupsInput) (*elb.DescribeTargetGroupsOutput, error)
	DescribeTargetHealth(context.Context, *elb.DescribeTargetHealthInput) (*elb.DescribeTargetHealthOutput, error)
}

// group is one target group in a sample.
type group struct {
	name          string   // its TargetGroup dimension value, targetgroup/<name>/<id>
	loadBalancers []string // the LoadBalancer dimension values of the load balancers forwarding to it, app/<name>/<id>
	counters      lb.Counters
	healthy       int
	unhealthy     int
}

// sample is the load balancer's state at one moment.
type sample struct {
	at     time.Time
	groups map[string]group // by target group ARN
}

// dimensionValue is an ARN's resource part as ALB's metrics name it: the ARN after
// "targetgroup/" → "targetgroup/<name>/<id>", after "loadbalancer/" → "app/<name>/<id>".
func dimensionValue(arn string) string {
	if i := strings.Index(arn, ":targetgroup/"); i >= 0 {
		return arn[i+1:]
	}
	if i := strings.Index(arn, ":loadbalancer/"); i >= 0 {
		return arn[i+len(":loadbalancer/"):]
	}
	return arn
}

// takeSample reads the counters and the target groups' health.
func takeSample(ctx context.Context, at time.Time, elbAPI ELB, counters Counters) sample {
	s := sample{at: at, groups: map[string]group{}}
	if elbAPI == nil {
		return s
	}
	var byARN map[string]lb.Counters
	if counters != nil {
		byARN = counters.Counters()
	}
	var marker *string
	for range 1000 { // at most 400k target groups: bounded, far beyond any test
		out, err := elbAPI.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Marker: marker})
		if err != nil {
			return s
		}
		for _, tg := range out.TargetGroups {
			arn := *tg.TargetGroupArn
			g := group{name: dimensionValue(arn), counters: byARN[arn]}
			for _, l := range tg.LoadBalancerArns {
				g.loadBalancers = append(g.loadBalancers, dimensionValue(l))
			}
			if h, err := elbAPI.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn}); err == nil {
				for _, d := range h.TargetHealthDescriptions {
					if d.TargetHealth == nil {
						continue
					}
					switch d.TargetHealth.State {
					case elbtypes.TargetHealthStateEnumHealthy:
						g.healthy++
					case elbtypes.TargetHealthStateEnumUnhealthy:
						g.unhealthy++
					}
				}
			}
			s.groups[arn] = g
		}
		if out.NextMarker == nil || *out.NextMarker == "" {
			break
		}
		marker = out.NextMarker
	}
	return s
}

// matches reports whether g is among the groups a metric's dimensions select: every
// TargetGroup and LoadBalancer dimension must name it or a load balancer forwarding to it.
// Other dimensions (AvailabilityZone) select nothing: ecslocal has one zone and no per-zone
// counts.
func (g group) matches(dims []Dimension) bool {
	lbSeen := false
	for _, d := range dims {
		switch d.Name {
		case "TargetGroup":
			if d.Value != g.name {
				return false
			}
		case "LoadBalancer":
			if !slices.Contains(g.loadBalancers, d.Value) {
				return false
			}
			lbSeen = true
		default:
			return false
		}
	}
	// A group no load balancer forwards to publishes nothing, as on ALB.
	return lbSeen || len(g.loadBalancers) > 0
}

// datapoint is one period's statistics of a metric; ok is false when the period has no data.
type datapoint struct {
	start                time.Time
	sum, min, max, count float64
	values               []float64
	// times are TargetResponseTime's, whose percentiles come from them (milliseconds)
	// rather than from values.
	times *lb.ResponseTimes
}

func (d datapoint) stat(statistic string) float64 {
	switch statistic {
	case "Sum":
		return d.sum
	case "Minimum":
		return d.min
	case "Maximum":
		return d.max
	case "SampleCount":
		return d.count
	case "Average":
		return d.sum / d.count
	}
	if p, ok := percentile(statistic); ok {
		if d.times != nil {
			return d.times.Percentile(p) / 1000
		}
		v := slices.Clone(d.values)
		slices.Sort(v)
		i := int(math.Ceil(p/100*float64(len(v)))) - 1
		return v[max(0, min(i, len(v)-1))]
	}
	return math.NaN()
}

// percentile parses an extended statistic pNN or pNN.NN.
func percentile(s string) (float64, bool) {
	if len(s) < 2 || s[0] != 'p' {
		return 0, false
	}
	var p float64
	var frac float64 = 1
	dot := false
	for _, c := range s[1:] {
		switch {
		case c == '.' && !dot:
			dot = true
		case c >= '0' && c <= '9':
			if dot {
				frac /= 10
				p += float64(c-'0') * frac
			} else {
				p = p*10 + float64(c-'0')
			}
		default:
			return 0, false
		}
	}
	return p, p >= 0 && p <= 100
}

// point computes metric name with dims over [start, end) from the samples (oldest first).
// Counted metrics are one value per period, the counters' growth, published only when the
// selected groups received requests in it (ALB publishes only while requests flow); the
// host counts are one value per sample within the period, as long as a selected group is
// behind a load balancer.
func point(samples []sample, name string, dims []Dimension, start, end time.Time) (datapoint, bool) {
	d := datapoint{start: start, min: math.Inf(1), max: math.Inf(-1)}
	add := func(v float64) {
		d.sum += v
		d.count++
		d.min = math.Min(d.min, v)
		d.max = math.Max(d.max, v)
		d.values = append(d.values, v)
	}
	if f, ok := counted[name]; ok {
		a, okA := at(samples, start)
		b, okB := at(samples, end)
		if !okA || !okB {
			return d, false
		}
		var v, requests int64
		for arn, g := range b.groups {
			if !g.matches(dims) {
				continue
			}
			prev := a.groups[arn].counters
			v += f(g.counters) - f(prev)
			requests += g.counters.Requests - prev.Requests
		}
		if requests <= 0 {
			return d, false
		}
		add(float64(v))
		return d, true
	}
	if name == metricResponseTime {
		return responseTime(samples, dims, d, end)
	}
	if name != metricHealthy && name != metricUnhealthy {
		return d, false // the rest: no source
	}
	for _, s := range samples {
		if s.at.Before(start) || !s.at.Before(end) {
			continue
		}
		var v int
		seen := false
		for _, g := range s.groups {
			if !g.matches(dims) {
				continue
			}
			seen = true
			if name == metricHealthy {
				v += g.healthy
			} else {
				v += g.unhealthy
			}
		}
		if seen {
			add(float64(v))
		}
	}
	return d, d.count > 0
}

// responseTime fills d, which spans [d.start, end), with the seconds the selected groups'
// targets took to answer the requests of the period: the growth of their histograms,
// published only when a target answered in it.
func responseTime(samples []sample, dims []Dimension, d datapoint, end time.Time) (datapoint, bool) {
	a, okA := at(samples, d.start)
	b, okB := at(samples, end)
	if !okA || !okB {
		return d, false
	}
	var times lb.ResponseTimes
	for arn, g := range b.groups {
		if g.matches(dims) {
			times = times.Add(g.counters.ResponseTimes.Sub(a.groups[arn].counters.ResponseTimes))
		}
	}
	if times.Count <= 0 {
		return d, false
	}
	d.times = &times
	d.sum, d.count = float64(times.SumMs)/1000, float64(times.Count)
	d.min, d.max = times.Min()/1000, times.Max()/1000
	return d, true
}

// at returns the newest sample taken at or before t.
func at(samples []sample, t time.Time) (sample, bool) {
	i, _ := slices.BinarySearchFunc(samples, t, func(s sample, t time.Time) int {
		if s.at.After(t) {
			return 1
		}
		return -1
	})
	if i == 0 {
		return sample{}, false
	}
	return samples[i-1], true
}
