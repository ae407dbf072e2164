// Command stackapp is the application container of the rehearsal's stack: bench/rollout's
// echo upstream (HTTP, slow requests, WebSockets) on $PORT (default 80, where the
// construct's proxy sends requests), with the faults a revision can carry in its
// environment; "/" answers "greeting=$GREETING", which tells the revisions apart. The faults:
//
//	NO_LISTEN=1       never opens its port: the proxy's upstream check never passes, so the
//	                  task never turns ready
//	FAIL_PATHS=/a,/b  answers 500 to every request whose path starts with one of them
//	                  ("/" is every request); the port is open, so the task is ready
//	SLOW_PATHS=/a,/b  answers every request whose path starts with one of them slowDelay
//	                  (2.5 s) late, longer than the construct's p99-latency threshold (2 s)
//	EXIT_AFTER=3s     exits 1 that long after its start (a crash loop, with ECS starting
//	                  the next task)
//
// On SIGTERM it exits at once, as nginx does on its fast shutdown: the proxy in front is what
// drains.
package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gangway-ecs/gangway/bench/rollout/internal/upstream"
)

func main() {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-term
		os.Exit(0)
	}()
	if d, err := time.ParseDuration(os.Getenv("EXIT_AFTER")); err == nil {
		time.AfterFunc(d, func() {
			fmt.Fprintln(os.Stderr, "stackapp: exiting after", d, "(EXIT_AFTER)")
			os.Exit(1)
		})
	}
	if os.Getenv("NO_LISTEN") != "" {
		fmt.Fprintln(os.Stderr, "stackapp: not listening (NO_LISTEN)")
		select {}
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "80"
	}
	up, err := upstream.Start(context.Background(), "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "stackapp:", err)
		os.Exit(1)
	}
	// The upstream listens on loopback only; this server, in front of it on every address,
	// adds the faults. ReverseProxy carries WebSocket upgrades through.
	target := &url.URL{Scheme: "http", Host: up.Addr()}
	rp := httputil.NewSingleHostReverseProxy(target)
	fail, slow := paths("FAIL_PATHS"), paths("SLOW_PATHS")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range fail {
			if strings.HasPrefix(r.URL.Path, p) {
				http.Error(w, "failing "+p+" (FAIL_PATHS)", http.StatusInternalServerError)
				return
			}
		}
		for _, p := range slow {
			if strings.HasPrefix(r.URL.Path, p) {
				time.Sleep(slowDelay)
				break
			}
		}
		if r.URL.Path == "/" {
			fmt.Fprintf(w, "greeting=%s\n", os.Getenv("GREETING"))
			return
		}
		rp.ServeHTTP(w, r)
	})
	srv := &http.Server{Addr: ":" + port, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(os.Stderr, "stackapp: serving on", srv.Addr, "greeting", os.Getenv("GREETING"))
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "stackapp:", err)
		os.Exit(1)
	}
}

// slowDelay is how late a revision with SLOW_PATHS answers on them.
const slowDelay = 2500 * time.Millisecond

// paths returns the comma-separated paths of the environment variable name.
func paths(name string) []string {
	var out []string
	for p := range strings.SplitSeq(os.Getenv(name), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
