package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go/middleware"
)

// The wire codecs name members by rule (the Go field name, first letter lowered for JSON).
// These tests fill every member of the shapes ecslocal reads and writes with a value that is
// not the zero value, pass them through the unmodified SDK clients and the server, and
// compare: a member the codecs name, type or nest differently from the SDK's own
// serializers and deserializers comes back different.

// fill sets every member of v (depth-bounded, since some shapes nest themselves) to a
// non-zero value. Interface members (documents, unions) stay nil; maps are filled only when
// withMaps is set, since awsQuery inputs here have none.
func fill(v reflect.Value, depth int, withMaps bool) {
	if depth > 16 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1, withMaps)
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 5, 10, 11, 12, 345e6, time.UTC)))
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Anonymous || f.Name == "ResultMetadata" {
				continue
			}
			fill(v.Field(i), depth+1, withMaps)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Interface {
			return // a list of unions, like an interface member, stays unset
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), depth+1, withMaps)
		}
		v.Set(s)
	case reflect.Map:
		if !withMaps {
			return
		}
		m := reflect.MakeMap(v.Type())
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, depth+1, withMaps)
		m.SetMapIndex(reflect.ValueOf("k").Convert(v.Type().Key()), e)
		v.Set(m)
	case reflect.String:
		v.SetString(fmt.Sprintf("v%d", depth))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int32, reflect.Int64, reflect.Int:
		v.SetInt(int64(7 + depth))
	case reflect.Float64, reflect.Float32:
		v.SetFloat(1.5)
	}
}

// echo is an API whose every operation records its input and answers a filled output.
type echo struct {
	in any
}

// recorder builds, for an operation, a method value with the signature the dispatcher
// expects.
func recorder(e *echo, in, out reflect.Type) reflect.Value {
	fn := reflect.FuncOf([]reflect.Type{ctxType, in}, []reflect.Type{out, errorType}, false)
	return reflect.MakeFunc(fn, func(args []reflect.Value) []reflect.Value {
		e.in = args[1].Interface()
		o := reflect.New(out.Elem())
		fill(o.Elem(), 0, true)
		return []reflect.Value{o, reflect.Zero(errorType)}
	})
}

// dispatcherFor routes every known operation of client to a recorder.
func dispatcherFor(e *echo, client reflect.Type) dispatcher {
	d := newDispatcher(struct{}{}, client)
	methods := map[string]reflect.Value{}
	for i := range client.NumMethod() {
		m := client.Method(i)
		if d.known[m.Name] {
			methods[m.Name] = recorder(e, m.Type.In(2), m.Type.Out(0))
		}
	}
	d.lookup = func(op string) reflect.Value { return methods[op] }
	return d
}

// echoClients are the SDK clients of an echo server.
type echoClients struct {
	ecs  *ecs.Client
	elb  *elb.Client
	logs *cloudwatchlogs.Client
}

func newEchoServer(t *testing.T) (*echo, echoClients) {
	t.Helper()
	e := &echo{}
	ecsSvc := ecsService
	ecsSvc.d = dispatcherFor(e, reflect.TypeFor[*ecs.Client]())
	h := &Handler{
		ecs: ecsSvc,
		elb: dispatcherFor(e, reflect.TypeFor[*elb.Client]()),
		log: slog.New(slog.DiscardHandler),
	}
	h.SetLogs(struct{}{})
	h.logs.d = dispatcherFor(e, reflect.TypeFor[*cloudwatchlogs.Client]())
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  aws.AnonymousCredentials{},
		BaseEndpoint: aws.String(srv.URL),
		// The SDK now and then reports a response it was reading as "use of closed network
		// connection" when its transport's write loop closes a reused connection
		// (aws/aws-sdk-go-v2#2737); a retry is what a real client does about it.
		RetryMaxAttempts: 3,
	}
	return e, echoClients{ecs.NewFromConfig(cfg), elb.NewFromConfig(cfg), cloudwatchlogs.NewFromConfig(cfg)}
}

// equalShapes compares two SDK shapes, ignoring result metadata.
func equalShapes(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	if f := g.FieldByName("ResultMetadata"); f.IsValid() {
		f.Set(reflect.ValueOf(middleware.Metadata{}))
		w.FieldByName("ResultMetadata").Set(reflect.ValueOf(middleware.Metadata{}))
	}
	if path, ok := firstDifference(g, w, what); !ok {
		t.Errorf("the shape changed on the wire at %s", path)
	}
}

// firstDifference walks two values of one type and names the first member that differs.
func firstDifference(got, want reflect.Value, path string) (string, bool) {
	switch got.Kind() {
	case reflect.Pointer, reflect.Interface:
		if got.IsNil() || want.IsNil() {
			return path, got.IsNil() == want.IsNil()
		}
		return firstDifference(got.Elem(), want.Elem(), path)
	case reflect.Struct:
		if got.Type() == reflect.TypeFor[time.Time]() {
			return path, got.Interface().(time.Time).Equal(want.Interface().(time.Time))
		}
		for i := range got.NumField() {
			if !got.Type().Field(i).IsExported() {
				continue
			}
			if p, ok := firstDifference(got.Field(i), want.Field(i), path+"."+got.Type().Field(i).Name); !ok {
				return p, false
			}
		}
		return path, true
	case reflect.Slice:
		if got.Len() != want.Len() {
			return fmt.Sprintf("%s (length %d, want %d)", path, got.Len(), want.Len()), false
		}
		for i := range got.Len() {
			if p, ok := firstDifference(got.Index(i), want.Index(i), fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return path, true
	}
	return fmt.Sprintf("%s (%v, want %v)", path, got.Interface(), want.Interface()), reflect.DeepEqual(got.Interface(), want.Interface())
}

// callOp calls op on client with in through reflection and returns the output.
func callOp(t *testing.T, client any, op string, in any) any {
	t.Helper()
	res := reflect.ValueOf(client).MethodByName(op).Call([]reflect.Value{reflect.ValueOf(context.Background()), reflect.ValueOf(in)})
	if err, _ := res[1].Interface().(error); err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return res[0].Interface()
}

func TestJSONRoundTrip(t *testing.T) {
	e, clients := newEchoServer(t)
	for _, op := range []string{
		"RegisterTaskDefinition", "DescribeTaskDefinition", "ListTaskDefinitions", "DeregisterTaskDefinition",
		"CreateCluster", "DescribeClusters", "DeleteCluster",
		"CreateService", "UpdateService", "DescribeServices", "ListServices", "DeleteService",
		"RunTask", "StopTask", "DescribeTasks", "ListTasks",
		"ListServiceDeployments", "DescribeServiceDeployments", "StopServiceDeployment", "ContinueServiceDeployment", "DescribeServiceRevisions",
	} {
		t.Run(op, func(t *testing.T) { roundTrip(t, e, clients.ecs, op) })
	}
	for _, op := range []string{
		"CreateLogGroup", "DeleteLogGroup", "DescribeLogGroups", "PutRetentionPolicy", "DeleteRetentionPolicy",
		"CreateLogStream", "DeleteLogStream", "DescribeLogStreams",
		"PutLogEvents", "GetLogEvents", "FilterLogEvents",
	} {
		t.Run(op, func(t *testing.T) { roundTrip(t, e, clients.logs, op) })
	}
}

// roundTrip passes op's filled input and output through client and the server.
func roundTrip(t *testing.T, e *echo, client any, op string) {
	t.Helper()
	m, _ := reflect.TypeOf(client).MethodByName(op)
	in := reflect.New(m.Type.In(2).Elem())
	fill(in.Elem(), 0, true)
	out := callOp(t, client, op, in.Interface())
	equalShapes(t, op+" input", e.in, in.Interface())
	want := reflect.New(m.Type.Out(0).Elem())
	fill(want.Elem(), 0, true)
	equalShapes(t, op+" output", out, want.Interface())
}

func TestQueryRoundTrip(t *testing.T) {
	e, clients := newEchoServer(t)
	client := clients.elb
	for _, op := range []string{
		"CreateLoadBalancer", "DescribeLoadBalancers", "DeleteLoadBalancer",
		"CreateTargetGroup", "DescribeTargetGroups", "ModifyTargetGroup", "DeleteTargetGroup",
		"DescribeTargetGroupAttributes", "ModifyTargetGroupAttributes",
		"CreateListener", "DescribeListeners", "ModifyListener", "DeleteListener",
		"CreateRule", "DescribeRules", "ModifyRule", "SetRulePriorities", "DeleteRule",
		"RegisterTargets", "DeregisterTargets", "DescribeTargetHealth",
		"AddTags", "RemoveTags", "DescribeTags",
	} {
		t.Run(op, func(t *testing.T) {
			m, _ := reflect.TypeFor[*elb.Client]().MethodByName(op)
			in := reflect.New(m.Type.In(2).Elem())
			fill(in.Elem(), 0, false)
			out := callOp(t, client, op, in.Interface())
			equalShapes(t, op+" input", e.in, in.Interface())
			want := reflect.New(m.Type.Out(0).Elem())
			fill(want.Elem(), 0, true)
			equalShapes(t, op+" output", out, want.Interface())
		})
	}
}
