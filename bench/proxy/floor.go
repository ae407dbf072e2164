package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// The floor is the least a Go HTTP/1.1 keep-alive proxy does per request: read a request
// head, write it unchanged to an idle upstream connection, read the answer's head, copy
// its Content-Length body back. No header is added, removed or checked; a request with a
// body, an answer without a Content-Length, or anything else it does not expect closes the
// connection. It is not a proxy anyone should run: it measures what the Go runtime and
// the kernel cost a proxy on this machine (its goroutine per connection, the netpoller,
// the system calls), so that Gangway's figures can be read against what its language
// allows as well as against HAProxy's. It runs as a process of its own (this program,
// started again with -floor-serve), so that its CPU time is measured as the others' is.

// floorConn is an idle connection to the upstream.
type floorConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

// floorPool holds the idle upstream connections, most recently used last.
type floorPool struct {
	addr string
	mu   sync.Mutex
	idle []*floorConn
}

func (p *floorPool) get() (*floorConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		return nil, err
	}
	return &floorConn{c: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}, nil
}

func (p *floorPool) put(c *floorConn) {
	p.mu.Lock()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

var errFloorUnexpected = errors.New("a message the floor does not forward")

// readFloorHead appends a message head from r to buf, through its empty line, and returns
// it with its Content-Length (0 when there is none); has reports whether there was one.
func readFloorHead(r *bufio.Reader, buf []byte) (head []byte, length int, has bool, err error) {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, 0, false, err
		}
		buf = append(buf, line...)
		if len(line) <= 2 {
			return buf, length, has, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // the start line
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil || length < 0 {
				return nil, 0, false, errFloorUnexpected
			}
			has = true
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return nil, 0, false, errFloorUnexpected
		}
	}
}

// serveFloorConn forwards c's requests until c or the exchange fails.
func serveFloorConn(c net.Conn, pool *floorPool) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	var reqHead, respHead []byte
	body := make([]byte, 16<<10)
	for {
		head, length, _, err := readFloorHead(r, reqHead[:0])
		if err != nil || length > 0 {
			return
		}
		reqHead = head
		up, err := pool.get()
		if err != nil {
			return
		}
		if err := floorExchange(up, reqHead, &respHead, body, w); err != nil {
			up.c.Close()
			return
		}
		pool.put(up)
		if w.Flush() != nil {
			return
		}
	}
}

// floorExchange sends a request head on up and copies the answer to w.
func floorExchange(up *floorConn, reqHead []byte, respHead *[]byte, body []byte, w *bufio.Writer) error {
	up.w.Write(reqHead)
	if err := up.w.Flush(); err != nil {
		return err
	}
	head, length, has, err := readFloorHead(up.r, (*respHead)[:0])
	if err != nil {
		return err
	}
	if !has {
		return errFloorUnexpected
	}
	*respHead = head
	w.Write(head)
	for length > 0 {
		n, err := up.r.Read(body[:min(length, len(body))])
		if err != nil {
			return err
		}
		w.Write(body[:n])
		length -= n
	}
	return nil
}

// serveFloor runs the floor on addr, forwarding to upstream, until it is killed.
func serveFloor(addr, upstream string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	return fmt.Errorf("floor: %w", floorServe(ln, upstream))
}

// floorServe serves ln's connections until ln is closed.
func floorServe(ln net.Listener, upstream string) error {
	pool := &floorPool{addr: upstream}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go serveFloorConn(c, pool)
	}
}
