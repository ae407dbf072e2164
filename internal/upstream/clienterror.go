package upstream

import (
	"fmt"
	"io"
	"sync/atomic"
)

// clientError is an exchange that failed because of the downstream request, not the
// endpoint: its body could not be read (a body shorter than its Content-Length, a
// malformed chunk, oversized chunk extensions or trailers, a reset stream), or its head
// holds what HTTP/1.1 may not carry. It is answered 400 and never counts against the
// endpoint in outlier detection: cluster.roundTripTo checks for it before it records an
// outcome.
type clientError struct {
	what string // "request body", "request head"
	err  error
}

func (e *clientError) Error() string { return fmt.Sprintf("%s: %v", e.what, e.err) }
func (e *clientError) Unwrap() error { return e.err }

// clientBody is a downstream request body as a cluster reads it. A read error is returned
// as a *clientError and remembered, so that whatever error the transport reports for the
// exchange it broke (a closed connection, a reset stream; http.Request.Write hides the
// body's error behind a type of its own), the cluster can tell it was the client's.
type clientBody struct {
	io.ReadCloser
	err atomic.Pointer[clientError]
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		ce := &clientError{what: "request body", err: err}
		b.err.CompareAndSwap(nil, ce)
		return n, ce
	}
	return n, err
}

// failure returns the body's read error, or nil.
func (b *clientBody) failure() *clientError { return b.err.Load() }
