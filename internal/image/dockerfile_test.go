package image

import (
	"encoding/json"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gangway-ecs/gangway/internal/version"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case
	args string
}

// parseDockerfile reads the instructions of a Dockerfile, split into stages at each FROM.
func parseDockerfile(t *testing.T, file string) [][]instruction {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		cmd, args, _ := strings.Cut(cur, " ")
		cur = ""
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	return stages
}

func jsonArgs(t *testing.T, in instruction) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(in.args), &v); err != nil {
		t.Fatalf("%s %s: not exec form: %v", in.cmd, in.args, err)
	}
	return v
}

// TestDockerfileAgreesWithBuilder: the Dockerfile's final stage gives what Build gives — the
// files, user, entrypoint, command, exposed port, health check and labels — and its build
// stage compiles with the same flags.
func TestDockerfileAgreesWithBuilder(t *testing.T) {
	stages := parseDockerfile(t, "../../Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and the image", len(stages))
	}
	final, build := stages[len(stages)-1], stages[len(stages)-2]
	if final[0].args != "scratch" {
		t.Errorf("the image stage is FROM %s, want scratch", final[0].args)
	}
	got := map[string][]instruction{}
	for _, in := range final {
		got[in.cmd] = append(got[in.cmd], in)
	}
	one := func(cmd string) instruction {
		if len(got[cmd]) != 1 {
			t.Fatalf("%d %s instructions in the image stage, want 1", len(got[cmd]), cmd)
		}
		return got[cmd][0]
	}

	if u := one("USER").args; u != User {
		t.Errorf("USER %s, want %s", u, User)
	}
	if e := jsonArgs(t, one("ENTRYPOINT")); !slices.Equal(e, Entrypoint) {
		t.Errorf("ENTRYPOINT %q, want %q", e, Entrypoint)
	}
	if c := jsonArgs(t, one("CMD")); !slices.Equal(c, Cmd) {
		t.Errorf("CMD %q, want %q", c, Cmd)
	}
	if p := one("EXPOSE").args; p != TrafficPort() {
		t.Errorf("EXPOSE %s, want %s", p, TrafficPort())
	}

	// HEALTHCHECK --interval=5s ... CMD ["/healthcheck"]
	hc := one("HEALTHCHECK").args
	opts, test, ok := strings.Cut(hc, " CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s: want options then CMD [...]", hc)
	}
	want := Healthcheck()
	if args := jsonArgs(t, instruction{"HEALTHCHECK", test}); !slices.Equal(append([]string{"CMD"}, args...), want.Test) {
		t.Errorf("HEALTHCHECK CMD %q, want %q", args, want.Test)
	}
	flags := map[string]string{}
	for _, f := range strings.Fields(opts) {
		k, v, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		flags[k] = v
	}
	for k, d := range map[string]time.Duration{"interval": want.Interval, "timeout": want.Timeout, "start-period": want.StartPeriod} {
		if v, err := time.ParseDuration(flags[k]); err != nil || v != d {
			t.Errorf("HEALTHCHECK --%s=%s, want %s", k, flags[k], d)
		}
	}
	if flags["retries"] != "3" || want.Retries != 3 {
		t.Errorf("HEALTHCHECK --retries=%s, want %d", flags["retries"], want.Retries)
	}

	// The files: each COPY's sources, placed under its destination directory.
	var files []string
	for _, in := range got["COPY"] {
		var fields []string
		for _, f := range strings.Fields(in.args) {
			if !strings.HasPrefix(f, "--") {
				fields = append(fields, f)
			} else if strings.HasPrefix(f, "--chown") {
				t.Errorf("COPY %s: files are owned by root, as in the builder's layers", in.args)
			}
		}
		dest := fields[len(fields)-1]
		for _, src := range fields[:len(fields)-1] {
			if strings.HasSuffix(src, "/") { // a directory of the build context: its files
				entries, err := os.ReadDir("../../" + src)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					files = append(files, path.Join(dest, e.Name()))
				}
				continue
			}
			files = append(files, path.Join(dest, path.Base(src)))
		}
	}
	var builder []string
	for _, e := range append(systemEntries(), binaryEntries(nil, nil)...) {
		if !e.Dir() {
			builder = append(builder, e.Path)
		}
	}
	slices.Sort(files)
	slices.Sort(builder)
	if !slices.Equal(files, builder) {
		t.Errorf("the Dockerfile copies %v, the builder's layers hold %v", files, builder)
	}

	labels := one("LABEL").args
	for k := range Labels("v", "r", time.Unix(0, 0)) {
		if !strings.Contains(labels, k+"=") {
			t.Errorf("LABEL lacks %s", k)
		}
	}
	if !strings.Contains(labels, `org.opencontainers.image.source="`+Source+`"`) {
		t.Errorf("LABEL source is not %s", Source)
	}

	// The build stage compiles both binaries as Build does.
	var runs, env string
	for _, in := range build {
		switch in.cmd {
		case "RUN":
			runs += in.args + "\n"
		case "ENV":
			env += in.args + " "
		}
	}
	for _, want := range []string{
		`-trimpath -ldflags "` + version.LDFlags("${VERSION}", "${REVISION}") + `" -o /out/proxy ./cmd/proxy`,
		`-trimpath -ldflags "` + version.LDFlags("${VERSION}", "${REVISION}") + `" -o /out/healthcheck ./cmd/healthcheck`,
	} {
		if !strings.Contains(runs, want) {
			t.Errorf("the build stage does not run go build %s", want)
		}
	}
	for k, v := range buildSettings(Platform{OS: "linux", Architecture: "amd64"}) {
		if k == "GOOS" || k == "GOARCH" || v == "" {
			continue
		}
		if !strings.Contains(env, k+"="+v+" ") {
			t.Errorf("the build stage does not set ENV %s=%s", k, v)
		}
	}
	if !reflect.DeepEqual(final[0], instruction{"FROM", "scratch"}) {
		t.Errorf("final stage starts with %v", final[0])
	}
}

// TestMakefileLinksAsBuilder: `make build` stamps both binaries with the link flags Build and
// the Dockerfile use, so a binary says the same version and commit however it was built.
func TestMakefileLinksAsBuilder(t *testing.T) {
	data, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	want := "LDFLAGS     := " + version.LDFlags("$(VERSION)", "$(COMMIT)") + "\n"
	if !strings.Contains(string(data), want) {
		t.Errorf("the Makefile's LDFLAGS is not version.LDFlags:\nwant %s", want)
	}
	for _, bin := range []string{"proxy", "healthcheck"} {
		if !strings.Contains(string(data), "$(GOBUILD) -o bin/"+bin+" ./cmd/"+bin+"\n") {
			t.Errorf("make build does not link bin/%s with $(GOBUILD)", bin)
		}
	}
}
