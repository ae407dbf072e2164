package logs

import (
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	for _, c := range []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"", []string{"anything", " "}, nil},
		{`" "`, []string{"anything"}, nil},
		{`""`, []string{"anything"}, nil},
		{"ERROR", []string{"ERROR: disk", "[ERROR] x", "MYERRORS"}, []string{"error: disk", "Error"}},
		{"ERROR ARGUMENTS", []string{"ERROR bad ARGUMENTS"}, []string{"ERROR only", "ARGUMENTS only"}},
		{`"INTERNAL SERVER ERROR"`, []string{"500 INTERNAL SERVER ERROR"}, []string{"INTERNAL ERROR SERVER"}},
		{`"say \"hi\""`, []string{`they say "hi" here`}, []string{"say hi"}},
		{"?ERROR ?WARN", []string{"ERROR x", "WARN y"}, []string{"INFO z"}},
		{"ERROR -Exception", []string{"ERROR plain"}, []string{"ERROR Exception thrown"}},
		{"-DEBUG", []string{"INFO x"}, []string{"DEBUG x"}},
		{`?"not ready" ?failed ?error`, []string{"proxy not ready: draining", "health check failed", "an error"},
			[]string{"ready", "Failed", "ERROR"}},
		{`?certificate ?tls.certificates`, []string{"tls.certificates[0] expires", "certificate renewed"}, []string{"tls config"}},
		{`"reload rejected"`, []string{`level=WARN msg="reload rejected" version=3`}, []string{"reload: applied"}},
		// A ?term starts a group; the terms after it belong to it.
		{`?"foo" "bar" ?"baz"`, []string{"foo bar", "baz"}, []string{"foo", "bar"}},
		{`?ERROR -timeout ?WARN`, []string{"ERROR x", "WARN timeout"}, []string{"ERROR timeout"}},
		{`%[0-9]{3} fail%`, []string{"got 503 fail"}, []string{"got 50 fail"}},
		{`%^start%`, []string{"start here"}, []string{"not start"}},
	} {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Errorf("ParsePattern(%q): %v", c.pattern, err)
			continue
		}
		for _, m := range c.match {
			if !p.Match(m) {
				t.Errorf("pattern %q does not match %q", c.pattern, m)
			}
		}
		for _, m := range c.miss {
			if p.Match(m) {
				t.Errorf("pattern %q matches %q", c.pattern, m)
			}
		}
	}
}

func TestPatternRefused(t *testing.T) {
	for _, c := range []struct{ pattern, why string }{
		{`{ $.level = "error" }`, "JSON filter patterns are not supported by ecslocal"},
		{`[ip, user, status=5*]`, "space-delimited filter patterns are not supported by ecslocal"},
		{`"open phrase`, "without its closing quote"},
		{`%open regex`, "without its closing %"},
		{`%[%`, "regular expression"},
		{`? alone`, "without a term"},
		{`ERROR -`, "without a term"},
		{`"a"b`, "separated by spaces"},
		{`a"b`, "double quote inside an unquoted term"},
	} {
		_, err := ParsePattern(c.pattern)
		if err == nil || !strings.Contains(err.Error(), c.why) || !strings.HasPrefix(err.Error(), "InvalidParameterException") {
			t.Errorf("ParsePattern(%q) = %v, want an InvalidParameterException saying %q", c.pattern, err, c.why)
		}
	}
}

// FuzzParsePattern: any pattern compiles or is refused, and a compiled one matches without
// panicking.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{`?"not ready" ?failed`, `ERROR -x`, `%a+%`, `"q\"`, `{}`} {
		f.Add(s, "a message")
	}
	f.Fuzz(func(t *testing.T, pattern, msg string) {
		if p, err := ParsePattern(pattern); err == nil {
			p.Match(msg)
		}
	})
}
