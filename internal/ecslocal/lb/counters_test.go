package lb

import "testing"

// Which 5xx are the target's and which the load balancer's, from HAProxy's termination state.
func TestCountClassifies(t *testing.T) {
	c := newCounters()
	c.name("tg-a", "arn:a")
	for _, line := range []string{
		"tg-a 200 ----",       // served
		"tg-a 500 ----",       // the target answered 500
		"tg-a 503 SC--",       // no connection to a target: HAProxy's 503
		"tg-a 504 sH--",       // the target did not answer in time: HAProxy's 504
		"tg-a 502 SH--",       // the target closed mid-response: HAProxy's 502
		"listener80 418 ----", // a fixed response: no target group
		"tg-b 200 ----",       // a backend never named: not counted
		"garbage",
	} {
		c.count(line)
	}
	want := Counters{Requests: 5, Target5XX: 1, ELB5XX: 3}
	if got := c.snapshot()["arn:a"]; got != want {
		t.Errorf("counters %+v, want %+v", got, want)
	}
	if len(c.snapshot()) != 1 {
		t.Errorf("counted groups %v, want only arn:a", c.snapshot())
	}
}
