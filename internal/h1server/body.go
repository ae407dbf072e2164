package h1server

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"

	"github.com/gangway-ecs/gangway/internal/httpascii"
)

// body is a request body read from the connection: remain bytes of a Content-Length
// body, or a chunked one (remain -1) followed by its trailer section.
type body struct {
	c *conn
	r *http.Request
	// cont is an Expect: 100-continue not answered yet. It is answered before mu is
	// taken: writing it takes c.wmu, and the response takes mu while it holds c.wmu.
	cont   atomic.Pointer[response]
	mu     sync.Mutex
	remain int64
	cr     io.Reader // the chunked decoder, made at the first read
	expect bool      // the request had Expect: 100-continue
	eof    bool
	closed bool
	err    error
	// ended is set with eof or err, for finished: a Read holds mu while it waits for
	// the client, and the watch timer must not wait with it.
	ended atomic.Bool
}

func newBody(c *conn, r *http.Request, n int64) *body {
	return &body{c: c, r: r, remain: n}
}

func (b *body) Read(p []byte) (int, error) {
	if len(p) > 0 {
		if w := b.cont.Swap(nil); w != nil {
			w.writeContinue()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.readLocked(p)
}

func (b *body) readLocked(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if b.remain >= 0 {
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err = b.c.br.Read(p)
		b.remain -= int64(n)
		if b.remain == 0 {
			b.eof = true
			b.ended.Store(true)
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	} else {
		if b.cr == nil {
			b.cr = httputil.NewChunkedReader(b.c.br)
		}
		n, err = b.cr.Read(p)
		if err == io.EOF {
			if terr := b.readTrailer(); terr != nil {
				err = terr
			} else {
				b.eof = true
				b.ended.Store(true)
			}
		}
	}
	if err != nil && err != io.EOF {
		b.err = err
		b.ended.Store(true)
	}
	return n, err
}

// readTrailer reads the trailer section after the last chunk into Request.Trailer.
func (b *body) readTrailer() error {
	limit := b.c.s.maxHeaderBytes()
	var lines []string
	size := 0
	for {
		line, err := b.c.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return errTrailerTooLarge
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if size += len(line); size > limit {
			return errTrailerTooLarge
		}
		s, _ := nextLine(string(line))
		if s == "" {
			break
		}
		if len(lines) == MaxHeaderFields {
			return errTrailerTooLarge
		}
		lines = append(lines, s)
	}
	for _, s := range lines {
		name, value, ok := strings.Cut(s, ":")
		value = httpascii.TrimOWS(value)
		if !ok || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
			return errMalformedTrailer
		}
		if b.r.Trailer == nil {
			b.r.Trailer = make(http.Header)
		}
		name = canonicalKey(name)
		if b.r.Trailer[name] == nil {
			b.r.Trailer[name] = []string{value}
		} else {
			b.r.Trailer[name] = append(b.r.Trailer[name], value)
		}
	}
	return nil
}

func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// finished reports whether the body has been read to its end (or failed). It does not
// wait for a Read in progress.
func (b *body) finished() bool { return b.ended.Load() }

// discardRest reads what the handler left of the body, up to maxPostHandlerReadBytes;
// it reports whether the connection is still in step for another request. A body the
// client was told to wait for (Expect: 100-continue, never answered) is not read.
func (b *body) discardRest() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.eof {
		return true
	}
	if b.err != nil || b.cont.Load() != nil {
		return false
	}
	return b.discardLocked()
}

// discardLocked reads and drops the rest of the body, up to maxPostHandlerReadBytes; it
// reports whether it reached the end. No 100 Continue is pending.
func (b *body) discardLocked() bool {
	var buf [4 << 10]byte
	for read := 0; read <= maxPostHandlerReadBytes; {
		n, err := b.readLocked(buf[:])
		read += n
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}
