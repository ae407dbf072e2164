// Command ecslocal serves the Amazon ECS, Elastic Load Balancing v2, Lambda, CloudWatch and
// CloudFormation APIs on a loopback address, for the AWS CLI, aws-sdk-go-v2 and proxy rollout to drive
// through AWS_ENDPOINT_URL. See docs/ecslocal.md for what it models.
//
//	ecslocal [-addr 127.0.0.1:4580] [-region us-east-1] [-account 000000000000]
//	         [-image NAME=OCI-LAYOUT-DIR ...] [-name ecsl] [-subnet 198.18.0.0/24]
//	         [-state-dir /var/lib/ecslocal] [-state FILE] [-no-containers] [-v]
//	         [-time-scale 1] [-lambda-rie PATH]
//	         [-template cdk/cdk.out/NAME.template.json [-parameters K=V ...] [-stack-name NAME]]
//	         [-assets DIR]
//
// Tasks run as runc containers, which needs root on Linux; -no-containers serves the APIs
// alone (tasks are records), anywhere. A task definition's image comes from the OCI layout
// -image names for it, or else is pulled from its registry.
//
// With -state FILE the control-plane records (task definitions, clusters, services,
// deployments, tasks, target groups, listeners, rules, load balancers) are written to FILE
// when they change and loaded from it at start; a task that ran when ecslocal ended is
// STOPPED on load, and the scheduler starts new ones.
//
// The first SIGINT or SIGTERM shuts it down gracefully; a second one exits at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/gangway-ecs/gangway/internal/ecslocal/cfn"
	"github.com/gangway-ecs/gangway/internal/ecslocal/cloudwatch"
	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/lambda"
	"github.com/gangway-ecs/gangway/internal/ecslocal/lb"
	"github.com/gangway-ecs/gangway/internal/ecslocal/logs"
	"github.com/gangway-ecs/gangway/internal/ecslocal/server"
	"github.com/gangway-ecs/gangway/internal/ecslocal/statefile"
	"github.com/gangway-ecs/gangway/internal/ecslocal/targethealth"
	"github.com/gangway-ecs/gangway/internal/ecslocal/tasks"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal now kills the process
	}()
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	switch {
	case err == nil:
		os.Exit(exitOK)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(exitOK)
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "ecslocal:", err)
		os.Exit(exitUsage)
	default:
		fmt.Fprintln(os.Stderr, "ecslocal:", err)
		os.Exit(exitError)
	}
}

type usageError struct{ error }

// schedulerInterval is how often the service scheduler looks at every service.
const schedulerInterval = 250 * time.Millisecond

// stateInterval is how often the records are compared with the state file's, and written
// when they changed.
const stateInterval = 250 * time.Millisecond

// options are ecslocal's flags.
type options struct {
	addr, lbAddr, region, account string
	verbose                       bool
	noContainers                  bool
	name, subnet, state           string
	stateFile                     string
	images                        imageMap
	healthScale                   float64
	timeScale                     float64
	lambdaRIE                     string
	// A stack created at start from a template, and where CreateStack's assets are.
	template, stackName, assets string
	parameters                  paramMap
}

// paramMap is the repeatable -parameters KEY=VALUE flag.
type paramMap map[string]string

func (m paramMap) String() string { return fmt.Sprint(map[string]string(m)) }

func (m paramMap) Set(v string) error {
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE[,KEY=VALUE...], got %q", v)
		}
		m[k] = val
	}
	return nil
}

// imageMap is the repeatable -image NAME=DIR flag: the OCI layout that stands in for an
// image name of the task definitions (one that cannot be pulled here).
type imageMap map[string]string

func (m imageMap) String() string { return fmt.Sprint(map[string]string(m)) }

func (m imageMap) Set(v string) error {
	name, dir, ok := strings.Cut(v, "=")
	if !ok || name == "" || dir == "" {
		return fmt.Errorf("want NAME=OCI-LAYOUT-DIR, got %q", v)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		return fmt.Errorf("%s: not an OCI image layout: %w", dir, err)
	}
	m[name] = dir
	return nil
}

// run serves until ctx ends. When ready is not nil it receives the address served once the
// listener is open (tests pass ":0"-style addresses).
func run(ctx context.Context, args []string, stderr *os.File, ready chan<- string) error {
	o := options{images: imageMap{}, parameters: paramMap{}}
	fs := flag.NewFlagSet("ecslocal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:4580", "loopback `address` to serve the ECS and ELBv2 APIs on")
	fs.StringVar(&o.lbAddr, "lb-addr", "", "loopback `IP` the load balancers' listeners serve on, at their ports (default: the IP of -addr); two ecslocals with listeners on the same ports need two IPs of 127.0.0.0/8")
	fs.StringVar(&o.region, "region", "us-east-1", "`region` in the ARNs")
	fs.StringVar(&o.account, "account", "000000000000", "12-digit `account` ID in the ARNs")
	fs.BoolVar(&o.verbose, "v", false, "log every request and health check")
	fs.BoolVar(&o.noContainers, "no-containers", false, "serve the APIs only: tasks are records and nothing runs (no root needed)")
	fs.Var(o.images, "image", "`NAME=DIR`: run the OCI image layout DIR for image NAME of task definitions (repeatable); an image not named is pulled from its registry")
	fs.StringVar(&o.name, "name", "ecsl", "`name` of this ecslocal's network, namespaces and containers (1-6 lowercase letters or digits)")
	fs.StringVar(&o.subnet, "subnet", "198.18.0.0/24", "`subnet` (a /24 of 198.18.0.0/15) the tasks' addresses come from")
	fs.Float64Var(&o.healthScale, "health-scale", 1, "multiply the target groups' health-check intervals and timeouts by `factor` (0 < factor <= 1): tests shrink ALB's 5 s minimum interval")
	fs.StringVar(&o.stateFile, "state", "", "keep the control-plane records in `file`: loaded at start, written when they change (tasks are not restored: one that ran is STOPPED)")
	fs.Float64Var(&o.timeScale, "time-scale", 1, "multiply the deployment timers (bake times, lifecycle hook callBackDelay and timeouts, alarm periods and evaluation intervals) by `factor` (0 < factor <= 1); health checks and deregistration delays keep real seconds")
	fs.StringVar(&o.lambdaRIE, "lambda-rie", "", "`path` of aws-lambda-rie, which runs Lambda functions (default: aws-lambda-rie beside the ecslocal binary, else on PATH)")
	fs.StringVar(&o.template, "template", "", "create a stack at start from the CloudFormation template `file` (cdk/cdk.out/NAME.template.json; its directory holds the assets)")
	fs.Var(o.parameters, "parameters", "`KEY=VALUE[,KEY=VALUE...]`: the -template stack's parameters (repeatable)")
	fs.StringVar(&o.stackName, "stack-name", "", "`name` of the -template stack (default: the file name before .template.json)")
	fs.StringVar(&o.assets, "assets", "", "`directory` of the assets of stacks created with CreateStack (cdk.out; default: the -template file's directory)")
	fs.StringVar(&o.state, "state-dir", "/var/lib/ecslocal", "`directory` for unpacked images, bundles, runc state and the load balancer's configuration")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if !(o.healthScale > 0 && o.healthScale <= 1) {
		return usageError{fmt.Errorf("-health-scale %v: want a factor above 0 and at most 1", o.healthScale)}
	}
	if !(o.timeScale > 0 && o.timeScale <= 1) {
		return usageError{fmt.Errorf("-time-scale %v: want a factor above 0 and at most 1", o.timeScale)}
	}
	ap, err := netip.ParseAddrPort(o.addr)
	if err != nil {
		return usageError{fmt.Errorf("-addr %q: %v", o.addr, err)}
	}
	if !ap.Addr().IsLoopback() {
		return usageError{fmt.Errorf("-addr %q: ecslocal accepts any credentials, so it serves on loopback addresses only (127.0.0.0/8, ::1)", o.addr)}
	}
	bind := ap.Addr()
	if o.lbAddr != "" {
		if bind, err = netip.ParseAddr(o.lbAddr); err != nil {
			return usageError{fmt.Errorf("-lb-addr %q: %v", o.lbAddr, err)}
		}
		if !bind.IsLoopback() {
			return usageError{fmt.Errorf("-lb-addr %q: the load balancers serve on loopback addresses only (127.0.0.0/8, ::1)", o.lbAddr)}
		}
	}

	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ecsAPI := ecsapi.New(ecsapi.Options{Region: o.region, Account: o.account, TimeScale: o.timeScale})
	elbAPI := elbapi.New(elbapi.Options{Region: o.region, Account: o.account})
	logsAPI := logs.New(logs.Options{Region: o.region, Account: o.account})
	var state *statefile.File
	if o.stateFile != "" {
		var err error
		if state, err = statefile.Open(o.stateFile, ecsAPI, elbAPI); err != nil {
			return err
		}
		// The last write, after every task has stopped (deferred calls run last first).
		defer func() {
			if err := state.Save(); err != nil {
				log.Error("writing the state file", "error", err)
			}
		}()
	}

	if !o.noContainers {
		subnet, err := netip.ParsePrefix(o.subnet)
		if err != nil {
			return usageError{fmt.Errorf("-subnet %q: %v", o.subnet, err)}
		}
		runner, err := tasks.New(ctx, tasks.Options{Name: o.name, Subnet: subnet, StateDir: o.state, Images: o.images, Logs: logsAPI, Log: log}, ecsAPI)
		if errors.Is(err, tasks.ErrNotSupported) {
			return fmt.Errorf("%w (or pass -no-containers to serve the APIs without running tasks)", err)
		}
		if err != nil {
			return err
		}
		// Torn down after the server has stopped: every task stopped, the network removed.
		defer func() {
			if err := runner.Close(context.WithoutCancel(ctx)); err != nil {
				log.Error("removing the tasks' containers and network", "error", err)
			}
		}()
		ecsAPI.SetRunner(runner)
		ecsAPI.SetLoadBalancing(elbAPI)
	}

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	lam, err := newLambda(o, "http://"+ln.Addr().String(), loadBalancerHosts(elbAPI, bind), logsAPI, log)
	if err != nil {
		ln.Close()
		return err
	}
	// Every function's emulator ends with the server. The scheduler, which invokes the
	// lifecycle hooks, starts after it has them.
	defer lam.Close()
	ecsAPI.SetHooks(lam)

	// The target groups' health checks, the load balancer and the service scheduler run as
	// long as the server; they stop before the tasks do, so that no check reports on a task
	// being removed, no request goes to one and no task is started while they stop.
	if err := lb.Available(); err != nil {
		log.Warn("listeners will not serve", "error", err)
	}
	balancer := lb.New(elbAPI, lb.Options{Dir: filepath.Join(o.state, o.name, "lb"), Bind: bind, Log: log})
	cw := cloudwatch.New(cloudwatch.Options{Region: o.region, Account: o.account, TimeScale: o.timeScale, ELB: elbAPI, Counters: balancer, Log: log})
	ecsAPI.SetAlarms(cw)
	actorCtx, stopActors := context.WithCancel(context.WithoutCancel(ctx))
	runs := []func(context.Context) error{
		targethealth.New(elbAPI, targethealth.Options{Scale: o.healthScale, Log: log}).Run,
		balancer.Run,
		cw.Run,
		func(ctx context.Context) error { return ecsAPI.RunScheduler(ctx, schedulerInterval) },
	}
	if state != nil {
		runs = append(runs, func(ctx context.Context) error { return state.Run(ctx, stateInterval) })
	}
	actorErr := make(chan error, len(runs))
	var actors sync.WaitGroup
	for _, run := range runs {
		actors.Add(1)
		go func() {
			defer actors.Done()
			if err := run(actorCtx); err != nil {
				actorErr <- err
			}
		}()
	}
	defer func() {
		stopActors()
		actors.Wait()
	}()

	stacks := cfn.New(cfn.Options{Region: o.region, Account: o.account, ECS: ecsAPI, ELB: elbAPI, Lambda: lam, CloudWatch: cw, Logs: logsAPI, Log: log})
	defer stacks.Close() // before the actors stop: a stack update waits on the scheduler
	if err := createStack(ctx, stacks, o); err != nil {
		ln.Close()
		return err
	}
	handler := server.New(ecsAPI, elbAPI, log)
	handler.SetLambda(lam)
	handler.SetCloudWatch(cw)
	handler.SetCloudFormation(stacks)
	handler.SetLogs(logsAPI)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving Amazon ECS, Elastic Load Balancing v2, Lambda, CloudWatch and CloudFormation", "endpoint", "http://"+ln.Addr().String(), "region", o.region)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case err := <-actorErr:
		_ = srv.Close()
		<-errc
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	<-errc
	return nil
}

// newLambda returns the Lambda service: functions get endpoint as AWS_ENDPOINT_URL, and the
// code of functions created from a zip file lives in a directory removed by Close.
func newLambda(o options, endpoint string, hosts func() map[string]string, logsAPI *logs.Service, log *slog.Logger) (*lambdaService, error) {
	rie := o.lambdaRIE
	if rie == "" {
		rie = findRIE()
	}
	if _, err := os.Stat(rie); err != nil {
		log.Warn("Lambda functions will not run: aws-lambda-rie not found (scripts/install-lambda-rie.sh installs it; -lambda-rie names it)", "error", err)
	}
	dir, err := os.MkdirTemp("", "ecslocal-lambda-")
	if err != nil {
		return nil, err
	}
	svc := lambda.New(lambda.Options{Region: o.region, Account: o.account, RIE: rie, Endpoint: endpoint, Dir: dir, Hosts: hosts, Logs: logsAPI, Log: log})
	return &lambdaService{Service: svc, dir: dir}, nil
}

// loadBalancerHosts maps every load balancer's DNS name to bind, where its listeners serve:
// what a Lambda function resolves (the readiness hook's URL names the load balancer).
func loadBalancerHosts(elbAPI *elbapi.API, bind netip.Addr) func() map[string]string {
	return func() map[string]string {
		names := map[string]string{}
		in := &elb.DescribeLoadBalancersInput{}
		for {
			out, err := elbAPI.DescribeLoadBalancers(context.Background(), in)
			if err != nil {
				return names
			}
			for _, lb := range out.LoadBalancers {
				names[aws.ToString(lb.DNSName)] = bind.String()
			}
			if out.NextMarker == nil {
				return names
			}
			in.Marker = out.NextMarker
		}
	}
}

// lambdaService is the Lambda service and the directory of its zip files' code.
type lambdaService struct {
	*lambda.Service
	dir string
}

func (l *lambdaService) Close() error {
	err := l.Service.Close()
	return errors.Join(err, os.RemoveAll(l.dir))
}

// findRIE looks for aws-lambda-rie beside the running binary (bin/ of make and
// scripts/install-lambda-rie.sh), then on PATH.
func findRIE() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "aws-lambda-rie")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p
	}
	return "aws-lambda-rie"
}

// createStack creates the -template stack, if any, and says where CreateStack's assets are.
func createStack(ctx context.Context, stacks *cfn.Service, o options) error {
	assets := o.assets
	if assets == "" && o.template != "" {
		assets = filepath.Dir(o.template)
	}
	stacks.SetAssetDir(assets)
	if o.template == "" {
		if len(o.parameters) > 0 {
			return usageError{errors.New("-parameters needs -template")}
		}
		return nil
	}
	name := o.stackName
	if name == "" {
		name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(o.template), ".json"), ".template")
	}
	if _, err := stacks.CreateFromFile(ctx, name, o.template, o.parameters); err != nil {
		return fmt.Errorf("-template %s: %w", o.template, err)
	}
	return nil
}
