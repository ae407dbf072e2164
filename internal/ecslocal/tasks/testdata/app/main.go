// Command app is the test image's program: an HTTP server on :8080 whose behaviour the
// environment sets, and with -check a health check that asks it for /health over localhost.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	check := flag.Bool("check", false, "exit 0 if GET http://127.0.0.1:$PORT/health answers 200")
	flag.Parse()
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if *check {
		resp, err := http.Get("http://127.0.0.1:" + port + "/health")
		if err != nil || resp.StatusCode != http.StatusOK {
			fmt.Println("not ready:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		return
	}
	// On SIGTERM the app exits 42, which tells a test that the signal arrived (as PID 1 a Go
	// program that leaves SIGTERM to the runtime exits 2).
	if os.Getenv("IGNORE_TERM") != "" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			os.Exit(42)
		}()
	}
	if d, err := time.ParseDuration(os.Getenv("EXIT_AFTER")); err == nil {
		code, _ := strconv.Atoi(os.Getenv("EXIT_CODE"))
		time.AfterFunc(d, func() { os.Exit(code) })
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "uid=%d greeting=%s\n", os.Getuid(), os.Getenv("GREETING"))
	})
	// /health fails while SICK is set (an app that never turns healthy), for the first
	// SICK_FOR after the start (one that is slow to turn healthy), and from SICK_AFTER after
	// the start on (one that turns unhealthy).
	start := time.Now()
	sickFor, _ := time.ParseDuration(os.Getenv("SICK_FOR"))
	sickAfter, _ := time.ParseDuration(os.Getenv("SICK_AFTER"))
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		up := time.Since(start)
		if os.Getenv("SICK") != "" || up < sickFor || (sickAfter > 0 && up >= sickAfter) {
			http.Error(w, "sick", http.StatusServiceUnavailable)
		}
	})
	// /echo answers what bench/rollout's load generator sends: the id of a GET, the body of a
	// POST, after the delay it asks for.
	http.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil {
			time.Sleep(d)
		}
		if r.Method == http.MethodPost {
			io.Copy(w, r.Body)
			return
		}
		io.WriteString(w, r.URL.Query().Get("id"))
	})
	// /file answers the content of the file named by ?path=, as the container sees it.
	http.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	http.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		if err := os.WriteFile("/probe", []byte("x"), 0o644); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
