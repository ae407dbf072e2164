package main

import "testing"

// h2load prints a run's duration in seconds, milliseconds or, for a short fixed-count run
// (the warm-up of `-requests 2000` against the upstream alone), microseconds.
func TestH2loadThroughputLine(t *testing.T) {
	for line, want := range map[string]string{
		"finished in 9.00s, 59852.33 req/s, 3.25MB/s":    "59852.33",
		"finished in 120.51ms, 16596.14 req/s, 1.79MB/s": "16596.14",
		"finished in 972us, 205761.32 req/s, 20.59MB/s":  "205761.32",
		"finished in 1.28ms, 156250.00 req/s, 15.63MB/s": "156250.00",
	} {
		m := h2RPS.FindStringSubmatch(line)
		if m == nil || m[1] != want {
			t.Errorf("%q: %q, want req/s %s", line, m, want)
		}
	}
}
