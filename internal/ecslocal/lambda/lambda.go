// Package lambda runs AWS Lambda functions for ecslocal: each function's code directory
// holds the `bootstrap` of a provided.al2023 (OS-only) runtime, and the function runs as that
// unmodified binary under AWS's own Lambda Runtime Interface Emulator (aws-lambda-rie, which
// scripts/install-lambda-rie.sh installs), one emulator process per function on 127.0.0.1,
// started at the function's first invocation and stopped by Close.
//
// The Lambda API is served as AWS serves it, REST-JSON under /2015-03-31/functions (Lambda
// API Reference, https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html):
// CreateFunction (a zip file), GetFunction, GetFunctionConfiguration, ListFunctions,
// DeleteFunction and Invoke, so that
// `aws lambda invoke --endpoint-url` works. InvokeHook is the ECS scheduler's way in.
package lambda

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of CreateFunction (Lambda API Reference, CreateFunction).
const (
	DefaultTimeout    = 3   // seconds
	DefaultMemorySize = 128 // MB
	maxTimeout        = 900
)

// Options configure a Service.
type Options struct {
	Region, Account string
	// RIE is the aws-lambda-rie binary.
	RIE string
	// Endpoint is ecslocal's own endpoint, given to every function as AWS_ENDPOINT_URL so
	// that the AWS SDK inside it calls ecslocal; "" leaves it unset.
	Endpoint string
	// Dir holds the code of functions created from a zip file.
	Dir string
	// StartTimeout bounds an emulator's start (its port open); 0 means 10 s.
	StartTimeout time.Duration
	// Hosts, when set, names the addresses a function resolves host names to, as a
	// function in a VPC resolves the load balancers' DNS names through the VPC's resolver:
	// each emulator starts in a mount namespace of its own whose /etc/hosts holds these
	// names (read when the emulator starts), so that a URL naming a load balancer reaches
	// its listener on 127.0.0.1. It needs root on Linux and util-linux's unshare; without
	// them the emulator runs with the machine's /etc/hosts, and the start is logged.
	Hosts func() map[string]string
	// Logs receives each emulator's output (the function's and the emulator's own lines), as
	// Lambda sends it to CloudWatch Logs; nil leaves it in ecslocal's log alone.
	Logs LogStreams
	Log  *slog.Logger
}

// LogStreams opens CloudWatch Logs streams (a *logs.Service): every line written to a stream
// is an event; a missing group is created when createGroup is set.
type LogStreams interface {
	OpenStream(group, stream string, createGroup bool) (io.WriteCloser, error)
}

// Function is a function's configuration: the bootstrap in Code runs for every invocation.
type Function struct {
	Name string
	// Code is the directory that holds the bootstrap (the function's /var/task); a relative
	// one is taken from the working directory at CreateFunction.
	Code        string
	Runtime     string // recorded; the bootstrap runs whatever it says
	Handler     string
	Timeout     int // seconds, 1–900
	MemorySize  int // MB
	Environment map[string]string
	// LogGroup is the CloudWatch Logs group of its output (LoggingConfig.LogGroup);
	// /aws/lambda/Name when empty.
	LogGroup string
}

// logGroup is the group fn's output goes to.
func (f Function) logGroup() string {
	if f.LogGroup != "" {
		return f.LogGroup
	}
	return "/aws/lambda/" + f.Name
}

// logStreamName names the stream of an execution environment started at t as Lambda does
// ("Configuring CloudWatch log groups", AWS Lambda Developer Guide):
// YYYY/MM/DD/[$LATEST]<environment ID> in the function's own group, with the function's name
// before the version in a custom one, which several functions may share.
func (f Function) logStreamName(t time.Time) string {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	name := ""
	if f.LogGroup != "" {
		name = f.Name
	}
	return fmt.Sprintf("%s/%s[$LATEST]%x", t.UTC().Format("2006/01/02"), name, id)
}

// Service holds the functions and their emulators.
type Service struct {
	o      Options
	log    *slog.Logger
	mu     sync.Mutex
	funcs  map[string]*function // by name
	closed bool
}

// function is one registered function and, once invoked, its emulator.
type function struct {
	Function
	arn string

	// run serializes invocations: the emulator answers one at a time (a second concurrent
	// one is refused with 400), as a single Lambda execution environment does.
	run  sync.Mutex
	proc *rie // nil until the first invocation, or after the emulator ended
}

// New returns a Service with no functions.
func New(o Options) *Service {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 10 * time.Second
	}
	return &Service{o: o, log: o.Log, funcs: map[string]*function{}}
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// ARN returns the ARN of the function named name.
func (s *Service) ARN(name string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", s.o.Region, s.o.Account, name)
}

// CreateFunction registers f and returns its ARN. Its emulator starts at the first
// invocation.
func (s *Service) CreateFunction(f Function) (string, error) {
	if !nameRE.MatchString(f.Name) {
		return "", &apiError{http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("function name %q: want 1-64 letters, digits, hyphens or underscores", f.Name)}
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultTimeout
	}
	if f.Timeout < 1 || f.Timeout > maxTimeout {
		return "", &apiError{http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("function %s: Timeout %d: want 1-%d seconds", f.Name, f.Timeout, maxTimeout)}
	}
	if f.MemorySize == 0 {
		f.MemorySize = DefaultMemorySize
	}
	// The emulator runs in the code directory and is given the bootstrap's path.
	if abs, err := filepath.Abs(f.Code); err == nil {
		f.Code = abs
	}
	if st, err := os.Stat(filepath.Join(f.Code, "bootstrap")); err != nil || st.IsDir() {
		return "", &apiError{http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("function %s: code %s has no bootstrap file (ecslocal runs OS-only runtimes: a provided.al2023 bootstrap)", f.Name, f.Code)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", errors.New("lambda: closed")
	}
	if _, ok := s.funcs[f.Name]; ok {
		return "", &apiError{http.StatusConflict, "ResourceConflictException", "Function already exist: " + f.Name}
	}
	fn := &function{Function: f, arn: s.ARN(f.Name)}
	fn.Environment = cloneMap(f.Environment)
	s.funcs[f.Name] = fn
	s.log.Info("lambda function created", "function", f.Name, "code", f.Code)
	return fn.arn, nil
}

// DeleteFunction removes a function and stops its emulator.
func (s *Service) DeleteFunction(name string) error {
	s.mu.Lock()
	fn, err := s.lookupLocked(name)
	if err == nil {
		delete(s.funcs, fn.Name)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	fn.run.Lock()
	defer fn.run.Unlock()
	fn.stop()
	return nil
}

// Functions returns the registered functions, by name.
func (s *Service) Functions() []Function {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Function, 0, len(s.funcs))
	for _, fn := range s.funcs {
		out = append(out, fn.Function)
	}
	slices.SortFunc(out, func(a, b Function) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// lookupLocked finds a function by name, full ARN (a qualifier after it is ignored: every
// function has only $LATEST) or partial ARN (account:function:name).
func (s *Service) lookupLocked(ref string) (*function, error) {
	name := ref
	if i := strings.Index(ref, "function:"); i >= 0 {
		name = ref[i+len("function:"):]
		name, _, _ = strings.Cut(name, ":")
	}
	fn, ok := s.funcs[name]
	if !ok || (strings.HasPrefix(ref, "arn:") && !strings.HasPrefix(ref, fn.arn)) {
		return nil, &apiError{http.StatusNotFound, "ResourceNotFoundException", "Function not found: " + s.qualify(ref)}
	}
	return fn, nil
}

func (s *Service) qualify(ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return s.ARN(ref)
}

func (s *Service) lookup(ref string) (*function, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("lambda: closed")
	}
	return s.lookupLocked(ref)
}

// Result is one invocation's outcome as Invoke reports it: the function's payload, and
// FunctionError "Unhandled" when the function failed (its payload is then the error object).
type Result struct {
	Payload       []byte
	FunctionError string
}

// Invoke runs the function ref (name or ARN) with payload and waits for its answer, at most
// the function's timeout (the emulator enforces it) or until ctx ends.
func (s *Service) Invoke(ctx context.Context, ref string, payload []byte) (Result, error) {
	fn, err := s.lookup(ref)
	if err != nil {
		return Result{}, err
	}
	fn.run.Lock()
	defer fn.run.Unlock()
	if fn.proc == nil || fn.proc.exited() {
		p, err := s.start(fn)
		if err != nil {
			return Result{}, fmt.Errorf("function %s: starting aws-lambda-rie: %w", fn.Name, err)
		}
		fn.proc = p
	}
	res, reset, err := fn.proc.invoke(ctx, payload)
	if reset || err != nil {
		// A timed-out or failed environment is not reused: Lambda starts a new one.
		fn.stop()
	}
	if err != nil {
		return Result{}, fmt.Errorf("function %s: %w", fn.Name, err)
	}
	return res, nil
}

// InvokeHook invokes the function a lifecycle hook names with the hook's event and returns
// the function's response. A function error (it failed, timed out or could not start) is an
// error naming the function and carrying the function's errorMessage: ECS treats it as a
// failed hook.
func (s *Service) InvokeHook(ctx context.Context, functionARN string, payload []byte) ([]byte, error) {
	res, err := s.Invoke(ctx, functionARN, payload)
	if err != nil {
		return nil, err
	}
	if res.FunctionError != "" {
		var fe struct {
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(res.Payload, &fe)
		return res.Payload, fmt.Errorf("function %s: %s: %s: %s", functionARN, res.FunctionError, fe.ErrorType, fe.ErrorMessage)
	}
	return res.Payload, nil
}

// Close stops every emulator; later calls fail.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	fns := make([]*function, 0, len(s.funcs))
	for _, fn := range s.funcs {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn.run.Lock()
		fn.stop()
		fn.run.Unlock()
	}
	return nil
}

func (fn *function) stop() {
	if fn.proc != nil {
		fn.proc.stop()
		fn.proc = nil
	}
}

// rie is one running aws-lambda-rie process.
type rie struct {
	name string
	addr string // its invoke endpoint
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has ended
}

// freePorts returns n loopback addresses with distinct ports free at the time of the call
// (all are held open until every one is chosen, so that none is handed out twice).
func freePorts(n int) ([]string, error) {
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// start runs the emulator for fn and waits until it accepts connections. The emulator gets
// an explicit environment (it forwards its whole environment to the function): the
// function's variables over the runtime's (AWS_LAMBDA_*, AWS_REGION, credentials, and
// AWS_ENDPOINT_URL for ecslocal).
func (s *Service) start(fn *function) (*rie, error) {
	addrs, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	invokeAddr, runtimeAddr := addrs[0], addrs[1]
	env := map[string]string{
		"PATH":                            "/usr/local/bin:/usr/bin:/bin",
		"LAMBDA_TASK_ROOT":                fn.Code,
		"AWS_LAMBDA_FUNCTION_NAME":        fn.Name,
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     strconv.Itoa(fn.Timeout),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(fn.MemorySize),
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_REGION":                      s.o.Region,
		"AWS_DEFAULT_REGION":              s.o.Region,
		"AWS_ACCESS_KEY_ID":               "ecslocal",
		"AWS_SECRET_ACCESS_KEY":           "ecslocal",
		"AWS_SESSION_TOKEN":               "ecslocal",
		"LOG_LEVEL":                       "error",
	}
	if fn.Handler != "" {
		env["_HANDLER"] = fn.Handler
	}
	if s.o.Endpoint != "" {
		env["AWS_ENDPOINT_URL"] = s.o.Endpoint
	}
	for k, v := range fn.Environment {
		env[k] = v
	}
	argv := []string{s.o.RIE,
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", runtimeAddr,
		filepath.Join(fn.Code, "bootstrap")}
	hosts, err := s.hostsFile(fn)
	if err != nil {
		return nil, err
	}
	if hosts != "" {
		// unshare's mount namespace is private (no mount propagates back), so the bind
		// mount is the emulator's alone and ends with it.
		argv = append([]string{"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
			`mount --bind "$0" /etc/hosts && exec "$@"`, hosts}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = fn.Code
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Its own process group, so that stop ends the bootstrap with the emulator.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &logWriter{log: s.log, function: fn.Name}
	var stream io.WriteCloser
	if s.o.Logs != nil {
		if stream, err = s.o.Logs.OpenStream(fn.logGroup(), fn.logStreamName(time.Now()), true); err != nil {
			// As on Lambda, a function whose logs cannot be written still runs.
			s.log.Warn("lambda output not sent to CloudWatch Logs", "function", fn.Name, "group", fn.logGroup(), "error", err)
		}
	}
	var w io.Writer = out
	if stream != nil {
		w = io.MultiWriter(out, stream)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &rie{name: fn.Name, addr: invokeAddr, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.flush()
		if stream != nil {
			stream.Close()
		}
		close(p.done)
	}()
	deadline := time.Now().Add(s.o.StartTimeout)
	for {
		c, err := net.DialTimeout("tcp", invokeAddr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			s.log.Debug("aws-lambda-rie started", "function", fn.Name, "addr", invokeAddr, "pid", cmd.Process.Pid)
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("it exited (%v) before opening %s", cmd.ProcessState, invokeAddr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s not open after %s", invokeAddr, s.o.StartTimeout)
		}
	}
}

// hostsFile writes the /etc/hosts of fn's emulator when Options.Hosts is set and a mount
// namespace can be made, and returns its path ("" otherwise).
func (s *Service) hostsFile(fn *function) (string, error) {
	if s.o.Hosts == nil {
		return "", nil
	}
	if why := namespaceUnavailable(); why != "" {
		s.log.Warn("lambda function resolves names with the machine's /etc/hosts", "function", fn.Name, "reason", why)
		return "", nil
	}
	names := s.o.Hosts()
	b := []byte("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
	for _, name := range slices.Sorted(maps.Keys(names)) {
		b = fmt.Appendf(b, "%s %s\n", names[name], name)
	}
	dir := s.o.Dir
	if dir == "" {
		dir = os.TempDir()
	}
	p := filepath.Join(dir, "hosts-"+fn.Name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", fmt.Errorf("function %s: writing its /etc/hosts: %w", fn.Name, err)
	}
	return p, nil
}

// namespaceUnavailable says why an emulator cannot have a mount namespace of its own, or "".
func namespaceUnavailable() string {
	switch {
	case runtime.GOOS != "linux":
		return "mount namespaces need Linux"
	case os.Geteuid() != 0:
		return "mount namespaces need root"
	}
	for _, tool := range []string{"unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not found (Debian package util-linux)"
		}
	}
	return ""
}

func (p *rie) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the emulator and its function: SIGTERM to the group, SIGKILL after 2 s.
func (p *rie) stop() {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// timedOut is how the emulator answers an invocation that outlived the function's timeout:
// a plain-text body with status 200.
var timedOut = regexp.MustCompile(`^Task timed out after [0-9.]+ seconds$`)

// invoke passes one invocation to the emulator. The emulator answers a function error with
// status 200 and the error object, without Lambda's X-Amz-Function-Error header, so the body
// tells: an object whose members are errorMessage, errorType and stackTrace only. reset
// says the environment must not serve another invocation.
func (p *rie) invoke(ctx context.Context, payload []byte) (res Result, reset bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+p.addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(payload))
	if err != nil {
		return Result{}, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Result{}, true, fmt.Errorf("invoking: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 6<<20)) // Lambda's synchronous payload limit
	if err != nil {
		return Result{}, true, fmt.Errorf("reading the response: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusOK && timedOut.Match(bytes.TrimSpace(body)):
		msg, _ := json.Marshal(map[string]string{"errorType": "Sandbox.Timedout", "errorMessage": string(bytes.TrimSpace(body))})
		return Result{Payload: msg, FunctionError: "Unhandled"}, true, nil
	case resp.StatusCode == http.StatusOK:
		if isErrorObject(body) {
			return Result{Payload: body, FunctionError: "Unhandled"}, false, nil
		}
		return Result{Payload: body}, false, nil
	case resp.StatusCode == http.StatusBadGateway:
		// The function failed to initialize or crashed during the invocation.
		if !isErrorObject(body) {
			body, _ = json.Marshal(map[string]string{"errorType": "Runtime.ExitError", "errorMessage": strings.TrimSpace(string(body))})
		}
		return Result{Payload: body, FunctionError: "Unhandled"}, true, nil
	default:
		return Result{}, true, fmt.Errorf("aws-lambda-rie answered %s: %s", resp.Status, bytes.TrimSpace(body))
	}
}

func isErrorObject(body []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m["errorMessage"] == nil && m["errorType"] == nil {
		return false
	}
	for k := range m {
		if k != "errorMessage" && k != "errorType" && k != "stackTrace" {
			return false
		}
	}
	return true
}

// logWriter logs a function's output line by line, in place of CloudWatch Logs.
type logWriter struct {
	log      *slog.Logger
	function string
	mu       sync.Mutex
	buf      []byte
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 64<<10 {
		w.line(string(w.buf))
		w.buf = nil
	}
	return len(b), nil
}

func (w *logWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

func (w *logWriter) line(s string) {
	if s = strings.TrimRight(s, "\r"); s != "" {
		w.log.Info("lambda output", "function", w.function, "line", s)
	}
}

// unzip extracts a function's zip file into dir, refusing entries that would land outside
// it, and keeps the entries' modes (the bootstrap must stay executable).
func unzip(data []byte, dir string) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return err
	}
	for _, f := range zr.File {
		name := filepath.Clean(f.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("zip entry %q is outside the code directory", f.Name)
		}
		dst := filepath.Join(dir, name)
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		mode := f.Mode().Perm()
		if mode == 0 {
			mode = 0o644
		}
		if name == "bootstrap" {
			mode |= 0o111
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		w, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err == nil {
			_, err = io.Copy(w, io.LimitReader(rc, 250<<20)) // Lambda's unzipped size limit
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		rc.Close()
		if err != nil {
			return fmt.Errorf("zip entry %q: %w", f.Name, err)
		}
	}
	return nil
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
