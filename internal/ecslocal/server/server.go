// Package server serves ecslocal's APIs over HTTP on one address, the way AWS_ENDPOINT_URL
// points every SDK client at one endpoint: a POST with X-Amz-Target
// AmazonEC2ContainerServiceV20141113.<Op> is Amazon ECS (awsJson1_1); a form POST with
// Action=<Op>&Version=2015-12-01 is Elastic Load Balancing v2 (awsQuery). When set, a path
// under /2015-03-31/functions is AWS Lambda (REST-JSON), X-Amz-Target
// GraniteServiceVersion20100801.<Op> Amazon CloudWatch (awsJson1_0), X-Amz-Target
// Logs_20140328.<Op> Amazon CloudWatch Logs (awsJson1_1), and a form with
// Version=2010-05-15 AWS CloudFormation (awsQuery).
//
// An ECS, ELB or CloudWatch Logs operation is dispatched by name to the method of the same
// name on the API value, and only when aws-sdk-go-v2's client has that operation: an
// operation the service has but ecslocal does not implement answers with the service's error
// shape naming it (UnsupportedFeatureException for ECS, OperationNotPermitted for ELB,
// InvalidOperationException for CloudWatch Logs); a name the service
// does not have answers UnknownOperationException or InvalidAction, as AWS does. Requests are
// not authenticated: any credentials are accepted.
package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

const (
	ecsTargetPrefix = "AmazonEC2ContainerServiceV20141113."
	elbVersion      = "2015-12-01"
	elbNamespace    = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
	// maxBody bounds a request body; the largest ECS request (RegisterTaskDefinition with
	// every container field) is far smaller.
	maxBody = 10 << 20
)

// Handler serves the ECS and ELBv2 APIs, and the services set with SetLambda,
// SetCloudWatch and SetCloudFormation.
type Handler struct {
	ecs  jsonService
	elb  dispatcher
	logs *jsonService // nil until SetLogs
	log  *slog.Logger

	lambda, cloudWatch, cloudFormation http.Handler
}

// The ways the other services' requests are told apart on the one endpoint.
const (
	// lambdaPath is the Lambda API's (REST-JSON) function resources.
	lambdaPath = "/2015-03-31/functions"
	// cloudWatchTargetPrefix is CloudWatch's awsJson1_0 X-Amz-Target prefix, and
	// cloudWatchCBORPath the path of its operations under RPC v2 CBOR (cloudwatch.CBORPathPrefix).
	cloudWatchTargetPrefix = "GraniteServiceVersion20100801."
	cloudWatchCBORPath     = "/service/GraniteServiceVersion20100801/operation/"
	// cloudFormationVersion is the awsQuery Version of CloudFormation's forms.
	cloudFormationVersion = "2010-05-15"
	// logsTargetPrefix is CloudWatch Logs' awsJson1_1 X-Amz-Target prefix.
	logsTargetPrefix = "Logs_20140328."
)

// SetLambda serves the Lambda API's requests (paths under /2015-03-31/functions) with l.
func (h *Handler) SetLambda(l http.Handler) { h.lambda = l }

// SetCloudWatch serves CloudWatch's requests (X-Amz-Target
// GraniteServiceVersion20100801.<Op>) with cw.
func (h *Handler) SetCloudWatch(cw http.Handler) { h.cloudWatch = cw }

// SetCloudFormation serves CloudFormation's requests (forms with Version=2010-05-15) with
// cfn; the form is parsed when it is called (r.PostForm).
func (h *Handler) SetCloudFormation(cfn http.Handler) { h.cloudFormation = cfn }

// New returns a Handler for ecsAPI (an *ecsapi.API) and elbAPI (an *elbapi.API). log may be
// nil.
func New(ecsAPI, elbAPI any, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ecsSvc := ecsService
	ecsSvc.d = newDispatcher(ecsAPI, reflect.TypeFor[*ecs.Client]())
	return &Handler{
		ecs: ecsSvc,
		elb: newDispatcher(elbAPI, reflect.TypeFor[*elb.Client]()),
		log: log,
	}
}

// SetLogs serves CloudWatch Logs' requests (X-Amz-Target Logs_20140328.<Op>) with logsAPI
// (a *logs.Service), dispatched by name as ECS's are; an operation it lacks answers
// InvalidOperationException.
func (h *Handler) SetLogs(logsAPI any) {
	h.logs = &jsonService{name: "Amazon CloudWatch Logs", prefix: logsTargetPrefix, logKey: "logs",
		d: newDispatcher(logsAPI, reflect.TypeFor[*cloudwatchlogs.Client]()), unsupported: "InvalidOperationException", internal: "ServiceUnavailableException"}
}

// dispatcher calls the operation methods of one API.
type dispatcher struct {
	known  map[string]bool               // the operations of the SDK client
	lookup func(op string) reflect.Value // the API's method for op, invalid if none
}

var (
	ctxType   = reflect.TypeFor[context.Context]()
	errorType = reflect.TypeFor[error]()
)

func newDispatcher(api any, client reflect.Type) dispatcher {
	d := dispatcher{known: map[string]bool{}, lookup: reflect.ValueOf(api).MethodByName}
	for i := range client.NumMethod() {
		m := client.Method(i)
		// An operation: func(*Client, context.Context, *XInput, ...func(*Options)) (*XOutput, error).
		if m.Type.NumIn() == 4 && m.Type.In(1) == ctxType && m.Type.NumOut() == 2 && m.Type.Out(1) == errorType {
			d.known[m.Name] = true
		}
	}
	return d
}

// method returns the API's method for op, or an error that says why there is none.
func (d dispatcher) method(op string, unsupportedCode, unknown func(op string) *wire.Error) (reflect.Value, *wire.Error) {
	if !d.known[op] {
		return reflect.Value{}, unknown(op)
	}
	m := d.lookup(op)
	if !m.IsValid() {
		return reflect.Value{}, unsupportedCode(op)
	}
	return m, nil
}

// call decodes the input with decode and runs the operation.
func call(ctx context.Context, m reflect.Value, decode func(any) error) (any, error) {
	in := reflect.New(m.Type().In(1).Elem())
	if err := decode(in.Interface()); err != nil {
		return nil, err
	}
	out := m.Call([]reflect.Value{reflect.ValueOf(ctx), in})
	if err, _ := out[1].Interface().(error); err != nil {
		return nil, err
	}
	return out[0].Interface(), nil
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := requestID()
	w.Header().Set("x-amzn-RequestId", id)
	if h.lambda != nil && (r.URL.Path == lambdaPath || strings.HasPrefix(r.URL.Path, lambdaPath+"/")) {
		h.lambda.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "ecslocal serves the ECS and ELBv2 APIs: POST /", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if h.cloudWatch != nil && strings.HasPrefix(r.URL.Path, cloudWatchCBORPath) {
		h.cloudWatch.ServeHTTP(w, r) // the RPC v2 CBOR protocol of aws-sdk-go-v2's client
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		if h.cloudWatch != nil && strings.HasPrefix(target, cloudWatchTargetPrefix) {
			h.cloudWatch.ServeHTTP(w, r)
			return
		}
		if h.logs != nil && strings.HasPrefix(target, logsTargetPrefix) {
			h.serveJSON(w, r, h.logs, target)
			return
		}
		h.serveJSON(w, r, &h.ecs, target)
		return
	}
	if h.cloudFormation != nil && r.ParseForm() == nil && r.PostForm.Get("Version") == cloudFormationVersion {
		h.cloudFormation.ServeHTTP(w, r)
		return
	}
	h.serveELB(w, r, id)
}

// jsonService is an awsJson1_1 service: its X-Amz-Target prefix, its operations, and the
// error shapes it answers with.
type jsonService struct {
	name, prefix, logKey string
	d                    dispatcher
	// unsupported is the error for an operation of the service that ecslocal lacks.
	unsupported string
	// internal is the shape of a server fault.
	internal string
}

var ecsService = jsonService{name: "Amazon ECS", prefix: ecsTargetPrefix, logKey: "ecs", unsupported: "UnsupportedFeatureException", internal: "ServerException"}

func (h *Handler) serveJSON(w http.ResponseWriter, r *http.Request, svc *jsonService, target string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	op, ok := strings.CutPrefix(target, svc.prefix)
	if !ok {
		writeJSONError(w, wire.Errorf("UnknownOperationException", "X-Amz-Target %q is not an operation of %s", target, svc.name))
		return
	}
	m, werr := svc.d.method(op,
		func(op string) *wire.Error {
			return wire.Errorf(svc.unsupported, "ecslocal does not implement the %s operation %s", svc.name, op)
		},
		func(op string) *wire.Error {
			return wire.Errorf("UnknownOperationException", "%s is not an operation of %s", op, svc.name)
		})
	if werr != nil {
		h.log.Info(svc.logKey, "op", op, "error", werr.Code)
		writeJSONError(w, werr)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSONError(w, wire.Errorf("SerializationException", "reading the request: %v", err))
		return
	}
	out, err := call(r.Context(), m, func(in any) error {
		if err := wire.UnmarshalJSON(body, in); err != nil {
			return wire.Errorf("SerializationException", "%s: %v", op, err)
		}
		return nil
	})
	if err != nil {
		we := asWireError(err, svc.internal)
		h.log.Info(svc.logKey, "op", op, "error", we.Code, "message", we.Message)
		writeJSONError(w, we)
		return
	}
	raw, err := wire.MarshalJSON(out)
	if err != nil {
		writeJSONError(w, asWireError(fmt.Errorf("%s: encoding the response: %w", op, err), svc.internal))
		return
	}
	h.log.Debug(svc.logKey, "op", op)
	_, _ = w.Write(raw)
}

func (h *Handler) serveELB(w http.ResponseWriter, r *http.Request, id string) {
	w.Header().Set("Content-Type", "text/xml")
	if err := r.ParseForm(); err != nil {
		writeQueryError(w, wire.Errorf("MalformedQueryString", "reading the request: %v", err), id)
		return
	}
	op := r.PostForm.Get("Action")
	if v := r.PostForm.Get("Version"); v != elbVersion {
		writeQueryError(w, wire.Errorf("InvalidAction", "Version %q is not %s, the Elastic Load Balancing v2 API version ecslocal serves", v, elbVersion), id)
		return
	}
	m, werr := h.elb.method(op,
		func(op string) *wire.Error {
			return wire.Errorf("OperationNotPermitted", "ecslocal does not implement the Elastic Load Balancing operation %s", op)
		},
		func(op string) *wire.Error {
			return wire.Errorf("InvalidAction", "The action %s is not valid for this web service.", op)
		})
	if werr != nil {
		h.log.Info("elbv2", "op", op, "error", werr.Code)
		writeQueryError(w, werr, id)
		return
	}
	out, err := call(r.Context(), m, func(in any) error {
		if err := wire.UnmarshalQuery(r.PostForm, in); err != nil {
			return wire.Errorf("ValidationError", "%s: %v", op, err)
		}
		return nil
	})
	if err != nil {
		we := asWireError(err, "InternalFailure")
		h.log.Info("elbv2", "op", op, "error", we.Code, "message", we.Message)
		writeQueryError(w, we, id)
		return
	}
	raw, err := wire.MarshalQueryResponse(op, elbNamespace, out, id)
	if err != nil {
		writeQueryError(w, asWireError(fmt.Errorf("%s: encoding the response: %w", op, err), "InternalFailure"), id)
		return
	}
	h.log.Debug("elbv2", "op", op)
	_, _ = w.Write(raw)
}

// asWireError passes an API error through and turns anything else into an internal error
// with the service's code for one.
func asWireError(err error, internal string) *wire.Error {
	var we *wire.Error
	if errors.As(err, &we) {
		return we
	}
	return &wire.Error{Code: internal, Message: err.Error(), Status: http.StatusInternalServerError}
}

func writeJSONError(w http.ResponseWriter, e *wire.Error) {
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	w.WriteHeader(e.Status)
	raw, _ := json.Marshal(map[string]string{"__type": e.Code, "message": e.Message}) // strings always marshal
	_, _ = w.Write(raw)
}

func writeQueryError(w http.ResponseWriter, e *wire.Error, id string) {
	w.WriteHeader(e.Status)
	_, _ = w.Write(wire.MarshalQueryError(e, id))
}
