package lb

import "testing"

// Which 5xx are the target's and which the load balancer's, from HAProxy's termination state.
func TestCountClassifies(t *testing.T) {
	c := newCounters()
	c.name("tg-a", "arn:a")
	for _, line := range []string{
		"tg-a 200 ---- 3",        // served in 3 ms
		"tg-a 500 ---- 250",      // the target answered 500 in 250 ms
		"tg-a 503 SC-- -1",       // no connection to a target: HAProxy's 503
		"tg-a 504 sH-- -1",       // the target did not answer in time: HAProxy's 504
		"tg-a 502 SH-- -1",       // the target closed mid-response: HAProxy's 502
		"listener80 418 ---- -1", // a fixed response: no target group
		"tg-b 200 ---- 1",        // a backend never named: not counted
		"tg-a 200 ----",          // a line of another format: not counted
		"garbage",
	} {
		c.count(line)
	}
	want := Counters{Requests: 5, Target5XX: 1, ELB5XX: 3}
	want.ResponseTimes.add(3)
	want.ResponseTimes.add(250)
	if got := c.snapshot()["arn:a"]; got != want {
		t.Errorf("counters %+v, want %+v", got, want)
	}
	if len(c.snapshot()) != 1 {
		t.Errorf("counted groups %v, want only arn:a", c.snapshot())
	}
}

// Every time lands in a bucket that holds it, each bucket is within 1/16 of its middle, and
// percentiles of a period come from the difference of two snapshots.
func TestResponseTimes(t *testing.T) {
	for _, ms := range []int64{0, 1, 15, 16, 17, 31, 32, 100, 999, 1000, 2047, 2048, 60000, 1 << 23, 1<<24 - 1} {
		i := rtBucket(ms)
		lo, hi := rtBounds(i)
		if float64(ms) < lo || float64(ms) >= hi {
			t.Errorf("%d ms in bucket %d, which holds [%g, %g)", ms, i, lo, hi)
		}
		if mid := rtMiddle(i); mid < float64(ms)*15/16 || mid > float64(ms)*17/16+0.5 {
			t.Errorf("%d ms stands as %g ms: off by more than 1/16", ms, mid)
		}
	}
	if i := rtBucket(1 << 40); i != rtBuckets-1 {
		t.Errorf("2^40 ms in bucket %d, want the last (%d)", i, rtBuckets-1)
	}
	for i := 1; i < rtBuckets; i++ {
		_, prevHi := rtBounds(i - 1)
		if lo, _ := rtBounds(i); lo != prevHi {
			t.Fatalf("bucket %d starts at %g, the one before ends at %g", i, lo, prevHi)
		}
	}

	var earlier, later ResponseTimes
	for range 1000 {
		earlier.add(5000) // before the period: must not count in it
	}
	later = earlier
	for ms := range int64(100) {
		later.add(ms * 10) // 0, 10, ..., 990 ms
	}
	period := later.Sub(earlier)
	if period.Count != 100 || period.SumMs != 49500 {
		t.Fatalf("period: %d times, %d ms in all; want 100 and 49500", period.Count, period.SumMs)
	}
	for _, c := range []struct{ p, want float64 }{{50, 490}, {99, 980}, {100, 990}, {1, 0}} {
		if got := period.Percentile(c.p); got < c.want*15/16 || got > c.want*17/16 {
			t.Errorf("p%g = %g ms, want %g within 1/16", c.p, got, c.want)
		}
	}
	if got := period.Max(); got < 990*15/16 || got > 990*17/16 {
		t.Errorf("max %g ms, want about 990", got)
	}
	if got := (ResponseTimes{}).Percentile(99); got != 0 {
		t.Errorf("p99 of nothing: %g, want 0", got)
	}
}
