package h2server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const (
	maxWindow = 1<<31 - 1
	// maxQueued bounds the output a connection gathers while its writer is busy: handlers
	// wait beyond it, and a client that makes the server queue control frames (PING and
	// SETTINGS acknowledgements, resets) past twice that without reading is cut off.
	maxQueued = 256 << 10
	// goAwayLinger is how long a connection that has said GOAWAY and has nothing left to
	// serve keeps reading (and discarding) before it closes, so that its last frames are
	// not lost to a reset caused by unread client data.
	goAwayLinger = time.Second
	// maxKept is the largest output buffer a connection keeps between writes.
	maxKept = 64 << 10
	// maxQueuedHandlers bounds the streams waiting for a handler slot, in units of the
	// stream limit: a client that opens and resets streams faster than their handlers
	// end (rapid reset) is cut off beyond it.
	maxQueuedHandlers = 4
	// maxIdleFrames bounds the frames a client sends without progress (see waste): over
	// it, the connection ends with ENHANCE_YOUR_CALM.
	maxIdleFrames = 1000
	// idleHeaderLists bounds, in header lists of MaxHeaderBytes, the decoded header bytes
	// of blocks that start no request (refused, malformed, over the limit) without
	// progress in between.
	idleHeaderLists = 4
	// blockLists bounds the encoded bytes of one header block, in header lists of
	// MaxHeaderBytes: a block is decoded to its end even when over the limit, as HPACK
	// requires, but not without end.
	blockLists = 4
	// minBlockFrames is the fewest frames a header block may span, whatever its limit.
	minBlockFrames = 16
	// heldHeaderLists bounds, in header lists of MaxHeaderBytes, the decoded header bytes
	// of a connection's requests whose handlers have not returned: HPACK lets a few bytes
	// on the wire stand for a full header list, and a client that stops reading
	// responses keeps their requests alive. Streams beyond it are refused.
	heldHeaderLists = 4
)

var (
	errConnClosed   = errors.New("http2: client connection closed")
	errStreamClosed = errors.New("http2: stream closed")
	errClientReset  = errors.New("http2: client reset the stream")
	errWriteTimeout = fmt.Errorf("http2: write timeout: %w", os.ErrDeadlineExceeded)
)

// conn is one HTTP/2 connection. The goroutine that runs serve reads and handles frames;
// each stream's handler runs on a handler goroutine of the Server; writeLoop sends the
// output.
//
// mu guards everything below it. Frames are appended to out under mu, by the reader
// (acknowledgements, resets, window updates) and by handlers (responses); writeLoop takes
// out whole and writes it with one system call, so frames that gather while a write is
// under way leave together.
type conn struct {
	srv     *Server
	nc      net.Conn
	baseCtx context.Context
	remote  string
	// tlsState is the state of the TLS connection under nc, nil on h2c.
	tlsState *tls.ConnectionState
	fr       *http2.Framer // reading side, used by serve only
	hdec     *hpack.Decoder
	block    headerBlock            // the header block being read
	meta     http2.MetaHeadersFrame // the last header block read (readHeaderBlock)
	// consumed is the frames and decoded header bytes of the frame (or header block) last
	// read, for waste.
	consumed       int
	consumedHdr    int64
	stats          connStats
	maxBlockFrames int
	maxBlockBytes  int

	maxStreams   uint32
	maxHeader    uint32
	readTimeout  time.Duration
	writeTimeout time.Duration
	idleTimeout  time.Duration

	kick      chan struct{} // wakes writeLoop; capacity 1
	writeDone chan struct{} // closed when writeLoop returns

	mu         sync.Mutex
	cond       sync.Cond // on mu: send window or output space freed, or the connection died
	out        []byte
	wfr        *http2.Framer // writes frames into out
	henc       *hpack.Encoder
	hbuf       []byte // HPACK output, reused
	dead       error  // set once the connection has failed or ended
	waiters    int    // goroutines waiting on cond
	streams    map[uint32]*stream
	maxID      uint32 // the highest stream ID the client has opened
	sendWindow int64  // connection-level send window
	peerWindow int64  // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrame  int    // the client's SETTINGS_MAX_FRAME_SIZE
	recvWindow int64  // what the client may still send on the connection
	refund     int64  // bytes consumed but not yet returned to the client's window
	running    int    // handlers running
	queued     []*stream
	goingAway  bool // a GOAWAY has been queued
	closing    bool // nothing left to serve: close after the output is written
	lastActive time.Time
	idleTimer  *time.Timer
	idle       int   // frames received without progress since the last progress
	idleHeader int64 // decoded header bytes of blocks that started no request, likewise
	heldHeader int64 // decoded header bytes of requests whose handlers have not returned
}

// connStats counts a connection's work, for tests and fuzzing to hold it to its bounds.
type connStats struct {
	frames      int64 // frames read
	headerBytes int64 // decoded header bytes
	progress    int64 // calls of progress
	maxOut      int   // the most output queued at once
}

func newConn(s *Server, nc net.Conn, ctx context.Context) *conn {
	c := &conn{
		srv:          s,
		nc:           nc,
		baseCtx:      ctx,
		remote:       nc.RemoteAddr().String(),
		tlsState:     tlsState(nc),
		maxStreams:   s.MaxConcurrentStreams,
		readTimeout:  s.ReadTimeout,
		writeTimeout: s.WriteTimeout,
		idleTimeout:  s.IdleTimeout,
		kick:         make(chan struct{}, 1),
		writeDone:    make(chan struct{}),
		streams:      make(map[uint32]*stream),
		sendWindow:   65535,
		peerWindow:   65535,
		peerFrame:    16384,
		recvWindow:   connWindow,
		lastActive:   time.Now(),
	}
	if c.maxStreams == 0 {
		c.maxStreams = DefaultMaxConcurrentStreams
	}
	if c.idleTimeout == 0 {
		c.idleTimeout = s.ReadTimeout // as net/http
	}
	maxHeader := s.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = http.DefaultMaxHeaderBytes
	}
	c.maxHeader = uint32(maxHeader)
	c.cond.L = &c.mu
	c.wfr = http2.NewFramer((*outWriter)(c), nil)
	c.henc = hpack.NewEncoder((*hpackWriter)(c))
	c.fr = http2.NewFramer(nil, bufio.NewReaderSize(nc, 4<<10))
	c.hdec = hpack.NewDecoder(4096, c.onField)
	c.hdec.SetMaxStringLength(maxHeader) // a longer string is a connection error, as x/net's
	c.maxBlockBytes = blockLists * maxHeader
	c.maxBlockFrames = max(minBlockFrames, c.maxBlockBytes/16384)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(16384) // the default: not advertised
	return c
}

// tlsState returns the state of the TLS connection that nc is, or wraps (NetConn), or nil.
func tlsState(nc net.Conn) *tls.ConnectionState {
	for {
		if tc, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
			st := tc.ConnectionState()
			return &st
		}
		u, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		nc = u.NetConn()
	}
}

// outWriter and hpackWriter let the framer and the HPACK encoder append, under mu.
type outWriter conn

func (w *outWriter) Write(p []byte) (int, error) { w.out = append(w.out, p...); return len(p), nil }

type hpackWriter conn

func (w *hpackWriter) Write(p []byte) (int, error) { w.hbuf = append(w.hbuf, p...); return len(p), nil }

func (c *conn) logf(format string, args ...any) {
	if c.srv.ErrorLog != nil {
		c.srv.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

// serve runs the connection: it reads and handles frames until the connection fails or
// ends, then waits for the writer and every handler.
func (c *conn) serve() {
	go c.writeLoop()
	c.mu.Lock()
	c.wfr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.maxStreams},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.maxHeader},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: streamWindow},
	)
	c.wfr.WriteWindowUpdate(0, connWindow-65535)
	c.mu.Unlock()
	c.wake()
	if c.idleTimeout > 0 {
		c.mu.Lock()
		c.idleTimer = time.AfterFunc(c.idleTimeout, c.onIdle)
		c.mu.Unlock()
	}

	err := c.readFrames()

	c.mu.Lock()
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	var ce http2.ConnectionError
	toldWhy := false
	if errors.As(err, &ce) && c.dead == nil {
		// Tell the client why, if it still listens.
		c.wfr.WriteGoAway(c.maxID, http2.ErrCode(ce), nil)
		c.goingAway = true
		toldWhy = true
	}
	c.fail(err)
	c.mu.Unlock()
	c.wake()
	// The writer sends what is queued (the GOAWAY above, say), bounded in time if the
	// client does not read.
	c.nc.SetWriteDeadline(time.Now().Add(goAwayLinger))
	<-c.writeDone
	if toldWhy {
		c.drain()
	}
	c.nc.Close()
	c.mu.Lock()
	for c.running > 0 {
		c.wait()
	}
	c.mu.Unlock()
}

// drain ends the connection's sending side and reads (and drops) what the client still
// sends, for goAwayLinger and up to drainLimit bytes: closing a socket with unread data
// resets it, and the reset can destroy the GOAWAY before the client has read it.
func (c *conn) drain() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(goAwayLinger))
	io.CopyN(io.Discard, c.nc, drainLimit)
}

// drainLimit is the most drain reads.
const drainLimit = 1 << 20

// wait waits for cond. It is called with mu held.
func (c *conn) wait() {
	c.waiters++
	c.cond.Wait()
	c.waiters--
}

// fail ends the connection with err: every stream is reset and every waiter woken. It
// is called with mu held.
func (c *conn) fail(err error) {
	if c.dead != nil {
		return
	}
	if err == nil || errors.Is(err, io.EOF) || errors.As(err, new(http2.ConnectionError)) {
		err = errConnClosed
	}
	c.dead = err
	for _, st := range c.streams {
		st.abort(err)
	}
	clear(c.streams)
	for _, st := range c.queued {
		st.abort(err)
	}
	c.queued = nil
	c.cond.Broadcast()
}

// wake tells writeLoop there is output.
func (c *conn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// writeLoop writes the connection's output as it gathers, until the connection is dead
// and everything queued is written, or a write fails.
func (c *conn) writeLoop() {
	defer close(c.writeDone)
	var buf []byte
	for {
		<-c.kick
		// Let handlers that are ready to run add their frames first, so that they leave
		// in this write rather than each in its own.
		runtime.Gosched()
		c.mu.Lock()
		buf, c.out = c.out, buf[:0]
		dead, closing := c.dead != nil, c.closing
		c.mu.Unlock()
		if len(buf) > 0 {
			if c.writeTimeout > 0 && !dead {
				c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
			}
			_, err := c.nc.Write(buf)
			c.mu.Lock()
			if c.waiters > 0 {
				c.cond.Broadcast() // output space freed
			}
			if err != nil {
				c.fail(err)
				c.mu.Unlock()
				c.nc.SetReadDeadline(time.Now()) // stops the reader
				return
			}
			more := len(c.out) > 0
			c.mu.Unlock()
			if cap(buf) > maxKept {
				buf = nil // a burst's buffer is not kept for an idle connection
			}
			if more {
				c.wake()
				continue
			}
		}
		if dead {
			c.mu.Lock()
			more := len(c.out) > 0
			c.mu.Unlock()
			if !more {
				return
			}
			c.wake()
			continue
		}
		if closing {
			// All streams have ended after a GOAWAY: read (and drop) what the client
			// still sends for a moment, then the reader stops.
			c.nc.SetReadDeadline(time.Now().Add(goAwayLinger))
		}
	}
}

// queueControl is called after the reader queues a frame of its own; a client that does
// not read while making the server answer is cut off. It is called with mu held.
func (c *conn) queueControl() error {
	c.stats.maxOut = max(c.stats.maxOut, len(c.out))
	if len(c.out) > 2*maxQueued {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	return nil
}

// goAway starts a graceful close: a GOAWAY naming the last stream the client opened, and
// a close once every stream has ended.
func (c *conn) goAway() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.goingAway || c.dead != nil {
		return
	}
	c.goingAway = true
	c.wfr.WriteGoAway(c.maxID, http2.ErrCodeNo, nil)
	c.maybeClose()
	c.wake()
}

// maybeClose marks a connection that has said GOAWAY and has no stream left to close once
// its output is written. It is called with mu held.
func (c *conn) maybeClose() {
	if c.goingAway && len(c.streams) == 0 && c.running == 0 && !c.closing {
		c.closing = true
		c.wake()
	}
}

// onIdle closes the connection gracefully if it has had no stream for IdleTimeout.
func (c *conn) onIdle() {
	c.mu.Lock()
	if c.dead != nil {
		c.mu.Unlock()
		return
	}
	idle := time.Since(c.lastActive)
	busy := len(c.streams) > 0 || c.running > 0
	if busy || idle < c.idleTimeout {
		wait := c.idleTimeout
		if !busy {
			wait -= idle
		}
		c.idleTimer.Reset(wait)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.goAway()
}

// readFrames reads and handles frames until an error ends the connection.
func (c *conn) readFrames() error {
	var se http2.StreamError // one for the connection: errors.As makes it escape
	for first := true; ; first = false {
		f, err := c.readFrame()
		if err != nil && errors.As(err, &se) && !first {
			if err := c.streamError(se); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return c.frameError(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); first && (!ok || sf.IsAck()) {
			return http2.ConnectionError(http2.ErrCodeProtocol) // the preface ends with SETTINGS
		}
		if err := c.handleFrame(f); err != nil {
			return err
		}
	}
}

// readFrame reads the next frame, or the next header block whole.
func (c *conn) readFrame() (http2.Frame, error) {
	c.consumed, c.consumedHdr = 1, 0
	f, err := c.fr.ReadFrame()
	c.stats.frames++
	if hf, ok := f.(*http2.HeadersFrame); ok && err == nil {
		f, err = c.readHeaderBlock(hf)
		c.consumed, c.consumedHdr = c.block.frames, c.block.size
		c.stats.frames += int64(c.block.frames - 1)
	}
	return f, err
}

// waste counts the frame (or header block) just read as making no progress: nothing
// for a handler, nothing a handler waits for. Empty DATA and CONTINUATION frames, PING,
// SETTINGS, PRIORITY, RST_STREAM, WINDOW_UPDATE and unknown frames, and header blocks
// that start no request all cost the server work; a client that sends more than
// maxIdleFrames of them, or more than idleHeaderLists header lists' worth of such
// blocks, between two steps of progress is cut off. It is called with mu held.
func (c *conn) waste() error {
	c.idle += c.consumed
	c.idleHeader += c.consumedHdr
	if c.idle > maxIdleFrames || c.idleHeader > idleHeaderLists*int64(c.maxHeader) {
		return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
	}
	return nil
}

// progress records a step of progress: a request started, request body received or
// ended, response headers or data sent. It is called with mu held.
func (c *conn) progress() {
	c.idle, c.idleHeader = 0, 0
	c.stats.progress++
}

// frameError maps a read error to the connection error to report.
func (c *conn) frameError(err error) error {
	if errors.Is(err, http2.ErrFrameTooLarge) {
		return http2.ConnectionError(http2.ErrCodeFrameSize)
	}
	return err
}

// streamError resets the stream a frame was invalid for. A new stream ID counts as used.
func (c *conn) streamError(se http2.StreamError) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if se.StreamID%2 == 1 && se.StreamID > c.maxID {
		c.maxID = se.StreamID
	}
	c.resetStream(se.StreamID, se.Code, errClientReset)
	if err := c.waste(); err != nil {
		return err
	}
	return c.queueControl()
}

// resetStream sends RST_STREAM for id and ends the stream if it is open. It is called
// with mu held.
func (c *conn) resetStream(id uint32, code http2.ErrCode, cause error) {
	c.wfr.WriteRSTStream(id, code)
	c.wake()
	if st := c.streams[id]; st != nil {
		st.abort(cause)
		c.closeStream(st)
	}
}

// closeStream removes an ended stream and returns its unread body bytes to the
// connection window. It is called with mu held.
func (c *conn) closeStream(st *stream) {
	if c.streams[st.id] != st {
		return
	}
	delete(c.streams, st.id)
	st.closed = true
	c.returnConnWindow(int64(len(st.body) - st.bodyOff))
	st.body, st.bodyOff = nil, 0
	if len(c.streams) == 0 {
		c.lastActive = time.Now()
	}
	st.stopTimers()
	c.maybeClose()
}

// returnConnWindow gives n consumed bytes back to the client's connection window, in
// batches. It is called with mu held.
func (c *conn) returnConnWindow(n int64) {
	if n <= 0 || c.dead != nil {
		return
	}
	c.refund += n
	if c.refund >= connWindow/4 {
		c.wfr.WriteWindowUpdate(0, uint32(c.refund))
		c.recvWindow += c.refund
		c.refund = 0
		c.wake()
	}
}

func (c *conn) handleFrame(f http2.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead != nil {
		return c.dead
	}
	var err error
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		err = c.onHeaders(f)
	case *http2.DataFrame:
		err = c.onData(f)
	default:
		// Everything else is control: see waste.
		err = c.waste()
	}
	if err != nil {
		return err
	}
	switch f := f.(type) {
	case *http2.MetaHeadersFrame, *http2.DataFrame:
	case *http2.SettingsFrame:
		err = c.onSettings(f)
	case *http2.WindowUpdateFrame:
		err = c.onWindowUpdate(f)
	case *http2.PingFrame:
		if !f.IsAck() {
			c.wfr.WritePing(true, f.Data)
			c.wake()
		}
	case *http2.RSTStreamFrame:
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
		}
		if st := c.streams[f.StreamID]; st != nil {
			st.abort(errClientReset)
			c.closeStream(st)
		}
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			c.resetStream(f.StreamID, http2.ErrCodeProtocol, errClientReset)
		}
	case *http2.GoAwayFrame:
		// The client opens no more streams; those under way are served.
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	case *http2.ContinuationFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // readHeaderBlock reads valid ones
	default:
		// Unknown frame types are ignored.
	}
	if err != nil {
		return err
	}
	return c.queueControl()
}

func (c *conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	window := int64(-1)
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingHeaderTableSize:
			c.henc.SetMaxDynamicTableSizeLimit(s.Val)
		case http2.SettingInitialWindowSize:
			window = int64(s.Val) // applied once, below: a frame may repeat it thousands of times
		case http2.SettingMaxFrameSize:
			c.peerFrame = int(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if delta := window - c.peerWindow; window >= 0 && delta != 0 {
		c.peerWindow = window
		for _, st := range c.streams {
			st.sendWindow += delta
			if st.sendWindow > maxWindow {
				return http2.ConnectionError(http2.ErrCodeFlowControl)
			}
		}
		if delta > 0 && c.waiters > 0 {
			c.cond.Broadcast()
		}
	}
	c.wfr.WriteSettingsAck()
	c.wake()
	return nil
}

func (c *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	} else if st := c.streams[f.StreamID]; st != nil {
		st.sendWindow += int64(f.Increment)
		if st.sendWindow > maxWindow {
			c.resetStream(st.id, http2.ErrCodeFlowControl, errClientReset)
			return nil
		}
	} else if f.StreamID > c.maxID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
	}
	if c.waiters > 0 {
		c.cond.Broadcast()
	}
	return nil
}

func (c *conn) onData(f *http2.DataFrame) error {
	n := int64(f.Length) // padding included: all of it counts against the windows
	if n > c.recvWindow {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= n
	st := c.streams[f.StreamID]
	if st == nil || st.remoteDone {
		if f.StreamID > c.maxID {
			return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
		}
		c.returnConnWindow(n)
		c.resetStream(f.StreamID, http2.ErrCodeStreamClosed, errStreamClosed)
		return c.waste()
	}
	if n > st.recvWindow {
		c.returnConnWindow(n)
		c.resetStream(st.id, http2.ErrCodeFlowControl, errClientReset)
		return c.waste()
	}
	st.recvWindow -= n
	data := f.Data()
	st.received += int64(len(data))
	if st.declared >= 0 && st.received > st.declared {
		c.returnConnWindow(n)
		c.resetStream(st.id, http2.ErrCodeProtocol, errClientReset)
		return c.waste()
	}
	// Body bytes for the handler, or the end of the body, are progress; padding alone,
	// an empty frame, or bytes for a body the handler closed are not.
	if len(data) > 0 && !st.bodyClosed || f.StreamEnded() {
		c.progress()
	} else if err := c.waste(); err != nil {
		return err
	}
	// Padding and bytes for a body nobody will read go straight back.
	pad := n - int64(len(data))
	if st.bodyClosed {
		pad = n
	} else if len(data) > 0 {
		st.body = append(st.body, data...)
		st.wakeReader()
	}
	if pad > 0 {
		c.returnConnWindow(pad)
		st.returnWindow(pad)
	}
	if f.StreamEnded() {
		return c.endOfBody(st, nil)
	}
	return nil
}

// endOfBody records the client's END_STREAM, with its trailers if any. It is called
// with mu held.
func (c *conn) endOfBody(st *stream, trailer http.Header) error {
	if st.declared >= 0 && st.received != st.declared {
		c.resetStream(st.id, http2.ErrCodeProtocol, errClientReset)
		return nil
	}
	st.remoteDone = true
	if st.req.Trailer != nil {
		// Copied into the request by the goroutine that reads the body to its end, as
		// net/http does: the handler may be reading the Trailer map meanwhile.
		st.trailer = trailer
	}
	if st.bodyErr == nil {
		st.bodyErr = io.EOF
	}
	st.stopReadTimer()
	st.wakeReader()
	if st.localDone {
		c.closeStream(st)
	}
	return nil
}

func (c *conn) onHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		if id > c.maxID {
			c.maxID = id
		}
		c.resetStream(id, http2.ErrCodeProtocol, errClientReset)
		return c.waste()
	}
	if st := c.streams[id]; st != nil {
		// Trailers.
		if st.remoteDone {
			c.resetStream(id, http2.ErrCodeStreamClosed, errStreamClosed)
			return c.waste()
		}
		if !f.StreamEnded() || len(f.PseudoFields()) > 0 || f.Truncated {
			c.resetStream(id, http2.ErrCodeProtocol, errClientReset)
			return c.waste()
		}
		trailer, ok := trailerFields(f)
		if !ok {
			c.resetStream(id, http2.ErrCodeProtocol, errClientReset)
			return c.waste()
		}
		c.progress()
		return c.endOfBody(st, trailer)
	}
	if id <= c.maxID {
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	}
	c.maxID = id
	if c.goingAway {
		return c.waste() // past the last stream the GOAWAY promised to serve
	}
	size := c.block.size
	if f.Truncated {
		size = 0 // the 431 keeps none of it
	}
	if uint32(len(c.streams)) >= c.maxStreams || c.heldHeader+size > heldHeaderLists*int64(c.maxHeader) {
		c.wfr.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		c.wake()
		return c.waste()
	}
	st, code := c.newStream(f)
	if code != http2.ErrCodeNo {
		c.wfr.WriteRSTStream(id, code)
		c.wake()
		return c.waste()
	}
	if st.headerTooLarge {
		// Answered 431, but the decoding was work for nothing.
		if err := c.waste(); err != nil {
			return err
		}
	} else {
		c.progress()
	}
	c.streams[id] = st
	st.headerSize = size
	c.heldHeader += size
	if f.StreamEnded() {
		st.remoteDone = true
		st.bodyErr = io.EOF
	}
	if c.running >= int(c.maxStreams) {
		// Handlers of streams the client has already reset are still running.
		if len(c.queued) >= maxQueuedHandlers*int(c.maxStreams) {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		c.queued = append(c.queued, st)
		return nil
	}
	c.startHandler(st)
	return nil
}

// startHandler runs st's handler. It is called with mu held.
func (c *conn) startHandler(st *stream) {
	c.running++
	st.startTimers()
	c.srv.run(st)
}

// runHandler runs the handler of one stream and finishes its response.
func (c *conn) runHandler(st *stream) {
	reusable := false // the stream, once its handler is done (stream.reusableLocked)
	rw := &st.rw
	*rw = responseWriter{st: st, c: c}
	defer func() {
		p := recover()
		defer func() {
			rw.release()
			if reusable {
				st.release()
			}
		}()
		if p != nil {
			if p != http.ErrAbortHandler {
				c.logf("http2: panic serving %v: %v\n%s", c.remote, p, debug.Stack())
			}
			c.mu.Lock()
			c.resetStream(st.id, http2.ErrCodeInternal, errStreamClosed)
			c.mu.Unlock()
		} else {
			rw.finish()
		}
		quiet := st.ctx.Quiet()
		st.ctx.Cancel(errStreamClosed)
		c.mu.Lock()
		c.running--
		c.heldHeader -= st.headerSize
		if !st.remoteDone && !st.closed && c.streams[st.id] == st {
			// The response is complete and the body unread: tell the client to stop.
			c.resetStream(st.id, http2.ErrCodeNo, errStreamClosed)
		}
		for len(c.queued) > 0 && c.running < int(c.maxStreams) && c.dead == nil {
			next := c.queued[0]
			c.queued = c.queued[1:]
			if !next.closed {
				c.startHandler(next)
			} else {
				c.heldHeader -= next.headerSize
			}
		}
		c.maybeClose()
		if c.waiters > 0 {
			c.cond.Broadcast()
		}
		reusable = p == nil && quiet && st.reusableLocked()
		c.mu.Unlock()
	}()
	if st.headerTooLarge {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
		rw.WriteString("431 Request Header Fields Too Large")
		return
	}
	if st.req.Method == http.MethodOptions && st.req.RequestURI == "*" {
		// A question about the server, not a resource: answered here, as net/http and
		// h1server answer it, so that no handler has to know the form.
		rw.Header().Set("Content-Length", "0")
		rw.WriteHeader(http.StatusOK)
		return
	}
	c.srv.Handler.ServeHTTP(rw, st.req)
}
