// Package logs is ecslocal's Amazon CloudWatch Logs: log groups, log streams and their events,
// held in memory, written by the containers whose log driver is awslogs, by the Lambda
// functions' emulators and by PutLogEvents, and read with GetLogEvents and FilterLogEvents.
//
// Each exported method with the signature
//
//	func (*Service) Op(context.Context, *cloudwatchlogs.OpInput) (*cloudwatchlogs.OpOutput, error)
//
// is the CloudWatch Logs operation Op (awsJson1_1, X-Amz-Target Logs_20140328.Op); the
// server dispatches to it by name. Inputs and outputs are aws-sdk-go-v2's shapes, errors
// *wire.Error with the model's exception names.
//
// Memory is bounded per stream: a stream keeps its last MaxStreamEvents events, and no more
// than MaxStreamBytes of their messages; older events are dropped first, as if their
// retention had passed. Timestamps are milliseconds since the epoch, as on the wire.
package logs

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

// The bounds of one stream's events.
const (
	MaxStreamEvents = 10000
	MaxStreamBytes  = 8 << 20
	// MaxEventBytes is the largest message of one event (PutLogEvents: 1,048,576 bytes for
	// the batch, 26 bytes of overhead per event); a longer line is split, as the awslogs
	// driver splits it.
	MaxEventBytes = 256<<10 - 26
)

// Options configure a Service.
type Options struct {
	Region  string // us-east-1 when empty
	Account string // 000000000000 when empty
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Service holds the log groups. Its methods are safe for concurrent use.
type Service struct {
	region, account string
	now             func() time.Time

	mu     sync.Mutex
	groups map[string]*group
	seq    int64 // events stored so far: each event's ID
}

type group struct {
	name      string
	created   int64
	retention int32 // days; 0: never expire
	streams   map[string]*stream
}

type stream struct {
	name                   string
	created                int64
	first, last, ingestion int64 // timestamps of its first and last events, last ingestion
	events                 []event
	bytes                  int
	dropped                int64 // events dropped from the front: events[i] is the stream's event dropped+i
}

type event struct {
	id         int64
	timestamp  int64
	ingestion  int64
	message    string
	streamName string
}

// New returns a Service with no log groups.
func New(o Options) *Service {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Account == "" {
		o.Account = "000000000000"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{region: o.Region, account: o.Account, now: o.Now, groups: map[string]*group{}}
}

func (s *Service) nowMillis() int64 { return s.now().UnixMilli() }

// groupARN is a group's ARN as LogGroupArn has it; the Arn member adds ":*".
func (s *Service) groupARN(name string) string {
	return fmt.Sprintf("arn:aws:logs:%s:%s:log-group:%s", s.region, s.account, name)
}

var (
	groupNameRE  = regexp.MustCompile(`^[.\-_/#A-Za-z0-9]{1,512}$`)
	streamNameRE = regexp.MustCompile(`^[^:*]{1,512}$`)
)

func invalidParameter(format string, args ...any) *wire.Error {
	return wire.Errorf("InvalidParameterException", format, args...)
}

func groupNotFound() *wire.Error {
	return wire.Errorf("ResourceNotFoundException", "The specified log group does not exist.")
}

func streamNotFound() *wire.Error {
	return wire.Errorf("ResourceNotFoundException", "The specified log stream does not exist.")
}

// CreateGroup creates the log group name; one that exists is a ResourceAlreadyExistsException.
func (s *Service) CreateGroup(name string) error {
	if !groupNameRE.MatchString(name) {
		return invalidParameter("log group name %q: 1 to 512 of the characters a-z, A-Z, 0-9, '_', '-', '/', '.' and '#'", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[name]; ok {
		return wire.Errorf("ResourceAlreadyExistsException", "The specified log group already exists")
	}
	s.groups[name] = &group{name: name, created: s.nowMillis(), streams: map[string]*stream{}}
	return nil
}

// CreateStream creates the log stream name in group.
func (s *Service) CreateStream(groupName, name string) error {
	if !streamNameRE.MatchString(name) {
		return invalidParameter("log stream name %q: 1 to 512 characters, none of them ':' or '*'", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[groupName]
	if !ok {
		return groupNotFound()
	}
	if _, ok := g.streams[name]; ok {
		return wire.Errorf("ResourceAlreadyExistsException", "The specified log stream already exists")
	}
	g.streams[name] = &stream{name: name, created: s.nowMillis()}
	return nil
}

// appendLocked stores one event; the caller has checked its order and size.
func (s *Service) appendLocked(g *group, st *stream, timestamp, ingestion int64, msg string) {
	s.seq++
	st.events = append(st.events, event{id: s.seq, timestamp: timestamp, ingestion: ingestion, message: msg, streamName: st.name})
	st.bytes += len(msg)
	if st.first == 0 || timestamp < st.first {
		st.first = timestamp
	}
	st.last = max(st.last, timestamp)
	st.ingestion = ingestion
	n := 0
	for len(st.events)-n > MaxStreamEvents || st.bytes > MaxStreamBytes && len(st.events)-n > 1 {
		st.bytes -= len(st.events[n].message)
		n++
	}
	if n > 0 {
		st.events = slices.Delete(st.events, 0, n)
		st.dropped += int64(n)
	}
}

// live reports whether an event is within its group's retention at now.
func (g *group) live(e event, now int64) bool {
	return g.retention == 0 || e.timestamp >= now-int64(g.retention)*24*int64(time.Hour/time.Millisecond)
}

// OpenStream returns a writer whose every line becomes an event of the stream name in the
// group groupName, stamped with the time it was written; the stream is created when it does
// not exist, the group too when createGroup is set (else a missing group is a
// ResourceNotFoundException, as the awslogs driver reports it). Close writes a last line
// that has no newline.
func (s *Service) OpenStream(groupName, name string, createGroup bool) (io.WriteCloser, error) {
	if createGroup {
		if err := s.CreateGroup(groupName); err != nil && !isCode(err, "ResourceAlreadyExistsException") {
			return nil, err
		}
	}
	if err := s.CreateStream(groupName, name); err != nil && !isCode(err, "ResourceAlreadyExistsException") {
		return nil, err
	}
	return &lineWriter{s: s, group: groupName, stream: name}, nil
}

func isCode(err error, code string) bool {
	we, ok := err.(*wire.Error)
	return ok && we.Code == code
}

// lineWriter turns output into events, one a line.
type lineWriter struct {
	s             *Service
	group, stream string

	mu  sync.Mutex
	buf []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := slices.Index(w.buf, '\n')
		if i < 0 {
			break
		}
		w.put(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) >= MaxEventBytes {
		n := len(w.buf) - len(w.buf)%MaxEventBytes
		w.put(w.buf[:n])
		w.buf = w.buf[n:]
	}
	if len(w.buf) == 0 {
		w.buf = nil
	}
	return len(b), nil
}

func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.put(w.buf)
		w.buf = nil
	}
	return nil
}

// put stores one line, in events of at most MaxEventBytes; a line of a group or stream
// deleted meanwhile is dropped, as the awslogs driver drops what it cannot deliver.
func (w *lineWriter) put(line []byte) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return // CloudWatch Logs has no empty events
	}
	s := w.s
	now := s.nowMillis()
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[w.group]
	if !ok {
		return
	}
	st, ok := g.streams[w.stream]
	if !ok {
		return
	}
	for len(line) > 0 {
		n := min(len(line), MaxEventBytes)
		s.appendLocked(g, st, now, now, string(line[:n]))
		line = line[n:]
	}
}
