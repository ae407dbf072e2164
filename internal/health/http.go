package health

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DefaultAddr is where the probe server listens unless configured otherwise.
const DefaultAddr = "127.0.0.1:28080"

// Probe paths served by Handler.
const (
	PathStartup = "/startupz"
	PathReady   = "/readyz"
	PathLive    = "/livez"
	// PathContainer is the probe for the ECS container health check (bin/healthcheck's
	// default): started, and alive.
	PathContainer = "/containerz"
	PathStatus    = "/status"
)

// Handler serves the probe endpoints of r:
//
//	/startupz, /readyz, /livez,  200 "ok" or 503; ?verbose lists each check
//	/containerz                  ([+]name ok / [-]name: reason); ?exclude=NAME, repeatable
//	/status                      JSON keyed by check name, always 200
//
// Only GET and HEAD are allowed.
func Handler(r *Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(PathStartup, ProbeHandler(r, Startup))
	mux.Handle(PathReady, ProbeHandler(r, Readiness))
	mux.Handle(PathLive, ProbeHandler(r, Liveness))
	mux.Handle(PathContainer, ProbeHandler(r, Container))
	mux.Handle(PathStatus, StatusHandler(r))
	return mux
}

// ProbeHandler answers one probe. The traffic listener mounts ProbeHandler(r, Readiness)
// at its configured path so that a target-group health check sees readiness on the traffic
// port.
func ProbeHandler(r *Registry, p Probe) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !allowRead(w, req) {
			return
		}
		q := req.URL.Query()
		res := r.Evaluate(p, q["exclude"]...)
		_, verbose := q["verbose"]
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		code := http.StatusOK
		if !res.OK {
			code = http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
		if req.Method == http.MethodHead {
			return
		}
		fmt.Fprint(w, FormatResult(res, verbose))
	})
}

// FormatResult renders a probe result as the probe endpoints do. Without verbose a passing
// probe is "ok" and a failing one lists its failing checks; verbose lists every check.
func FormatResult(res Result, verbose bool) string {
	var b strings.Builder
	name := probeName(res.Probe)
	if res.OK && !verbose {
		return "ok\n"
	}
	for _, c := range res.Checks {
		switch {
		case c.Excluded:
			fmt.Fprintf(&b, "[+]%s excluded: ok\n", c.Name)
		case c.OK:
			if verbose {
				fmt.Fprintf(&b, "[+]%s ok\n", c.Name)
			}
		default:
			fmt.Fprintf(&b, "[-]%s: %s\n", c.Name, oneLine(c.Reason))
		}
	}
	for _, e := range res.UnknownExcludes {
		fmt.Fprintf(&b, "warn: no check named %q to exclude\n", e)
	}
	if res.OK {
		fmt.Fprintf(&b, "%s check passed\n", name)
	} else {
		fmt.Fprintf(&b, "%s check failed\n", name)
	}
	return b.String()
}

func probeName(p Probe) string {
	switch p {
	case Startup:
		return "startupz"
	case Readiness:
		return "readyz"
	case Liveness:
		return "livez"
	case Container:
		return "containerz"
	}
	return p.String()
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// StatusJSON is one check in the /status document. OK is what gangway_health_check_ok says:
// the check passes every probe it gates; Status is only its lifecycle (a RUNNING check that
// failed is not OK). Attributes is an object: attribute name → value.
type StatusJSON struct {
	OK         bool              `json:"ok"`
	Status     string            `json:"status"`
	Error      string            `json:"error,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
	Since      time.Time         `json:"since"`
	Version    string            `json:"version,omitempty"`
	Gates      []string          `json:"gates,omitempty"`
	TTL        string            `json:"ttl,omitempty"`
}

// StatusDocument renders a snapshot as the /status JSON object: check name → state. When
// the process is terminating, the pseudo-check "shutdown" appears as TERMINATING.
func StatusDocument(s Snapshot) map[string]StatusJSON {
	doc := make(map[string]StatusJSON, len(s.Records)+1)
	failing := s.failing()
	for _, rec := range s.Records {
		j := StatusJSON{
			OK:      !failing[rec.Name],
			Status:  rec.Status.String(),
			Error:   rec.Err,
			Since:   rec.Since.UTC(),
			Version: rec.Version,
		}
		if len(rec.Attrs) > 0 {
			j.Attributes = make(map[string]string, len(rec.Attrs))
			for _, a := range rec.Attrs {
				j.Attributes[a.Key] = a.Value
			}
		}
		if rec.Gates != 0 {
			j.Gates = strings.Split(rec.Gates.String(), ",")
		}
		if rec.TTL > 0 {
			j.TTL = rec.TTL.String()
		}
		doc[rec.Name] = j
	}
	if s.Terminating {
		doc[ShutdownCheckName] = StatusJSON{OK: false, Status: Terminating.String(), Since: s.At.UTC(), Gates: []string{"readiness"}}
	}
	return doc
}

// StatusHandler serves the /status JSON document; it always answers 200.
func StatusHandler(r *Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !allowRead(w, req) {
			return
		}
		body, err := json.MarshalIndent(StatusDocument(r.Snapshot()), "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if req.Method != http.MethodHead {
			w.Write(append(body, '\n'))
		}
	})
}

func allowRead(w http.ResponseWriter, req *http.Request) bool {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}
