package resource

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/gangway-ecs/gangway/internal/config"
	"github.com/gangway-ecs/gangway/internal/spec"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// exampleConfigs are the documented examples and this package's own test configurations.
// Paths are relative, so that file names inside the resources (certificates) and therefore
// the versions do not depend on where the repository is checked out.
func exampleConfigs(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"../../../docs/examples/*.yaml", "testdata/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("%s: no configuration", pattern)
		}
		files = append(files, m...)
	}
	if len(files) < 4 {
		t.Fatalf("found only %d example configurations: %v", len(files), files)
	}
	return files
}

func parseFile(t testing.TB, name string) *config.Config {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(name, data)
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return cfg
}

func goldenName(file string) string {
	base := strings.TrimSuffix(filepath.Base(file), ".yaml")
	if strings.Contains(file, "docs/examples") {
		base = "example-" + base
	}
	return filepath.Join("testdata", base+".golden")
}

// TestCompileGolden compiles every example and compares the resources, as protojson, with
// testdata/*.golden. A configuration that does not compile records its error instead. Run
// `go test ./internal/xds/resource -run TestCompileGolden -update` after an intended change.
func TestCompileGolden(t *testing.T) {
	for _, file := range exampleConfigs(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg := parseFile(t, file)
			var got []byte
			res, err := Compile(cfg)
			if err != nil {
				got = []byte("error: " + err.Error() + "\n")
			} else {
				got = renderJSON(t, res)
			}
			golden := goldenName(file)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the compiled resources (run with -update if intended):\n%s", golden, firstDiff(string(want), string(got)))
			}
		})
	}
}

// renderJSON prints resources as indented protojson, with whitespace normalized (protojson
// varies it on purpose).
func renderJSON(t *testing.T, res *Resources) []byte {
	t.Helper()
	list := func(msgs []proto.Message) []json.RawMessage {
		out := []json.RawMessage{}
		for _, m := range msgs {
			b, err := protojson.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	doc := map[string]any{
		"version":   res.Version,
		"listeners": list(Messages(res.Listeners)),
		"routes":    list(Messages(res.Routes)),
		"clusters":  list(Messages(res.Clusters)),
		"endpoints": list(Messages(res.Endpoints)),
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + a + "\n  got:  " + b
		}
	}
	return "(no line differs)"
}

// TestRoundTrip checks that the data plane gets from the resources exactly what it gets from
// the configuration: ToSpec(Compile(cfg)) equals config.ToSpec(cfg), up to what has no
// meaning (order of listeners and clusters, redundant host patterns, an unused client CA).
func TestRoundTrip(t *testing.T) {
	for _, file := range exampleConfigs(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg := parseFile(t, file)
			want, err := config.ToSpec(cfg)
			if err != nil {
				if _, cerr := Compile(cfg); cerr == nil {
					t.Fatalf("config.ToSpec fails (%v) but Compile succeeds", err)
				}
				t.Logf("not compiled: %v", err)
				return
			}
			res, err := Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ToSpec(res)
			if err != nil {
				t.Fatalf("ToSpec: %v", err)
			}
			if got.Version != res.Version {
				t.Errorf("spec version %q, want the resources' %q", got.Version, res.Version)
			}
			normalize(want)
			normalize(got)
			if !reflect.DeepEqual(want, got) {
				wj, _ := json.MarshalIndent(want, "", " ")
				gj, _ := json.MarshalIndent(got, "", " ")
				t.Errorf("round trip differs:\n%s", firstDiff(string(wj), string(gj)))
			}
		})
	}
}

// normalize removes the differences that do not change what the data plane does.
func normalize(s *spec.Spec) {
	s.Version = ""
	sort.Slice(s.Listeners, func(i, j int) bool { return s.Listeners[i].Name < s.Listeners[j].Name })
	sort.Slice(s.Clusters, func(i, j int) bool { return s.Clusters[i].Name < s.Clusters[j].Name })
	for i := range s.Listeners {
		if t := s.Listeners[i].TLS; t != nil && t.ClientAuth == spec.NoClientCert {
			t.ClientCAFile = ""
		}
		if len(s.Listeners[i].TrustedProxies) == 0 {
			s.Listeners[i].TrustedProxies = nil
		}
	}
	for i := range s.Clusters {
		if hc := s.Clusters[i].HealthCheck; hc != nil && hc.Type == spec.TCPHealthCheck {
			hc.Path, hc.Expected = "", nil // unused by TCP checks
		}
	}
	for i := range s.Routes {
		r := &s.Routes[i]
		r.Hosts = minimalHosts(r.Hosts)
		sort.Strings(r.Hosts)
		if len(r.SetRequestHeaders) == 0 {
			r.SetRequestHeaders = nil
		}
		if len(r.SetResponseHeaders) == 0 {
			r.SetResponseHeaders = nil
		}
		if len(r.RemoveRequestHeaders) == 0 {
			r.RemoveRequestHeaders = nil
		}
		if len(r.RemoveResponseHeaders) == 0 {
			r.RemoveResponseHeaders = nil
		}
		if r.Path.Regex != nil {
			// *regexp.Regexp holds caches; compare the expressions.
			r.Path.Regex = regexp.MustCompile(r.Path.Regex.String())
		}
	}
}

// TestVersion: the version is a function of the resources only. The same file compiled twice,
// or written differently (comments, key order, defaults spelled out), gives the same
// version; a change that reaches the resources gives another.
func TestVersion(t *testing.T) {
	compile := func(yaml string) string {
		t.Helper()
		cfg, err := config.Parse("test.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		res, err := Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return res.Version
	}
	base := compile(`
listeners: [{name: public, address: ":8080"}]
routes: [{name: app, cluster: app}]
clusters: [{name: app, endpoints: ["127.0.0.1:3000"]}]
`)
	same := compile(`
# a comment, another key order, a default spelled out
clusters: [{endpoints: ["127.0.0.1:3000"], name: app, lb_policy: round_robin}]
routes: [{cluster: app, name: app}]
listeners: [{address: ":8080", name: public, protocol: http}]
`)
	if base != same {
		t.Errorf("equivalent configurations: versions %s and %s", base, same)
	}
	if len(base) != 16 {
		t.Errorf("version %q: want 16 hex digits", base)
	}
	for name, yaml := range map[string]string{
		"endpoint": `
listeners: [{name: public, address: ":8080"}]
routes: [{name: app, cluster: app}]
clusters: [{name: app, endpoints: ["127.0.0.1:3001"]}]
`,
		"admin address does not reach the resources, but routes do": `
admin: {address: "127.0.0.1:9999"}
listeners: [{name: public, address: ":8080"}]
routes: [{name: app, cluster: app, timeout: 5s}]
clusters: [{name: app, endpoints: ["127.0.0.1:3000"]}]
`,
	} {
		if v := compile(yaml); v == base {
			t.Errorf("%s: changed configuration kept version %s", name, v)
		}
	}
	onlyAdmin := compile(`
admin: {address: "127.0.0.1:9999"}
log: {level: debug}
listeners: [{name: public, address: ":8080"}]
routes: [{name: app, cluster: app}]
clusters: [{name: app, endpoints: ["127.0.0.1:3000"]}]
`)
	if onlyAdmin != base {
		t.Errorf("a change outside the data plane (admin, log) changed the version: %s -> %s", base, onlyAdmin)
	}
}

// TestValidateAll: every compiled resource passes go-control-plane's generated validation
// (Compile runs it; this checks that it would catch a broken resource).
func TestValidateAll(t *testing.T) {
	res, err := Compile(parseFile(t, "testdata/routing.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Validate(); err != nil {
		t.Fatal(err)
	}
	res.Clusters[0].Name = ""
	if err := res.Validate(); err == nil {
		t.Error("a cluster without a name passed Validate")
	}
}
