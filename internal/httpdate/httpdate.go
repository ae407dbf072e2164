// Package httpdate is the Date header's value for Gangway's HTTP servers (h1server,
// h2server), formatted at most once a second rather than for every response.
package httpdate

import (
	"net/http"
	"sync/atomic"
	"time"
)

type value struct {
	sec  int64
	text string
}

var last atomic.Pointer[value]

// Now returns the current time in the Date header's format (http.TimeFormat).
func Now() string {
	now := time.Now()
	sec := now.Unix()
	if v := last.Load(); v != nil && v.sec == sec {
		return v.text
	}
	v := &value{sec: sec, text: now.UTC().Format(http.TimeFormat)}
	last.Store(v)
	return v.text
}
