package logs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwl "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// The limits of the API Reference.
const (
	maxDescribe   = 50    // DescribeLogGroups, DescribeLogStreams: limit and its default
	maxEvents     = 10000 // GetLogEvents, FilterLogEvents: limit and its default; PutLogEvents: events a batch
	maxBatchBytes = 1048576
	eventOverhead = 26 // bytes counted per event of a batch
	maxFuture     = 2 * time.Hour
	maxPast       = 14 * 24 * time.Hour
	maxBatchSpan  = 24 * time.Hour
)

// retentionDays are the values PutRetentionPolicy takes.
var retentionDays = []int32{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// CreateLogGroup creates a log group (the STANDARD class; tags and KMS keys are not kept).
func (s *Service) CreateLogGroup(_ context.Context, in *cwl.CreateLogGroupInput) (*cwl.CreateLogGroupOutput, error) {
	if err := s.CreateGroup(aws.ToString(in.LogGroupName)); err != nil {
		return nil, err
	}
	return &cwl.CreateLogGroupOutput{}, nil
}

// DeleteLogGroup deletes a log group with its streams and events.
func (s *Service) DeleteLogGroup(_ context.Context, in *cwl.DeleteLogGroupInput) (*cwl.DeleteLogGroupOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := aws.ToString(in.LogGroupName)
	if _, ok := s.groups[name]; !ok {
		return nil, groupNotFound()
	}
	delete(s.groups, name)
	return &cwl.DeleteLogGroupOutput{}, nil
}

// DescribeLogGroups lists the log groups by name.
func (s *Service) DescribeLogGroups(_ context.Context, in *cwl.DescribeLogGroupsInput) (*cwl.DescribeLogGroupsOutput, error) {
	prefix, pattern := aws.ToString(in.LogGroupNamePrefix), aws.ToString(in.LogGroupNamePattern)
	if prefix != "" && pattern != "" {
		return nil, invalidParameter("logGroupNamePrefix and logGroupNamePattern are mutually exclusive")
	}
	var names []string
	for _, id := range in.LogGroupIdentifiers {
		names = append(names, s.groupName(id))
	}
	s.mu.Lock()
	var all []types.LogGroup
	for _, g := range s.groups {
		if !strings.HasPrefix(g.name, prefix) || !strings.Contains(g.name, pattern) ||
			len(names) > 0 && !slices.Contains(names, g.name) {
			continue
		}
		lg := types.LogGroup{
			LogGroupName: aws.String(g.name),
			Arn:          aws.String(s.groupARN(g.name) + ":*"),
			CreationTime: aws.Int64(g.created),
		}
		if pattern == "" {
			lg.LogGroupArn = aws.String(s.groupARN(g.name))
			lg.LogGroupClass = types.LogGroupClassStandard
			lg.MetricFilterCount = aws.Int32(0)
			lg.StoredBytes = aws.Int64(0)
			if g.retention > 0 {
				lg.RetentionInDays = aws.Int32(g.retention)
			}
		}
		all = append(all, lg)
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b types.LogGroup) int { return strings.Compare(*a.LogGroupName, *b.LogGroupName) })
	page, next, err := paginate(all, in.Limit, maxDescribe, in.NextToken)
	if err != nil {
		return nil, err
	}
	return &cwl.DescribeLogGroupsOutput{LogGroups: page, NextToken: next}, nil
}

// PutRetentionPolicy sets how many days a group's events are kept: older ones are no longer
// returned.
func (s *Service) PutRetentionPolicy(_ context.Context, in *cwl.PutRetentionPolicyInput) (*cwl.PutRetentionPolicyOutput, error) {
	days := aws.ToInt32(in.RetentionInDays)
	if !slices.Contains(retentionDays, days) {
		return nil, invalidParameter("retentionInDays %d: want one of %v", days, retentionDays)
	}
	return &cwl.PutRetentionPolicyOutput{}, s.withGroup(aws.ToString(in.LogGroupName), func(g *group) { g.retention = days })
}

// DeleteRetentionPolicy keeps a group's events for ever (until the per-stream bound).
func (s *Service) DeleteRetentionPolicy(_ context.Context, in *cwl.DeleteRetentionPolicyInput) (*cwl.DeleteRetentionPolicyOutput, error) {
	return &cwl.DeleteRetentionPolicyOutput{}, s.withGroup(aws.ToString(in.LogGroupName), func(g *group) { g.retention = 0 })
}

func (s *Service) withGroup(name string, f func(*group)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[name]
	if !ok {
		return groupNotFound()
	}
	f(g)
	return nil
}

// CreateLogStream creates a log stream.
func (s *Service) CreateLogStream(_ context.Context, in *cwl.CreateLogStreamInput) (*cwl.CreateLogStreamOutput, error) {
	if err := s.CreateStream(aws.ToString(in.LogGroupName), aws.ToString(in.LogStreamName)); err != nil {
		return nil, err
	}
	return &cwl.CreateLogStreamOutput{}, nil
}

// DeleteLogStream deletes a log stream and its events.
func (s *Service) DeleteLogStream(_ context.Context, in *cwl.DeleteLogStreamInput) (*cwl.DeleteLogStreamOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[aws.ToString(in.LogGroupName)]
	if !ok {
		return nil, groupNotFound()
	}
	if _, ok := g.streams[aws.ToString(in.LogStreamName)]; !ok {
		return nil, streamNotFound()
	}
	delete(g.streams, aws.ToString(in.LogStreamName))
	return &cwl.DeleteLogStreamOutput{}, nil
}

// DescribeLogStreams lists a group's streams by name (or by their last event's time, with
// orderBy LastEventTime), ascending unless descending is set.
func (s *Service) DescribeLogStreams(_ context.Context, in *cwl.DescribeLogStreamsInput) (*cwl.DescribeLogStreamsOutput, error) {
	name, err := s.identify(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	prefix := aws.ToString(in.LogStreamNamePrefix)
	switch in.OrderBy {
	case "", types.OrderByLogStreamName:
	case types.OrderByLastEventTime:
		if prefix != "" {
			return nil, invalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
		}
	default:
		return nil, invalidParameter("orderBy %q: want LogStreamName or LastEventTime", in.OrderBy)
	}
	s.mu.Lock()
	g, ok := s.groups[name]
	if !ok {
		s.mu.Unlock()
		return nil, groupNotFound()
	}
	var all []types.LogStream
	for _, st := range g.streams {
		if !strings.HasPrefix(st.name, prefix) {
			continue
		}
		ls := types.LogStream{
			LogStreamName: aws.String(st.name),
			Arn:           aws.String(s.groupARN(g.name) + ":log-stream:" + st.name),
			CreationTime:  aws.Int64(st.created),
			//lint:ignore SA1019 CloudWatch Logs still sends the member, always 0, and so does ecslocal
			StoredBytes: aws.Int64(0),
		}
		if st.ingestion != 0 {
			ls.FirstEventTimestamp, ls.LastEventTimestamp, ls.LastIngestionTime = aws.Int64(st.first), aws.Int64(st.last), aws.Int64(st.ingestion)
		}
		all = append(all, ls)
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b types.LogStream) int {
		if in.OrderBy == types.OrderByLastEventTime {
			if c := cmp.Compare(aws.ToInt64(a.LastEventTimestamp), aws.ToInt64(b.LastEventTimestamp)); c != 0 {
				return c
			}
		}
		return strings.Compare(*a.LogStreamName, *b.LogStreamName)
	})
	if aws.ToBool(in.Descending) {
		slices.Reverse(all)
	}
	page, next, err := paginate(all, in.Limit, maxDescribe, in.NextToken)
	if err != nil {
		return nil, err
	}
	return &cwl.DescribeLogStreamsOutput{LogStreams: page, NextToken: next}, nil
}

// PutLogEvents appends a batch to a stream. The batch's events must be in chronological
// order and span at most 24 hours; events more than 2 hours ahead, more than 14 days behind
// or older than the group's retention are rejected (RejectedLogEventsInfo, whose end indexes
// are exclusive) and the others stored.
func (s *Service) PutLogEvents(_ context.Context, in *cwl.PutLogEventsInput) (*cwl.PutLogEventsOutput, error) {
	evs := in.LogEvents
	if len(evs) == 0 {
		return nil, invalidParameter("logEvents: at least one event")
	}
	if len(evs) > maxEvents {
		return nil, invalidParameter("logEvents: at most %d events a batch, not %d", maxEvents, len(evs))
	}
	size := 0
	for i, e := range evs {
		if aws.ToString(e.Message) == "" || e.Timestamp == nil {
			return nil, invalidParameter("logEvents[%d]: an event needs a message of at least one character and a timestamp", i)
		}
		size += len(*e.Message) + eventOverhead
		if i > 0 && *e.Timestamp < *evs[i-1].Timestamp {
			return nil, invalidParameter("Log events in a single PutLogEvents request must be in chronological order.")
		}
	}
	if size > maxBatchBytes {
		return nil, invalidParameter("Upload too large: %d bytes exceeds the limit of %d", size, maxBatchBytes)
	}
	if *evs[len(evs)-1].Timestamp-*evs[0].Timestamp > maxBatchSpan.Milliseconds() {
		return nil, invalidParameter("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.")
	}
	now := s.nowMillis()
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[aws.ToString(in.LogGroupName)]
	if !ok {
		return nil, groupNotFound()
	}
	st, ok := g.streams[aws.ToString(in.LogStreamName)]
	if !ok {
		return nil, streamNotFound()
	}
	var rejected types.RejectedLogEventsInfo
	reject := false
	for i, e := range evs {
		ts := *e.Timestamp
		switch {
		case ts > now+maxFuture.Milliseconds():
			if rejected.TooNewLogEventStartIndex == nil {
				rejected.TooNewLogEventStartIndex = aws.Int32(int32(i))
			}
		case ts < now-maxPast.Milliseconds():
			rejected.TooOldLogEventEndIndex = aws.Int32(int32(i + 1))
		case !g.live(event{timestamp: ts}, now):
			rejected.ExpiredLogEventEndIndex = aws.Int32(int32(i + 1))
		default:
			s.appendLocked(g, st, ts, now, *e.Message)
			continue
		}
		reject = true
	}
	out := &cwl.PutLogEventsOutput{}
	if reject {
		out.RejectedLogEventsInfo = &rejected
	}
	return out, nil
}

// GetLogEvents reads one stream's events, oldest first within the page. Without a token the
// page is the stream's first events (startFromHead) or its last (the default); the tokens
// are f/N and b/N, N being the position in the stream where the next page starts or ends.
// At either end of the stream the token passed in comes back.
func (s *Service) GetLogEvents(_ context.Context, in *cwl.GetLogEventsInput) (*cwl.GetLogEventsOutput, error) {
	name, err := s.identify(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	limit, err := limitOf(in.Limit, maxEvents)
	if err != nil {
		return nil, err
	}
	forward := aws.ToBool(in.StartFromHead)
	pos := int64(-1) // no token
	if tok := aws.ToString(in.NextToken); tok != "" {
		dir, n, ok := strings.Cut(tok, "/")
		p, perr := strconv.ParseInt(n, 10, 64)
		if !ok || perr != nil || p < 0 || dir != "f" && dir != "b" {
			return nil, invalidParameter("The specified nextToken is invalid.")
		}
		forward, pos = dir == "f", p
	}
	start, end := aws.ToInt64(in.StartTime), in.EndTime
	now := s.nowMillis()
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[name]
	if !ok {
		return nil, groupNotFound()
	}
	st, ok := g.streams[aws.ToString(in.LogStreamName)]
	if !ok {
		return nil, streamNotFound()
	}
	// The positions (in the stream) of the events in the time range.
	var inRange []int64
	for i, e := range st.events {
		if e.timestamp < start || end != nil && e.timestamp >= *end || !g.live(e, now) {
			continue
		}
		inRange = append(inRange, st.dropped+int64(i))
	}
	var sel []int64
	switch {
	case forward:
		i := 0
		if pos >= 0 {
			i, _ = slices.BinarySearch(inRange, pos)
		}
		sel = inRange[i:min(i+limit, len(inRange))]
	default:
		j := len(inRange)
		if pos >= 0 {
			j, _ = slices.BinarySearch(inRange, pos)
		}
		sel = inRange[max(0, j-limit):j]
	}
	out := &cwl.GetLogEventsOutput{Events: []types.OutputLogEvent{}}
	for _, p := range sel {
		e := st.events[p-st.dropped]
		out.Events = append(out.Events, types.OutputLogEvent{Timestamp: aws.Int64(e.timestamp), IngestionTime: aws.Int64(e.ingestion), Message: aws.String(e.message)})
	}
	fwd, back := pos, pos
	if len(sel) > 0 {
		fwd, back = sel[len(sel)-1]+1, sel[0]
	} else if pos < 0 {
		fwd, back = st.dropped+int64(len(st.events)), st.dropped
	}
	out.NextForwardToken = aws.String("f/" + strconv.FormatInt(fwd, 10))
	out.NextBackwardToken = aws.String("b/" + strconv.FormatInt(back, 10))
	return out, nil
}

// FilterLogEvents searches a group's events (of the streams named, or whose names start with
// a prefix, or all) in a time range (both ends included) with a filter pattern, interleaved
// by timestamp: oldest first, or newest first when startFromHead is false.
func (s *Service) FilterLogEvents(_ context.Context, in *cwl.FilterLogEventsInput) (*cwl.FilterLogEventsOutput, error) {
	name, err := s.identify(in.LogGroupName, in.LogGroupIdentifier)
	if err != nil {
		return nil, err
	}
	if len(in.LogStreamNames) > 0 && in.LogStreamNamePrefix != nil {
		return nil, invalidParameter("logStreamNames and logStreamNamePrefix are mutually exclusive")
	}
	limit, err := limitOf(in.Limit, maxEvents)
	if err != nil {
		return nil, err
	}
	pattern, err := ParsePattern(aws.ToString(in.FilterPattern))
	if err != nil {
		return nil, err
	}
	descending := in.StartFromHead != nil && !*in.StartFromHead
	var after *event // the last event of the previous page
	if tok := aws.ToString(in.NextToken); tok != "" {
		var e event
		var dir string
		if n, err := fmt.Sscanf(tok, "%d/%d/%s", &e.timestamp, &e.id, &dir); n != 3 || err != nil || dir != "a" && dir != "d" {
			return nil, invalidParameter("The specified nextToken is invalid.")
		}
		after, descending = &e, dir == "d"
	}
	order := func(a, b event) int {
		c := cmp.Or(cmp.Compare(a.timestamp, b.timestamp), cmp.Compare(a.id, b.id))
		if descending {
			return -c
		}
		return c
	}
	start, end := in.StartTime, in.EndTime
	prefix := aws.ToString(in.LogStreamNamePrefix)
	now := s.nowMillis()
	s.mu.Lock()
	g, ok := s.groups[name]
	if !ok {
		s.mu.Unlock()
		return nil, groupNotFound()
	}
	var found []event
	for _, st := range g.streams {
		if len(in.LogStreamNames) > 0 && !slices.Contains(in.LogStreamNames, st.name) || !strings.HasPrefix(st.name, prefix) {
			continue
		}
		for _, e := range st.events {
			if start != nil && e.timestamp < *start || end != nil && e.timestamp > *end || !g.live(e, now) ||
				after != nil && order(e, *after) <= 0 || !pattern.Match(e.message) {
				continue
			}
			found = append(found, e)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(found, order)
	out := &cwl.FilterLogEventsOutput{Events: []types.FilteredLogEvent{}, SearchedLogStreams: []types.SearchedLogStream{}}
	if len(found) > limit {
		last := found[limit-1]
		dir := "a"
		if descending {
			dir = "d"
		}
		out.NextToken = aws.String(fmt.Sprintf("%d/%d/%s", last.timestamp, last.id, dir))
		found = found[:limit]
	}
	for _, e := range found {
		out.Events = append(out.Events, types.FilteredLogEvent{
			EventId:       aws.String(strconv.FormatInt(e.id, 10)),
			Timestamp:     aws.Int64(e.timestamp),
			IngestionTime: aws.Int64(e.ingestion),
			LogStreamName: aws.String(e.streamName),
			Message:       aws.String(e.message),
		})
	}
	return out, nil
}

// identify returns the group a request names by logGroupName or logGroupIdentifier (a name
// or an ARN), exactly one of them.
func (s *Service) identify(name, identifier *string) (string, error) {
	switch {
	case name != nil && identifier != nil:
		return "", invalidParameter("logGroupName and logGroupIdentifier are mutually exclusive")
	case identifier != nil:
		return s.groupName(*identifier), nil
	case name != nil:
		return *name, nil
	}
	return "", invalidParameter("Either logGroupName or logGroupIdentifier must be specified")
}

// groupName is the name in a log group identifier: a name, or an ARN (with or without ":*").
func (s *Service) groupName(id string) string {
	if rest, ok := strings.CutPrefix(id, "arn:"); ok {
		if _, after, ok := strings.Cut(rest, ":log-group:"); ok {
			return strings.TrimSuffix(after, ":*")
		}
	}
	return id
}

func limitOf(limit *int32, most int) (int, error) {
	if limit == nil {
		return most, nil
	}
	if *limit < 1 || int(*limit) > most {
		return 0, invalidParameter("limit %d: want 1 to %d", *limit, most)
	}
	return int(*limit), nil
}

// paginate returns the page of all that token (an offset) starts, and the next page's token.
func paginate[T any](all []T, limit *int32, most int, token *string) ([]T, *string, error) {
	n, err := limitOf(limit, most)
	if err != nil {
		return nil, nil, err
	}
	from := 0
	if token != nil {
		if from, err = strconv.Atoi(*token); err != nil || from < 0 || from > len(all) {
			return nil, nil, invalidParameter("The specified nextToken is invalid.")
		}
	}
	to := min(from+n, len(all))
	var next *string
	if to < len(all) {
		next = aws.String(strconv.Itoa(to))
	}
	return append([]T{}, all[from:to]...), next, nil
}
