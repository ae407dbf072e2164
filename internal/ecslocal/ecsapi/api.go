// Package ecsapi is ecslocal's Amazon ECS control plane: task definitions, clusters,
// services, tasks, service deployments and service revisions, held in memory. Each exported
// method with the signature
//
//	func (*API) Op(context.Context, *ecs.OpInput) (*ecs.OpOutput, error)
//
// is the ECS operation Op; the server dispatches to it by name, so the set of supported
// operations is the method set. Inputs and outputs are aws-sdk-go-v2's shapes, errors are
// *wire.Error with the model's exception names, and validation messages are the ones ECS
// writes where they are known.
//
// The package records; a Runner runs. Without one (SetRunner), tasks stay PROVISIONING and
// a stop takes them to STOPPED at once; with one, RunTask starts each task on it, StopTask
// asks it to stop them, and it writes the task's state back through UpdateTask.
package ecsapi

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

// Options configure an API.
type Options struct {
	Region  string // us-east-1 when empty
	Account string // 000000000000 when empty
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Hooks runs the AWS_LAMBDA lifecycle hooks of BLUE_GREEN, LINEAR and CANARY
	// deployments; without it such a hook fails, as a function that cannot be invoked does.
	Hooks HookInvoker
	// Alarms reports the CloudWatch alarms that deployments name; without it no alarm is
	// ever in ALARM.
	Alarms AlarmReader
	// TimeScale multiplies the deployment timers: bake times, hook callBackDelay and hook
	// timeouts (never health checks or deregistration delays, which keep real seconds).
	// 0 means 1.
	TimeScale float64
}

// API holds the ECS state. Its methods are safe for concurrent use.
type API struct {
	region, account string
	now             func() time.Time
	hooks           HookInvoker
	alarms          AlarmReader
	timeScale       float64
	hookRuns        sync.WaitGroup // the hook invocations in flight

	mu          sync.Mutex
	families    map[string][]*taskDefinition // by family; index = revision-1
	clusters    map[string]*cluster          // by name, INACTIVE ones included
	tasks       map[string]*task             // by ARN
	deployments map[string]*deployment       // service deployments by ARN
	revisions   map[string]*revision         // service revisions by ARN
	runner      Runner
	lb          LoadBalancing
	tags        map[string]map[string]string // by resource ARN
	seq         int                          // service deployments created
}

// New returns an API with no resources.
func New(o Options) *API {
	a := &API{
		region:      o.Region,
		account:     o.Account,
		now:         o.Now,
		hooks:       o.Hooks,
		alarms:      o.Alarms,
		timeScale:   o.TimeScale,
		families:    map[string][]*taskDefinition{},
		clusters:    map[string]*cluster{},
		tasks:       map[string]*task{},
		deployments: map[string]*deployment{},
		revisions:   map[string]*revision{},
		tags:        map[string]map[string]string{},
	}
	if a.region == "" {
		a.region = "us-east-1"
	}
	if a.account == "" {
		a.account = "000000000000"
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.timeScale <= 0 {
		a.timeScale = 1
	}
	return a
}

// Region is the region the API's ARNs name.
func (a *API) Region() string { return a.region }

// scaled is a deployment timer of d in the API's time scale.
func (a *API) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * a.timeScale)
}

func (a *API) arn(resource string) string {
	return fmt.Sprintf("arn:aws:ecs:%s:%s:%s", a.region, a.account, resource)
}

// timestamp is the current time at the millisecond precision the wire carries.
func (a *API) timestamp() *time.Time {
	return aws.Time(a.now().UTC().Truncate(time.Millisecond))
}

// Errors with the names of the ECS API model's exceptions.
func clientError(format string, args ...any) error {
	return wire.Errorf("ClientException", format, args...)
}
func invalidParameter(format string, args ...any) error {
	return wire.Errorf("InvalidParameterException", format, args...)
}
func clusterNotFound() error { return wire.Errorf("ClusterNotFoundException", "Cluster not found.") }
func serviceNotFound() error { return wire.Errorf("ServiceNotFoundException", "Service not found.") }
func serviceNotActive() error {
	return wire.Errorf("ServiceNotActiveException", "Service was not ACTIVE.")
}

const hexDigits = "0123456789abcdef"
const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString draws n characters from alphabet.
func randomString(alphabet string, n int) string {
	var b strings.Builder
	for range n {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		b.WriteByte(alphabet[i.Int64()])
	}
	return b.String()
}

// taskID is a task's ID as ECS forms it: 32 hexadecimal digits.
func taskID() string { return randomString(hexDigits, 32) }

// uuid is a random version-4 UUID, the form of ECS's container and event IDs.
func uuid() string {
	h := randomString(hexDigits, 32)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-" + string("89ab"[int(h[16])%4]) + h[17:20] + "-" + h[20:]
}

// deploymentID is a service's deployment ID, ecs-svc/ and 19 digits.
func deploymentID() string {
	return "ecs-svc/" + randomString("123456789", 1) + randomString("0123456789", 18)
}

// lastPart is what follows the last '/' (a name inside an ARN, or the name itself).
func lastPart(s string) string { return s[strings.LastIndexByte(s, '/')+1:] }

// pageOf returns the page of items that starts at nextToken (an index this API issued) and
// holds at most max (default def), and the token of the next page.
func pageOf[T any](items []T, nextToken *string, max *int32, def, limit int) ([]T, *string, error) {
	start := 0
	if t := aws.ToString(nextToken); t != "" {
		if _, err := fmt.Sscanf(t, "%d", &start); err != nil || start < 0 || start > len(items) {
			return nil, nil, invalidParameter("Invalid nextToken.")
		}
	}
	n := def
	if max != nil {
		n = int(*max)
		if n < 1 || n > limit {
			return nil, nil, invalidParameter("maxResults must be between 1 and %d.", limit)
		}
	}
	end := min(start+n, len(items))
	var next *string
	if end < len(items) {
		next = aws.String(fmt.Sprint(end))
	}
	return items[start:end], next, nil
}
