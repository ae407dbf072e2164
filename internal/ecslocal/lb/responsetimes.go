package lb

import (
	"math"
	"math/bits"
)

// ResponseTimes is a histogram of response times in milliseconds, counted since the load
// balancer started, as the other counters are: a period's times are the difference of two
// snapshots (Sub). Times under 16 ms have a bucket each; above, every power of two is cut
// into 8 buckets, so that a percentile read from the histogram is within 1/16 (about 6%)
// of the time it stands for. CloudWatch's percentiles are estimates too.
type ResponseTimes struct {
	Count   int64
	SumMs   int64
	Buckets [rtBuckets]int64
}

const (
	rtExact   = 16 // times below this many ms have a bucket each
	rtSub     = 8  // buckets per power of two above
	rtMaxExp  = 24 // 2^24 ms, 4.6 hours (HAProxy gives a target 60 s): the last bucket holds everything above
	rtBuckets = rtExact + (rtMaxExp-4)*rtSub
)

// rtBucket returns the bucket of a time of ms milliseconds (ms >= 0).
func rtBucket(ms int64) int {
	if ms < rtExact {
		return int(ms)
	}
	e := 63 - bits.LeadingZeros64(uint64(ms)) // 2^e <= ms < 2^(e+1), e >= 4
	if e >= rtMaxExp {
		return rtBuckets - 1
	}
	sub := int(ms>>(e-3)) & (rtSub - 1)
	return rtExact + (e-4)*rtSub + sub
}

// rtBounds returns the times bucket i holds, [lo, hi) in milliseconds.
func rtBounds(i int) (lo, hi float64) {
	if i < rtExact {
		return float64(i), float64(i + 1)
	}
	e := (i-rtExact)/rtSub + 4
	sub := (i - rtExact) % rtSub
	step := math.Ldexp(1, e-3)
	return float64(rtSub+sub) * step, float64(rtSub+sub+1) * step
}

// add counts one time of ms milliseconds.
func (r *ResponseTimes) add(ms int64) {
	r.Count++
	r.SumMs += ms
	r.Buckets[rtBucket(ms)]++
}

// Sub returns the times counted in r and not in earlier, a snapshot taken before r.
func (r ResponseTimes) Sub(earlier ResponseTimes) ResponseTimes {
	out := ResponseTimes{Count: r.Count - earlier.Count, SumMs: r.SumMs - earlier.SumMs}
	for i := range out.Buckets {
		out.Buckets[i] = r.Buckets[i] - earlier.Buckets[i]
	}
	return out
}

// Add returns the times of r and of other together.
func (r ResponseTimes) Add(other ResponseTimes) ResponseTimes {
	out := ResponseTimes{Count: r.Count + other.Count, SumMs: r.SumMs + other.SumMs}
	for i := range out.Buckets {
		out.Buckets[i] = r.Buckets[i] + other.Buckets[i]
	}
	return out
}

// Percentile returns the time in milliseconds at or below which p percent of the times
// are (the nearest rank), as the middle of its bucket; 0 when nothing was counted.
func (r ResponseTimes) Percentile(p float64) float64 {
	if r.Count <= 0 {
		return 0
	}
	rank := int64(math.Ceil(p / 100 * float64(r.Count)))
	rank = max(1, min(rank, r.Count))
	var seen int64
	for i, n := range r.Buckets {
		if seen += n; seen >= rank {
			return rtMiddle(i)
		}
	}
	return rtMiddle(rtBuckets - 1)
}

// Min and Max return the middle of the lowest and of the highest bucket with a time in it.
func (r ResponseTimes) Min() float64 {
	for i, n := range r.Buckets {
		if n > 0 {
			return rtMiddle(i)
		}
	}
	return 0
}

func (r ResponseTimes) Max() float64 {
	for i := len(r.Buckets) - 1; i >= 0; i-- {
		if r.Buckets[i] > 0 {
			return rtMiddle(i)
		}
	}
	return 0
}

// rtMiddle is the time bucket i stands for: exact below rtExact ms, else its middle.
func rtMiddle(i int) float64 {
	lo, hi := rtBounds(i)
	if i < rtExact {
		return lo
	}
	return (lo + hi) / 2
}
