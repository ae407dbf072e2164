package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/probecmd"
)

// TestHealthExitsLikeHealthcheck runs bin/healthcheck and `proxy health` with the same
// argument lists and environment: both must exit with the same code, the one the shared
// exit-code table gives (docs/ecs.md, "Exit codes").
func TestHealthExitsLikeHealthcheck(t *testing.T) {
	proxyBin, hcBin := buildBinaries(t)

	serve := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	answer := func(code int, body string) string {
		return serve(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/status" {
				fmt.Fprint(w, "{}")
				return
			}
			w.WriteHeader(code)
			fmt.Fprint(w, body)
		})
	}
	healthy := answer(http.StatusOK, "[+]app ok\n")
	unhealthy := answer(http.StatusServiceUnavailable, "[-]app: down\n")
	teapot := answer(http.StatusTeapot, "short and stout\n")
	// silent answers only once the probe has given up and hung up.
	silent := serve(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t))

	tests := []struct {
		name string
		env  []string
		args []string
		want probecmd.ExitCode
	}{
		{"healthy", nil, []string{"-addr", healthy}, exitOK},
		{"healthy from the environment", []string{envHealthAddr + "=" + healthy}, nil, exitOK},
		{"every flag", nil, []string{"-addr", healthy, "-probe", "ready", "-timeout", "1s", "-exclude", "db", "-v"}, exitOK},
		{"-version", nil, []string{"-version"}, exitOK},
		{"-h", nil, []string{"-h"}, exitOK},
		{"unhealthy", nil, []string{"-addr", unhealthy}, exitFailure},
		{"unexpected status", nil, []string{"-addr", teapot}, exitFailure},
		{"unreachable", nil, []string{"-addr", closed}, exitUnreached},
		{"timed out", nil, []string{"-addr", silent, "-timeout", "200ms"}, exitUnreached},
		{"unknown flag", nil, []string{"-bogus"}, exitUsage},
		{"unknown probe", nil, []string{"-probe", "deep"}, exitUsage},
		{"probe alias", nil, []string{"-probe", "readiness"}, exitUsage},
		{"zero timeout", nil, []string{"-timeout", "0s"}, exitUsage},
		{"bad timeout", nil, []string{"-timeout", "soon"}, exitUsage},
		{"extra argument", nil, []string{"-addr", healthy, "ready"}, exitUsage},
		{"empty exclude", nil, []string{"-exclude", ""}, exitUsage},
		{"address without port", nil, []string{"-addr", "nohost"}, exitUsage},
		{"address without host", nil, []string{"-addr", ":28080"}, exitUsage},
		{"bad address from the environment", []string{envHealthAddr + "=nohost"}, nil, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Clear what the test's own environment could set, then add the row's.
			env := append([]string{envHealthAddr + "="}, tt.env...)
			start := time.Now()
			hc, hcOut := runBin(t, env, hcBin, tt.args...)
			ph, phOut := runBin(t, env, proxyBin, append([]string{"health"}, tt.args...)...)
			if hc != tt.want || ph != tt.want {
				t.Errorf("healthcheck %q exits %d, proxy health exits %d, want %d (%s)\nhealthcheck:\n%s\nproxy health:\n%s",
					tt.args, hc, ph, tt.want, time.Since(start).Round(time.Millisecond), hcOut, phOut)
			}
		})
	}
}
