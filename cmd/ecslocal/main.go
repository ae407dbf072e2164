// Command ecslocal serves the Amazon ECS and Elastic Load Balancing v2 APIs on a loopback
// address, for the AWS CLI, aws-sdk-go-v2 and proxy rollout to drive through
// AWS_ENDPOINT_URL. See docs/ecslocal.md for what it models.
//
//	ecslocal [-addr 127.0.0.1:4580] [-region us-east-1] [-account 000000000000] [-v]
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
	"os/signal"
	"syscall"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/server"
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

// options are ecslocal's flags.
type options struct {
	addr, region, account string
	verbose               bool
}

// run serves until ctx ends. When ready is not nil it receives the address served once the
// listener is open (tests pass ":0"-style addresses).
func run(ctx context.Context, args []string, stderr *os.File, ready chan<- string) error {
	var o options
	fs := flag.NewFlagSet("ecslocal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:4580", "loopback `address` to serve the ECS and ELBv2 APIs on")
	fs.StringVar(&o.region, "region", "us-east-1", "`region` in the ARNs")
	fs.StringVar(&o.account, "account", "000000000000", "12-digit `account` ID in the ARNs")
	fs.BoolVar(&o.verbose, "v", false, "log every request")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	ap, err := netip.ParseAddrPort(o.addr)
	if err != nil {
		return usageError{fmt.Errorf("-addr %q: %v", o.addr, err)}
	}
	if !ap.Addr().IsLoopback() {
		return usageError{fmt.Errorf("-addr %q: ecslocal accepts any credentials, so it serves on loopback addresses only (127.0.0.0/8, ::1)", o.addr)}
	}

	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ecsAPI := ecsapi.New(ecsapi.Options{Region: o.region, Account: o.account})
	elbAPI := elbapi.New(elbapi.Options{Region: o.region, Account: o.account})

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: server.New(ecsAPI, elbAPI, log), ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving Amazon ECS and Elastic Load Balancing v2", "endpoint", "http://"+ln.Addr().String(), "region", o.region)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
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
