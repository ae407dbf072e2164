// Package runbooks holds the tests of the runbooks in this directory: every ```sh block must
// parse, use only the variables the shared block in README.md sets (or that the runbook
// itself sets before), and name only AWS CLI commands that exist. Blocks marked
// "# not exercised locally: <why>" are listed, since ecslocal cannot run them; the others run
// against ecslocal in ecslocal_test.go.
package runbooks

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// block is one ```sh block of a runbook.
type block struct {
	file  string
	line  int // of the opening fence
	text  string
	marks []mark // the marker comments directly below the closing fence
}

// mark is a comment line "<!-- key: value -->" directly below a block's closing fence (one
// per line, any number): what the test on ecslocal checks of the block (ecslocal_test.go).
type mark struct{ key, value string }

var markRE = regexp.MustCompile(`^<!-- ([a-z][a-z ]*): (.*) -->$`)

// marked returns the values of b's marks of key, in order.
func (b block) marked(key string) []string {
	var vs []string
	for _, m := range b.marks {
		if m.key == key {
			vs = append(vs, m.value)
		}
	}
	return vs
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.file, b.line) }

const notExercised = "# not exercised locally:"

// readBlocks returns the ```sh blocks of file in order.
func readBlocks(t *testing.T, file string) []block {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks  []block
		cur     *block
		lines   []string
		n       int
		marking bool // the lines since the last closing fence have all been marks
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		l := sc.Text()
		trim := strings.TrimSpace(l)
		if m := markRE.FindStringSubmatch(trim); cur == nil && marking && m != nil {
			last := &blocks[len(blocks)-1]
			last.marks = append(last.marks, mark{m[1], m[2]})
			continue
		}
		marking = false
		switch {
		case cur == nil && trim == "```sh":
			cur = &block{file: filepath.Base(file), line: n}
			lines = nil
		case cur != nil && trim == "```":
			cur.text = strings.Join(lines, "\n") + "\n"
			blocks = append(blocks, *cur)
			cur = nil
			marking = true
		case cur != nil:
			// Blocks nested in list items are indented; the shell does not care, but a
			// heredoc would, so keep the text as written less the common indentation.
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s: unterminated block", cur)
	}
	return blocks
}

func runbookFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) < 2 {
		t.Fatalf("found %d runbooks, want the README and at least one runbook", len(files))
	}
	return files
}

// sharedBlocks are README.md's two blocks that set the variables, from the stack and by hand.
func sharedBlocks(t *testing.T) []block {
	t.Helper()
	var shared []block
	for _, b := range readBlocks(t, "README.md") {
		if strings.Contains(b.text, "CLUSTER=") {
			shared = append(shared, b)
		}
	}
	if len(shared) != 2 {
		t.Fatalf("README.md: %d blocks set CLUSTER, want 2 (from the stack, by hand)", len(shared))
	}
	return shared
}

// The variables every runbook may use: those the shared blocks set, and those of the
// environment the AWS CLI and the shell provide.
var environment = []string{"AWS_REGION", "HOME", "PATH"}

var (
	assignRE = regexp.MustCompile(`(?:^|[\s;(&|])(?:export\s+|local\s+)?([A-Za-z_][A-Za-z0-9_]*)=`)
	forRE    = regexp.MustCompile(`\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b`)
	readRE   = regexp.MustCompile(`\bread\s+(?:-r\s+)?([A-Za-z_][A-Za-z0-9_ ]*)`)
)

// assigned returns the names text sets.
func assigned(text string) []string {
	var names []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		for _, m := range assignRE.FindAllStringSubmatch(l, -1) {
			names = append(names, m[1])
		}
		for _, m := range forRE.FindAllStringSubmatch(l, -1) {
			names = append(names, m[1])
		}
		for _, m := range readRE.FindAllStringSubmatch(l, -1) {
			names = append(names, strings.Fields(m[1])...)
		}
	}
	return names
}

// references returns the variable names text expands ($NAME, ${NAME...}) outside single
// quotes and comments; positional and special parameters are left out.
func references(text string) []string {
	var names []string
	single, double := false, false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case single:
			if c == '\'' {
				single = false
			}
		case c == '\\' && i+1 < len(text):
			i++
		case c == '\'' && !double:
			single = true
		case c == '"':
			double = !double
		case c == '#' && !double && (i == 0 || strings.ContainsRune(" \t\n;", rune(text[i-1]))):
			for i < len(text) && text[i] != '\n' {
				i++
			}
		case c == '$' && i+1 < len(text):
			j := i + 1
			if text[j] == '{' {
				j++
			}
			k := j
			for k < len(text) && (text[k] == '_' || text[k] >= 'A' && text[k] <= 'Z' ||
				text[k] >= 'a' && text[k] <= 'z' || k > j && text[k] >= '0' && text[k] <= '9') {
				k++
			}
			if k > j {
				names = append(names, text[j:k])
			}
		}
	}
	return names
}

// marked returns the reasons of a block's "# not exercised locally:" lines.
func marked(b block) []string {
	var reasons []string
	for _, l := range strings.Split(b.text, "\n") {
		l = strings.TrimSpace(l)
		if r, ok := strings.CutPrefix(l, notExercised); ok && !slices.Contains(reasons, strings.TrimSpace(r)) {
			reasons = append(reasons, strings.TrimSpace(r))
		}
	}
	return reasons
}

// TestBlocksParse runs bash -n on every block, after the shared blocks, with nounset on.
func TestBlocksParse(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not on PATH: cannot parse the runbooks' blocks")
	}
	for _, file := range runbookFiles(t) {
		for _, b := range readBlocks(t, file) {
			out, err := exec.Command(bash, "-n", "-u", "-c", b.text).CombinedOutput()
			if err != nil {
				t.Errorf("%s: bash -n: %v\n%s", b, err, out)
			}
		}
	}
}

// TestBlocksUseKnownVariables checks that each block expands only variables the shared block
// sets, the environment has, or the runbook itself set in this or an earlier block.
func TestBlocksUseKnownVariables(t *testing.T) {
	base := map[string]bool{}
	for _, n := range environment {
		base[n] = true
	}
	for _, b := range sharedBlocks(t) {
		for _, n := range assigned(b.text) {
			base[n] = true
		}
	}
	for _, want := range []string{"STACK", "CLUSTER", "SERVICE", "SERVICE_ARN", "TASK_FAMILY",
		"PROXY_LOG_GROUP", "APP_LOG_GROUP", "BLUE_TG_ARN", "GREEN_TG_ARN", "PROD_LISTENER_ARN",
		"TEST_LISTENER_ARN", "PROD_RULE_ARN", "TEST_RULE_ARN", "ALARM_NAMES", "HOOK_FUNCTION",
		"LB_DNS", "DASHBOARD"} {
		if !base[want] {
			t.Errorf("README.md: the shared blocks do not set %s", want)
		}
	}
	for _, file := range runbookFiles(t) {
		known := map[string]bool{}
		for n := range base {
			known[n] = true
		}
		for _, b := range readBlocks(t, file) {
			for _, n := range assigned(b.text) {
				known[n] = true
			}
			for _, n := range references(b.text) {
				if !known[n] {
					t.Errorf("%s: $%s is set neither by the shared block in README.md nor earlier in %s", b, n, file)
				}
			}
		}
	}
}

// The AWS CLI's own commands that are not in the service models and exist in every CLI
// version. "aws logs tail" is not one: the AWS CLI v1 does not have it, so the runbooks use
// "aws logs filter-log-events".
var cliCustomizations = map[string]bool{
	"cloudformation deploy": true, "cloudformation package": true,
}

var awsRE = regexp.MustCompile(`(?:^|[\s;(|&$])aws\s+([a-z0-9-]+)\s+([a-z0-9-]+)(?:\s+([a-z0-9-]+))?`)

// cliOperations returns, per AWS CLI service name, its commands and waiters as the installed
// botocore models name them (the CLI's names are botocore.xform_name(operation, "-")).
func cliOperations(t *testing.T, services []string) map[string]map[string]bool {
	t.Helper()
	const script = `
import json, sys, botocore, botocore.session
s = botocore.session.get_session()
out = {}
for name in sys.argv[1:]:
    m = s.get_service_model(name)
    ops = [botocore.xform_name(o, "-") for o in m.operation_names]
    try:
        ops += ["wait " + botocore.xform_name(w, "-") for w in s.get_waiter_model(name).waiter_names]
    except Exception:
        pass
    out[name] = ops
print(json.dumps(out))
`
	python, err := exec.LookPath("python3")
	if err == nil {
		cmd := exec.Command(python, append([]string{"-c", script}, services...)...)
		var out []byte
		out, err = cmd.Output()
		if err == nil {
			var raw map[string][]string
			if err = json.Unmarshal(out, &raw); err == nil {
				ops := map[string]map[string]bool{}
				for svc, list := range raw {
					ops[svc] = map[string]bool{}
					for _, o := range list {
						ops[svc][o] = true
					}
				}
				return ops
			}
		}
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%v: %s", err, ee.Stderr)
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot read the AWS CLI's service models (python3 with botocore): %v", err)
	}
	t.Skipf("cannot read the AWS CLI's service models (python3 with botocore, which the AWS CLI installs): %v", err)
	return nil
}

// TestAWSCommandsExist checks every "aws SERVICE COMMAND" against the installed CLI's models.
func TestAWSCommandsExist(t *testing.T) {
	type use struct {
		b                block
		svc, cmd, subcmd string
	}
	var uses []use
	services := map[string]bool{}
	for _, file := range runbookFiles(t) {
		for _, b := range readBlocks(t, file) {
			text := strings.ReplaceAll(b.text, "\\\n", " ")
			for _, l := range strings.Split(text, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), "#") {
					continue
				}
				for _, m := range awsRE.FindAllStringSubmatch(l, -1) {
					uses = append(uses, use{b, m[1], m[2], m[3]})
					services[m[1]] = true
				}
			}
		}
	}
	if len(uses) == 0 {
		t.Fatal("no aws command found in the runbooks")
	}
	var names []string
	for s := range services {
		names = append(names, s)
	}
	sort.Strings(names)
	ops := cliOperations(t, names)
	for _, u := range uses {
		name := u.cmd
		if u.cmd == "wait" {
			name = "wait " + u.subcmd
		}
		if cliCustomizations[u.svc+" "+name] {
			continue
		}
		if !ops[u.svc][name] {
			t.Errorf("%s: aws %s %s: no such command in the installed AWS CLI", u.b, u.svc, name)
		}
	}
	t.Logf("%d aws commands checked in %d services", len(uses), len(names))
}

// TestNotExercisedListed prints the blocks marked as not exercised locally, and checks that
// each mark gives a reason and stands directly above a command.
func TestNotExercisedListed(t *testing.T) {
	var list []string
	for _, file := range runbookFiles(t) {
		for _, b := range readBlocks(t, file) {
			lines := strings.Split(b.text, "\n")
			for i, l := range lines {
				r, ok := strings.CutPrefix(strings.TrimSpace(l), notExercised)
				if !ok {
					continue
				}
				if strings.TrimSpace(r) == "" {
					t.Errorf("%s: %q without a reason", b, notExercised)
				}
				if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) == "" ||
					strings.HasPrefix(strings.TrimSpace(lines[i+1]), "#") {
					t.Errorf("%s: %q is not directly above a command", b, notExercised)
				}
			}
			if reasons := marked(b); len(reasons) > 0 {
				list = append(list, fmt.Sprintf("%s: %s", b, strings.Join(reasons, "; ")))
			}
		}
	}
	fmt.Printf("runbook blocks not exercised locally (%d):\n", len(list))
	for _, l := range list {
		fmt.Println("  " + l)
	}
}

// The extraction and the checks themselves, on text with known answers.
func TestReferencesAndAssignments(t *testing.T) {
	text := `FOO=$(aws ecs x --query 'a[?b==$NOT]' "$BAR") # $ALSO_NOT
for i in 1; do echo "${BAZ:-x} $1 $i"; done
read -r ONE TWO
`
	if got, want := strings.Join(references(text), ","), "BAR,BAZ,i"; got != want {
		t.Errorf("references = %s, want %s", got, want)
	}
	if got, want := strings.Join(assigned(text), ","), "FOO,i,ONE,TWO"; got != want {
		t.Errorf("assigned = %s, want %s", got, want)
	}
	m := awsRE.FindAllStringSubmatch("X=$(aws ecs wait services-stable --cluster c) | aws logs tail g", -1)
	if len(m) != 2 || m[0][1] != "ecs" || m[0][2] != "wait" || m[0][3] != "services-stable" || m[1][2] != "tail" {
		t.Errorf("awsRE matches = %q", m)
	}
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// slug is the anchor GitHub gives a heading: lower case, punctuation other than - and _
// dropped, spaces made -.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns the anchors of a Markdown file's headings.
func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	a := map[string]bool{}
	fence := false
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fence = !fence
		}
		if !fence && strings.HasPrefix(l, "#") {
			a[slug(strings.TrimSpace(strings.TrimLeft(l, "#")))] = true
		}
	}
	return a
}

// TestLinksResolve checks that every relative link of the runbooks names a file that exists
// and, for a Markdown file, a heading it has: a reader at night follows them.
func TestLinksResolve(t *testing.T) {
	for _, file := range runbookFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkRE.FindAllStringSubmatch(string(b), -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(link, "#")
			if path == "" {
				path = file
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s: link %s: %v", file, link, err)
				continue
			}
			if anchor != "" && strings.HasSuffix(path, ".md") && !anchors(t, path)[anchor] {
				t.Errorf("%s: link %s: %s has no heading with anchor #%s", file, link, path, anchor)
			}
		}
	}
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"`proxy rollout` and the AWS CLI":                                "proxy-rollout-and-the-aws-cli",
		"listeners[].tls":                                                "listenerstls",
		"3. Why did the new tasks fail? (circuit breaker)":               "3-why-did-the-new-tasks-fail-circuit-breaker",
		"Set the variables: a service deployed from `taskdefs/` by hand": "set-the-variables-a-service-deployed-from-taskdefs-by-hand",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

var requiredRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*):\?`)

// TestBlocksRunWithStubs runs each runbook's blocks in order in one bash with nounset and
// errexit, after README.md's shared block, with aws, proxy and the other external commands
// replaced by stubs that print "1". It catches what parsing cannot: a variable used before it
// is set, a function called before it is defined, a block that fails in the shell itself. The
// variables a reader must set (${NAME:?why}) are set to dummies.
func TestBlocksRunWithStubs(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not on PATH: cannot run the runbooks' blocks")
	}
	stubs := t.TempDir()
	for _, name := range []string{"aws", "proxy", "curl", "openssl", "sleep"} {
		// Reading stdin keeps "echo | openssl ..." from failing with SIGPIPE under pipefail.
		script := "#!/bin/sh\ncat >/dev/null\necho 1\n"
		if err := os.WriteFile(filepath.Join(stubs, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shared := sharedBlocks(t)
	for _, file := range runbookFiles(t) {
		blocks := readBlocks(t, file)
		for i, sh := range shared {
			var script strings.Builder
			script.WriteString("set -eu -o pipefail\n")
			inputs := map[string]bool{"CLUSTER": true, "SERVICE": true}
			for _, b := range blocks {
				for _, m := range requiredRE.FindAllStringSubmatch(b.text, -1) {
					inputs[m[1]] = true
				}
			}
			for n := range inputs {
				fmt.Fprintf(&script, "export %s=dummy-%s\n", n, strings.ToLower(n))
			}
			script.WriteString(sh.text)
			for _, b := range blocks {
				fmt.Fprintf(&script, "echo '--- %s'\n%s", b, b.text)
			}
			cmd := exec.Command(bash, "-c", script.String())
			cmd.Env = append(os.Environ(), "PATH="+stubs+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s after %s (shared block %d): %v\n%s", file, sh, i+1, err, tail(out, 15))
			}
		}
	}
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
