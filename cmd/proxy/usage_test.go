package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestFlagValueNames runs every command's -h and checks each flag's value name: the flag
// package takes the first backquoted word of a usage string as it, so a backquoted phrase
// (`proxy run`) would print as "-config proxy run". A value name is one placeholder, never
// a command's words.
func TestFlagValueNames(t *testing.T) {
	commandWords := map[string]bool{"proxy": true, "envoy": true}
	for name := range commands(env{}) {
		commandWords[name] = true
	}
	for _, w := range []string{"watch", "deploy", "continue", "rollback", "diff", "init"} {
		commandWords[w] = true
	}
	flagLine := regexp.MustCompile(`^  -(\S+)(?: (.+))?$`)
	for _, cmd := range [][]string{
		{"run"}, {"health"}, {"validate"}, {"lint"}, {"bootstrap", "envoy"},
		{"rollout", "watch"}, {"rollout", "deploy"}, {"rollout", "continue"}, {"rollout", "rollback"}, {"rollout", "diff"}, {"rollout", "init"},
	} {
		var out syncBuffer
		e := env{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
		if code := runMain(context.Background(), append(cmd, "-h"), e); code != exitOK {
			t.Fatalf("proxy %s -h: exit %d\n%s", strings.Join(cmd, " "), code, out.String())
		}
		flags := 0
		for _, line := range strings.Split(out.String(), "\n") {
			m := flagLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			flags++
			if v := m[2]; strings.ContainsAny(v, " \t") || commandWords[v] {
				t.Errorf("proxy %s -h: -%s has the value name %q, prose from its usage string (a backquoted phrase?)", strings.Join(cmd, " "), m[1], v)
			}
		}
		if flags == 0 {
			t.Errorf("proxy %s -h listed no flags:\n%s", strings.Join(cmd, " "), out.String())
		}
	}
}
