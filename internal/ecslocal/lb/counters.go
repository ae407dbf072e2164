package lb

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Counters are a target group's request counts since the load balancer started, the
// sources of the CloudWatch metrics of "CloudWatch metrics for your Application Load
// Balancer"
// (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html):
// RequestCount, HTTPCode_Target_5XX_Count (5xx responses of the targets themselves),
// HTTPCode_ELB_5XX_Count (5xx the load balancer answered for the group: no target, or a
// target that failed to connect or respond) and TargetResponseTime.
type Counters struct {
	Requests  int64
	Target5XX int64
	ELB5XX    int64
	// ResponseTimes are the times the targets took to answer, of the requests a target
	// answered (not those the load balancer did).
	ResponseTimes ResponseTimes
}

// counters counts the requests that every HAProxy logs, one line each ("%b %ST %tsc %Tr":
// the backend, the status, the termination state, the target's response time), so that
// nothing is lost when one HAProxy hands over to the next.
type counters struct {
	mu       sync.Mutex
	backends map[string]string // backend name → target group ARN, of every configuration
	byGroup  map[string]*Counters
}

func newCounters() *counters {
	return &counters{backends: map[string]string{}, byGroup: map[string]*Counters{}}
}

// name records which target group a backend name stands for.
func (c *counters) name(backend, arn string) {
	c.mu.Lock()
	c.backends[backend] = arn
	c.mu.Unlock()
}

// read counts the log lines of one HAProxy until its output ends.
func (c *counters) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		c.count(sc.Text())
	}
}

// count counts one log line. A status of 500 or more whose termination state starts with
// '-' came from the target (the session ended normally); otherwise HAProxy answered it.
func (c *counters) count(line string) {
	f := strings.Fields(line)
	if len(f) != 4 {
		return
	}
	status, err := strconv.Atoi(f[1])
	if err != nil {
		return
	}
	// %Tr: milliseconds from the connection to the target until its whole response head,
	// -1 when no response head came.
	tr, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		tr = -1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	arn, ok := c.backends[f[0]]
	if !ok {
		return // a frontend's own answer (fixed response, redirect): no target group
	}
	g := c.byGroup[arn]
	if g == nil {
		g = &Counters{}
		c.byGroup[arn] = g
	}
	g.Requests++
	if tr >= 0 {
		g.ResponseTimes.add(tr)
	}
	if status >= 500 {
		if strings.HasPrefix(f[2], "-") {
			g.Target5XX++
		} else {
			g.ELB5XX++
		}
	}
}

func (c *counters) snapshot() map[string]Counters {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Counters, len(c.byGroup))
	for arn, g := range c.byGroup {
		out[arn] = *g
	}
	return out
}
