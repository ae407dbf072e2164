// Command gangway-image builds and pushes the proxy's container image without a container
// engine (internal/image). `make image` and `make image-push` run it:
//
//	gangway-image build -out bin/image -version V -revision COMMIT -created UNIXTIME
//	gangway-image push -layout bin/image/oci -image registry/repository:tag
//
// build writes an OCI layout of the index (OUT/oci) and, per platform, a tarball that
// `docker load` accepts (OUT/proxy-ARCH.tar); it prints each image's sizes and digest, and
// the index digest last. push uploads the layout's index and prints repository@sha256:...,
// the reference to pin in a task definition or `cdk deploy -c gangway:proxyImage=...`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/gangway-ecs/gangway/internal/image"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: gangway-image build|push [flags]")
		return exitUsage
	}
	var err error
	switch args[0] {
	case "build":
		err = buildCommand(ctx, args[1:], stdout, stderr)
	case "push":
		err = pushCommand(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "gangway-image: unknown command %q (build or push)\n", args[0])
		return exitUsage
	}
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp), errors.Is(err, errUsage):
		return exitUsage
	default:
		fmt.Fprintf(stderr, "gangway-image %s: %v\n", args[0], err)
		return exitError
	}
}

var errUsage = errors.New("usage")

func buildCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	module := fs.String("module", ".", "the Gangway module's root (where go.mod is)")
	out := fs.String("out", "bin/image", "output directory: OUT/oci and OUT/proxy-ARCH.tar")
	version := fs.String("version", "", "version stamped into the binaries and labelled (git describe)")
	revision := fs.String("revision", "", "the commit, labelled (git rev-parse HEAD)")
	created := fs.String("created", os.Getenv("SOURCE_DATE_EPOCH"), "the commit time in Unix seconds (git log -1 --format=%ct); default $SOURCE_DATE_EPOCH")
	verbose := fs.Bool("v", false, "print the go build commands")
	binDir := fs.String("bin", "", "also keep the binaries in this directory as gangway-proxy-OS-ARCH and gangway-healthcheck-OS-ARCH")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || *revision == "" || *created == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "gangway-image build: -version, -revision and -created (or $SOURCE_DATE_EPOCH) are required")
		return errUsage
	}
	secs, err := strconv.ParseInt(*created, 10, 64)
	if err != nil {
		return fmt.Errorf("-created %q: want Unix seconds: %w", *created, err)
	}
	o := image.Options{ModuleDir: *module, Version: *version, Revision: *revision, Created: time.Unix(secs, 0).UTC(), BinDir: *binDir}
	if *verbose {
		o.Log = stderr
	}
	b, err := image.Build(ctx, o)
	if err != nil {
		return err
	}
	tag := image.Tag(*version)
	layoutDir := filepath.Join(*out, "oci")
	if err := image.WriteLayout(layoutDir, b.Index, tag); err != nil {
		return err
	}
	for i, img := range b.Images {
		p := b.Platforms[i]
		tarPath := filepath.Join(*out, "proxy-"+p.Architecture+".tar")
		if err := image.WriteTarball(tarPath, img, tag+"-"+p.Architecture); err != nil {
			return err
		}
		s, err := image.SizesOf(img)
		if err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%-15s %s  compressed %s  uncompressed %s  %s\n", p, d, mib(s.Compressed), mib(s.Uncompressed), tarPath)
	}
	d, err := b.Index.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "index %s  %s (tag %s)\n", d, layoutDir, tag)
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

func pushCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	layoutDir := fs.String("layout", "bin/image/oci", "the `DIR` of the OCI layout that 'gangway-image build' wrote")
	ref := fs.String("image", "", "where to push: registry/repository:tag")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ref == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "gangway-image push: -image registry/repository:tag is required (make image-push IMAGE=...)")
		return errUsage
	}
	idx, err := image.ReadLayout(*layoutDir)
	if err != nil {
		return err
	}
	d, err := image.Push(ctx, idx, *ref, image.Keychain(), nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, d.String())
	return nil
}
