//go:build race

package h1server

// raceEnabled: under the race detector sync.Pool drops a share of what is put back on
// purpose, so pooled buffers are allocated again now and then.
const raceEnabled = true
