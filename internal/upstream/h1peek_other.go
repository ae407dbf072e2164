//go:build !unix

package upstream

import "net"

// socketPeek is not available here: only what the connection's reader buffered is checked.
type socketPeek struct{}

func newSocketPeek(net.Conn) *socketPeek { return nil }

func (*socketPeek) pending() error { return nil }
