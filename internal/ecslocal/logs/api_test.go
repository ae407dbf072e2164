package logs_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cwl "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/logs"
	"github.com/gangway-ecs/gangway/internal/ecslocal/server"
)

// clock is a settable clock for the Service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// start serves a Service on 127.0.0.1 and returns it with the unmodified SDK client for it.
func start(t *testing.T) (*logs.Service, *cwl.Client, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	svc := logs.New(logs.Options{Now: clk.now})
	h := server.New(struct{}{}, struct{}{}, nil)
	h.SetLogs(svc)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := cwl.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      aws.AnonymousCredentials{},
		BaseEndpoint:     aws.String(srv.URL),
		RetryMaxAttempts: 3,
	})
	return svc, client, clk
}

func ms(t time.Time) *int64 { return aws.Int64(t.UnixMilli()) }

func put(t *testing.T, c *cwl.Client, group, stream string, at time.Time, msgs ...string) *cwl.PutLogEventsOutput {
	t.Helper()
	var evs []types.InputLogEvent
	for i, m := range msgs {
		evs = append(evs, types.InputLogEvent{Message: aws.String(m), Timestamp: ms(at.Add(time.Duration(i) * time.Millisecond))})
	}
	return ecslocaltest.Must(c.PutLogEvents(context.Background(), &cwl.PutLogEventsInput{
		LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: evs})).Get(t)
}

func messages[E types.FilteredLogEvent | types.OutputLogEvent](evs []E) []string {
	var out []string
	for _, e := range evs {
		switch e := any(e).(type) {
		case types.FilteredLogEvent:
			out = append(out, aws.ToString(e.LogStreamName)+": "+aws.ToString(e.Message))
		case types.OutputLogEvent:
			out = append(out, aws.ToString(e.Message))
		}
	}
	return out
}

func TestGroupsAndStreams(t *testing.T) {
	_, c, clk := start(t)
	ctx := context.Background()
	for _, g := range []string{"/ecs/app", "/ecs/proxy", "/aws/lambda/hook"} {
		ecslocaltest.Must(c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String(g)})).Get(t)
	}
	_, err := c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String("/ecs/app")})
	ecslocaltest.WantCode(t, err, "ResourceAlreadyExistsException")
	_, err = c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String("bad:name")})
	ecslocaltest.WantCode(t, err, "InvalidParameterException")

	groups := ecslocaltest.Must(c.DescribeLogGroups(ctx, &cwl.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/ecs/")})).Get(t)
	if len(groups.LogGroups) != 2 || aws.ToString(groups.LogGroups[0].LogGroupName) != "/ecs/app" ||
		aws.ToString(groups.LogGroups[0].Arn) != "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/app:*" ||
		aws.ToString(groups.LogGroups[0].LogGroupArn) != "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/app" {
		t.Fatalf("DescribeLogGroups /ecs/: %+v", groups.LogGroups)
	}
	// Pages of one.
	var names []string
	p := cwl.NewDescribeLogGroupsPaginator(c, &cwl.DescribeLogGroupsInput{Limit: aws.Int32(1)})
	for p.HasMorePages() {
		for _, g := range ecslocaltest.Must(p.NextPage(ctx)).Get(t).LogGroups {
			names = append(names, aws.ToString(g.LogGroupName))
		}
	}
	if want := []string{"/aws/lambda/hook", "/ecs/app", "/ecs/proxy"}; !slices.Equal(names, want) {
		t.Errorf("paged groups %v, want %v", names, want)
	}

	ecslocaltest.Must(c.PutRetentionPolicy(ctx, &cwl.PutRetentionPolicyInput{LogGroupName: aws.String("/ecs/app"), RetentionInDays: aws.Int32(30)})).Get(t)
	_, err = c.PutRetentionPolicy(ctx, &cwl.PutRetentionPolicyInput{LogGroupName: aws.String("/ecs/app"), RetentionInDays: aws.Int32(31)})
	ecslocaltest.WantCode(t, err, "InvalidParameterException")
	_, err = c.PutRetentionPolicy(ctx, &cwl.PutRetentionPolicyInput{LogGroupName: aws.String("/nope"), RetentionInDays: aws.Int32(30)})
	ecslocaltest.WantCode(t, err, "ResourceNotFoundException")
	g := ecslocaltest.Must(c.DescribeLogGroups(ctx, &cwl.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/ecs/app")})).Get(t).LogGroups[0]
	if aws.ToInt32(g.RetentionInDays) != 30 {
		t.Errorf("retention %v, want 30", g.RetentionInDays)
	}

	// Streams: b gets an event first, then a, so LastEventTime orders them b, a.
	for _, s := range []string{"app/app/2", "app/app/1", "other"} {
		ecslocaltest.Must(c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: aws.String("/ecs/app"), LogStreamName: aws.String(s)})).Get(t)
	}
	_, err = c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: aws.String("/ecs/app"), LogStreamName: aws.String("other")})
	ecslocaltest.WantCode(t, err, "ResourceAlreadyExistsException")
	_, err = c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: aws.String("/nope"), LogStreamName: aws.String("x")})
	ecslocaltest.WantCode(t, err, "ResourceNotFoundException")
	put(t, c, "/ecs/app", "app/app/2", clk.now(), "two")
	put(t, c, "/ecs/app", "app/app/1", clk.now().Add(time.Second), "one")

	streams := func(in *cwl.DescribeLogStreamsInput) []string {
		t.Helper()
		in.LogGroupName = aws.String("/ecs/app")
		var out []string
		for _, s := range ecslocaltest.Must(c.DescribeLogStreams(ctx, in)).Get(t).LogStreams {
			out = append(out, aws.ToString(s.LogStreamName))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   *cwl.DescribeLogStreamsInput
		want []string
	}{
		{"by name", &cwl.DescribeLogStreamsInput{}, []string{"app/app/1", "app/app/2", "other"}},
		{"by name, descending", &cwl.DescribeLogStreamsInput{Descending: aws.Bool(true)}, []string{"other", "app/app/2", "app/app/1"}},
		{"prefix", &cwl.DescribeLogStreamsInput{LogStreamNamePrefix: aws.String("app/")}, []string{"app/app/1", "app/app/2"}},
		{"last event, newest first", &cwl.DescribeLogStreamsInput{OrderBy: types.OrderByLastEventTime, Descending: aws.Bool(true)}, []string{"app/app/1", "app/app/2", "other"}},
		{"limit", &cwl.DescribeLogStreamsInput{Limit: aws.Int32(1)}, []string{"app/app/1"}},
	} {
		if got := streams(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("DescribeLogStreams %s: %v, want %v", tc.name, got, tc.want)
		}
	}
	_, err = c.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{LogGroupName: aws.String("/ecs/app"), OrderBy: types.OrderByLastEventTime, LogStreamNamePrefix: aws.String("app")})
	ecslocaltest.WantCode(t, err, "InvalidParameterException")
	s := ecslocaltest.Must(c.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{LogGroupIdentifier: aws.String("arn:aws:logs:us-east-1:000000000000:log-group:/ecs/app:*"), LogStreamNamePrefix: aws.String("app/app/1")})).Get(t).LogStreams[0]
	if aws.ToInt64(s.FirstEventTimestamp) != clk.now().Add(time.Second).UnixMilli() || aws.ToInt64(s.LastIngestionTime) != clk.now().UnixMilli() ||
		aws.ToString(s.Arn) != "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/app:log-stream:app/app/1" {
		t.Errorf("stream %+v", s)
	}

	ecslocaltest.Must(c.DeleteLogStream(ctx, &cwl.DeleteLogStreamInput{LogGroupName: aws.String("/ecs/app"), LogStreamName: aws.String("other")})).Get(t)
	ecslocaltest.Must(c.DeleteLogGroup(ctx, &cwl.DeleteLogGroupInput{LogGroupName: aws.String("/ecs/app")})).Get(t)
	_, err = c.DeleteLogGroup(ctx, &cwl.DeleteLogGroupInput{LogGroupName: aws.String("/ecs/app")})
	ecslocaltest.WantCode(t, err, "ResourceNotFoundException")
	_, err = c.DescribeLogStreams(ctx, &cwl.DescribeLogStreamsInput{LogGroupName: aws.String("/ecs/app")})
	ecslocaltest.WantCode(t, err, "ResourceNotFoundException")
}

func TestPutLogEvents(t *testing.T) {
	_, c, clk := start(t)
	ctx := context.Background()
	ecslocaltest.Must(c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String("g")})).Get(t)
	ecslocaltest.Must(c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s")})).Get(t)
	now := clk.now()
	ev := func(at time.Time, m string) types.InputLogEvent {
		return types.InputLogEvent{Timestamp: ms(at), Message: aws.String(m)}
	}
	putEvents := func(stream string, evs ...types.InputLogEvent) (*cwl.PutLogEventsOutput, error) {
		return c.PutLogEvents(ctx, &cwl.PutLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String(stream), LogEvents: evs})
	}
	for _, tc := range []struct {
		name string
		evs  []types.InputLogEvent
		code string
	}{
		{"out of order", []types.InputLogEvent{ev(now, "b"), ev(now.Add(-time.Second), "a")}, "InvalidParameterException"},
		{"over a day", []types.InputLogEvent{ev(now.Add(-25*time.Hour), "a"), ev(now, "b")}, "InvalidParameterException"},
		{"empty message", []types.InputLogEvent{ev(now, "")}, "InvalidParameterException"},
		{"too large", []types.InputLogEvent{ev(now, strings.Repeat("x", 1<<20))}, "InvalidParameterException"},
	} {
		_, err := putEvents("s", tc.evs...)
		ecslocaltest.WantCode(t, err, tc.code)
	}
	_, err := putEvents("nope", ev(now, "x"))
	ecslocaltest.WantCode(t, err, "ResourceNotFoundException")

	r := ecslocaltest.Must(putEvents("s", ev(now.Add(-15*24*time.Hour), "too old"))).Get(t).RejectedLogEventsInfo
	if r == nil || aws.ToInt32(r.TooOldLogEventEndIndex) != 1 || r.TooNewLogEventStartIndex != nil {
		t.Errorf("an event of 15 days ago: rejected %+v, want tooOldLogEventEndIndex 1", r)
	}
	r = ecslocaltest.Must(putEvents("s", ev(now, "ok"), ev(now.Add(3*time.Hour), "too new"))).Get(t).RejectedLogEventsInfo
	if r == nil || aws.ToInt32(r.TooNewLogEventStartIndex) != 1 || r.TooOldLogEventEndIndex != nil {
		t.Errorf("an event 3 h ahead: rejected %+v, want tooNewLogEventStartIndex 1", r)
	}
	got := messages(ecslocaltest.Must(c.GetLogEvents(ctx, &cwl.GetLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), StartFromHead: aws.Bool(true)})).Get(t).Events)
	if want := []string{"ok"}; !slices.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}

	// Retention: an event older than the group's retention is rejected as expired, and one
	// that ages past it is no longer returned.
	ecslocaltest.Must(c.PutRetentionPolicy(ctx, &cwl.PutRetentionPolicyInput{LogGroupName: aws.String("g"), RetentionInDays: aws.Int32(1)})).Get(t)
	r = ecslocaltest.Must(putEvents("s", ev(now.Add(-2*24*time.Hour), "expired"))).Get(t).RejectedLogEventsInfo
	if r == nil || aws.ToInt32(r.ExpiredLogEventEndIndex) != 1 {
		t.Errorf("an event of 2 days ago with 1 day's retention: rejected %+v, want expiredLogEventEndIndex 1", r)
	}
	clk.add(25 * time.Hour)
	got = messages(ecslocaltest.Must(c.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{LogGroupName: aws.String("g")})).Get(t).Events)
	if len(got) != 0 {
		t.Errorf("after the retention: %q, want none", got)
	}
}

func TestGetLogEventsTokens(t *testing.T) {
	_, c, clk := start(t)
	ctx := context.Background()
	ecslocaltest.Must(c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String("g")})).Get(t)
	ecslocaltest.Must(c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s")})).Get(t)
	var msgs []string
	for i := range 7 {
		msgs = append(msgs, fmt.Sprintf("m%d", i))
	}
	put(t, c, "g", "s", clk.now(), msgs...)
	get := func(in cwl.GetLogEventsInput) *cwl.GetLogEventsOutput {
		t.Helper()
		in.LogGroupName, in.LogStreamName = aws.String("g"), aws.String("s")
		return ecslocaltest.Must(c.GetLogEvents(ctx, &in)).Get(t)
	}
	// The default: the stream's last events.
	tail := get(cwl.GetLogEventsInput{Limit: aws.Int32(3)})
	if got := messages(tail.Events); !slices.Equal(got, []string{"m4", "m5", "m6"}) {
		t.Errorf("tail %v", got)
	}
	back := get(cwl.GetLogEventsInput{Limit: aws.Int32(3), NextToken: tail.NextBackwardToken})
	if got := messages(back.Events); !slices.Equal(got, []string{"m1", "m2", "m3"}) {
		t.Errorf("backward from the tail %v", got)
	}
	// From the head, forward, to the end: the last token comes back unchanged.
	var all []string
	in := cwl.GetLogEventsInput{Limit: aws.Int32(3), StartFromHead: aws.Bool(true)}
	for range 5 {
		out := get(in)
		all = append(all, messages(out.Events)...)
		if in.NextToken != nil && *out.NextForwardToken == *in.NextToken {
			break
		}
		in.NextToken = out.NextForwardToken
	}
	if !slices.Equal(all, msgs) {
		t.Errorf("forward pages %v, want %v", all, msgs)
	}
	// Time range: start included, end excluded.
	start := clk.now().Add(2 * time.Millisecond)
	if got := messages(get(cwl.GetLogEventsInput{StartTime: ms(start), EndTime: ms(start.Add(2 * time.Millisecond))}).Events); !slices.Equal(got, []string{"m2", "m3"}) {
		t.Errorf("range %v", got)
	}
	// The SDK's paginator stops at the repeated token.
	var paged []string
	p := cwl.NewGetLogEventsPaginator(c, &cwl.GetLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), StartFromHead: aws.Bool(true), Limit: aws.Int32(2)})
	for i := 0; p.HasMorePages() && i < 10; i++ {
		paged = append(paged, messages(ecslocaltest.Must(p.NextPage(ctx)).Get(t).Events)...)
	}
	if !slices.Equal(paged, msgs) {
		t.Errorf("paginator %v, want %v", paged, msgs)
	}
	_, err := c.GetLogEvents(ctx, &cwl.GetLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), NextToken: aws.String("x/1")})
	ecslocaltest.WantCode(t, err, "InvalidParameterException")
}

func TestFilterLogEvents(t *testing.T) {
	_, c, clk := start(t)
	ctx := context.Background()
	ecslocaltest.Must(c.CreateLogGroup(ctx, &cwl.CreateLogGroupInput{LogGroupName: aws.String("g")})).Get(t)
	for _, s := range []string{"proxy/proxy/t1", "proxy/proxy/t2", "app/app/t1"} {
		ecslocaltest.Must(c.CreateLogStream(ctx, &cwl.CreateLogStreamInput{LogGroupName: aws.String("g"), LogStreamName: aws.String(s)})).Get(t)
	}
	t0 := clk.now()
	put(t, c, "g", "proxy/proxy/t1", t0, "ready", "health check failed")               // t0, t0+1ms
	put(t, c, "g", "proxy/proxy/t2", t0.Add(500*time.Microsecond), "not ready: drain") // t0 (ms)
	put(t, c, "g", "app/app/t1", t0.Add(time.Millisecond), "GET / 500 error")          // t0+1ms
	put(t, c, "g", "proxy/proxy/t1", t0.Add(time.Hour), "an error later")

	filter := func(in cwl.FilterLogEventsInput) []string {
		t.Helper()
		in.LogGroupName = aws.String("g")
		var out []string
		p := cwl.NewFilterLogEventsPaginator(c, &in)
		for i := 0; p.HasMorePages() && i < 20; i++ {
			out = append(out, messages(ecslocaltest.Must(p.NextPage(ctx)).Get(t).Events)...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   cwl.FilterLogEventsInput
		want []string
	}{
		{"all, interleaved by time", cwl.FilterLogEventsInput{}, []string{
			"proxy/proxy/t1: ready", "proxy/proxy/t2: not ready: drain", "proxy/proxy/t1: health check failed", "app/app/t1: GET / 500 error", "proxy/proxy/t1: an error later"}},
		{"pattern", cwl.FilterLogEventsInput{FilterPattern: aws.String(`?"not ready" ?failed ?error`)}, []string{
			"proxy/proxy/t2: not ready: drain", "proxy/proxy/t1: health check failed", "app/app/t1: GET / 500 error", "proxy/proxy/t1: an error later"}},
		{"prefix", cwl.FilterLogEventsInput{LogStreamNamePrefix: aws.String("proxy/proxy/t2")}, []string{"proxy/proxy/t2: not ready: drain"}},
		{"names", cwl.FilterLogEventsInput{LogStreamNames: []string{"app/app/t1", "proxy/proxy/t2"}}, []string{"proxy/proxy/t2: not ready: drain", "app/app/t1: GET / 500 error"}},
		{"time range, both ends included", cwl.FilterLogEventsInput{StartTime: ms(t0.Add(time.Millisecond)), EndTime: ms(t0.Add(time.Hour))}, []string{
			"proxy/proxy/t1: health check failed", "app/app/t1: GET / 500 error", "proxy/proxy/t1: an error later"}},
		{"pages of one", cwl.FilterLogEventsInput{Limit: aws.Int32(1), FilterPattern: aws.String("error")}, []string{
			"app/app/t1: GET / 500 error", "proxy/proxy/t1: an error later"}},
		{"newest first, in pages", cwl.FilterLogEventsInput{Limit: aws.Int32(2), StartFromHead: aws.Bool(false), StartTime: ms(t0)}, []string{
			"proxy/proxy/t1: an error later", "app/app/t1: GET / 500 error", "proxy/proxy/t1: health check failed", "proxy/proxy/t2: not ready: drain", "proxy/proxy/t1: ready"}},
	} {
		if got := filter(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
	for _, in := range []cwl.FilterLogEventsInput{
		{LogGroupName: aws.String("g"), FilterPattern: aws.String(`{ $.level = "error" }`)},
		{LogGroupName: aws.String("g"), LogStreamNames: []string{"a"}, LogStreamNamePrefix: aws.String("a")},
		{LogGroupName: aws.String("g"), Limit: aws.Int32(10001)},
		{LogGroupName: aws.String("g"), NextToken: aws.String("garbage")},
		{LogGroupName: aws.String("g"), LogGroupIdentifier: aws.String("g")},
		{},
	} {
		_, err := c.FilterLogEvents(ctx, &in)
		ecslocaltest.WantCode(t, err, "InvalidParameterException")
	}
	_, err := c.FilterLogEvents(ctx, &cwl.FilterLogEventsInput{LogGroupName: aws.String("nope")})
	ecslocaltest.WantCode(t, err, "ResourceNotFoundException")
}

// Lines written to a stream become events; a group is created only when asked.
func TestOpenStream(t *testing.T) {
	svc, c, _ := start(t)
	ctx := context.Background()
	if _, err := svc.OpenStream("/ecs/missing", "p/c/1", false); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException: The specified log group does not exist.") {
		t.Fatalf("OpenStream of a missing group: %v", err)
	}
	w := ecslocaltest.Must(svc.OpenStream("/ecs/app", "app/app/1", true)).Get(t)
	fmt.Fprint(w, "first line\r\nsecond ")
	fmt.Fprint(w, "line\n\nlast, no newline")
	long := strings.Repeat("x", logs.MaxEventBytes+10)
	got := messages(ecslocaltest.Must(c.GetLogEvents(ctx, &cwl.GetLogEventsInput{LogGroupName: aws.String("/ecs/app"), LogStreamName: aws.String("app/app/1")})).Get(t).Events)
	if want := []string{"first line", "second line"}; !slices.Equal(got, want) {
		t.Errorf("before Close %q, want %q", got, want)
	}
	w.Close()
	w = ecslocaltest.Must(svc.OpenStream("/ecs/app", "app/app/1", true)).Get(t) // the same stream again
	fmt.Fprintln(w, long)
	w.Close()
	got = messages(ecslocaltest.Must(c.GetLogEvents(ctx, &cwl.GetLogEventsInput{LogGroupName: aws.String("/ecs/app"), LogStreamName: aws.String("app/app/1")})).Get(t).Events)
	if want := []string{"first line", "second line", "last, no newline", long[:logs.MaxEventBytes], "xxxxxxxxxx"}; !slices.Equal(got, want) {
		t.Errorf("after Close %d events, want %d", len(got), len(want))
	}
}

// A stream keeps its last MaxStreamEvents events.
func TestStreamBound(t *testing.T) {
	svc, c, _ := start(t)
	ctx := context.Background()
	w := ecslocaltest.Must(svc.OpenStream("g", "s", true)).Get(t)
	const n = logs.MaxStreamEvents + 5
	for i := range n {
		fmt.Fprintf(w, "line %d\n", i)
	}
	out := ecslocaltest.Must(c.GetLogEvents(ctx, &cwl.GetLogEventsInput{LogGroupName: aws.String("g"), LogStreamName: aws.String("s"), StartFromHead: aws.Bool(true)})).Get(t)
	if len(out.Events) != logs.MaxStreamEvents || aws.ToString(out.Events[0].Message) != "line 5" {
		t.Errorf("%d events from %q, want %d from \"line 5\"", len(out.Events), aws.ToString(out.Events[0].Message), logs.MaxStreamEvents)
	}
}
