// Package elbapi is ecslocal's Elastic Load Balancing v2 control plane for Application Load
// Balancers: load balancers, target groups and their attributes, listeners, rules, targets and
// their health, held in memory. As in ecsapi, each exported method
//
//	func (*API) Op(context.Context, *elasticloadbalancingv2.OpInput) (*elasticloadbalancingv2.OpOutput, error)
//
// is the operation Op, with aws-sdk-go-v2's shapes; errors are *wire.Error whose Code is the
// model's awsQueryError code (TargetGroupNotFound, not the shape name).
//
// Target health is a record here: the health checker that runs the target group's checks
// sets it through SetTargetHealth; until one runs, a registered target of a target group that
// receives traffic stays in initial (Elb.RegistrationInProgress). Deregistration and the
// deregistration delay are modelled here, on the API's clock.
package elbapi

import (
	"crypto/rand"
	"fmt"
	"strconv"
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
}

// API holds the load-balancing state. Its methods are safe for concurrent use.
type API struct {
	region, account string
	now             func() time.Time

	mu            sync.Mutex
	loadBalancers map[string]*loadBalancer // by ARN
	targetGroups  map[string]*targetGroup  // by ARN
	listeners     map[string]*listener     // by ARN
	rules         map[string]*rule         // by ARN
	tags          map[string]map[string]string
	seq           int // creation order, for stable listings
}

// New returns an API with no resources.
func New(o Options) *API {
	a := &API{
		region:        o.Region,
		account:       o.Account,
		now:           o.Now,
		loadBalancers: map[string]*loadBalancer{},
		targetGroups:  map[string]*targetGroup{},
		listeners:     map[string]*listener{},
		rules:         map[string]*rule{},
		tags:          map[string]map[string]string{},
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
	return a
}

func (a *API) arn(resource string) string {
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:%s", a.region, a.account, resource)
}

func (a *API) next() int {
	a.seq++
	return a.seq
}

// resourceID is the 16 hexadecimal digits that end ELB ARNs.
func resourceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on Linux
	return fmt.Sprintf("%x", b)
}

// Errors with the model's awsQueryError codes.
func validation(format string, args ...any) error {
	return wire.Errorf("ValidationError", format, args...)
}
func invalidConfig(format string, args ...any) error {
	return wire.Errorf("InvalidConfigurationRequest", format, args...)
}
func targetGroupNotFound() error {
	return wire.Errorf("TargetGroupNotFound", "One or more target groups not found")
}
func loadBalancerNotFound() error {
	return wire.Errorf("LoadBalancerNotFound", "One or more load balancers not found")
}
func listenerNotFound() error {
	return wire.Errorf("ListenerNotFound", "One or more listeners not found")
}
func ruleNotFound() error { return wire.Errorf("RuleNotFound", "One or more rules not found") }

// page returns the page of items that starts at marker (an index this API issued) and holds at
// most pageSize (1 to 400), and the marker of the next page.
func page[T any](items []T, marker *string, pageSize *int32) ([]T, *string, error) {
	start := 0
	if m := aws.ToString(marker); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 || n > len(items) {
			return nil, nil, validation("Invalid marker '%s'", m)
		}
		start = n
	}
	size := 400
	if pageSize != nil {
		size = int(*pageSize)
		if size < 1 || size > 400 {
			return nil, nil, validation("Page size must be between 1 and 400")
		}
	}
	end := min(start+size, len(items))
	var nextMarker *string
	if end < len(items) {
		nextMarker = aws.String(strconv.Itoa(end))
	}
	return items[start:end], nextMarker, nil
}
