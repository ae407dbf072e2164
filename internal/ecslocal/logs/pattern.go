package logs

import (
	"fmt"
	"regexp"
	"strings"
)

// Pattern is a compiled filter pattern of the unstructured-log syntax ("Filter pattern syntax
// for metric filters, subscription filters, filter log events and Live Tail", CloudWatch Logs
// User Guide):
//
//	ERROR                 events that contain ERROR (case-sensitive, anywhere in the message)
//	ERROR Exception       events that contain both
//	"INTERNAL ERROR"      events that contain the exact phrase (\" and \\ escape)
//	?ERROR ?WARN          events that contain either
//	ERROR -Retrying       events that contain ERROR and not Retrying
//	%[0-9]{3} failed%     events that match the regular expression
//	"" or " " or nothing  every event
//
// A ?term starts a group, and the terms that follow it up to the next ?term belong to it:
// `?"not ready" ?failed connection` matches an event that contains "not ready", or both
// "failed" and "connection" (the CDK's FilterPattern.anyTermGroup writes groups that way).
// Terms before the first ?term form a group of their own. JSON patterns ({ $.level = ... })
// and space-delimited ones ([ip, user, ...]) are not supported.
type Pattern struct {
	groups [][]term // any group whose terms all hold; no groups: every event
}

type term struct {
	text    string
	re      *regexp.Regexp // a %regex% term
	exclude bool
}

func (t term) holds(msg string) bool {
	var found bool
	if t.re != nil {
		found = t.re.MatchString(msg)
	} else {
		found = strings.Contains(msg, t.text)
	}
	return found != t.exclude
}

// Match reports whether the pattern matches an event's message.
func (p *Pattern) Match(msg string) bool {
	if p == nil || len(p.groups) == 0 {
		return true
	}
	for _, g := range p.groups {
		all := true
		for _, t := range g {
			if !t.holds(msg) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// ParsePattern compiles a filter pattern; a pattern it cannot take is an
// InvalidParameterException that says why.
func ParsePattern(s string) (*Pattern, error) {
	trimmed := strings.TrimSpace(s)
	if trimmed == "" || trimmed == `""` || trimmed == `" "` {
		return &Pattern{}, nil
	}
	bad := func(why string) error {
		return invalidParameter("filter pattern %q: %s", s, why)
	}
	switch trimmed[0] {
	case '{':
		return nil, bad("JSON filter patterns are not supported by ecslocal (it takes terms, \"quoted phrases\", ?terms, -terms and %regex%)")
	case '[':
		return nil, bad("space-delimited filter patterns are not supported by ecslocal (it takes terms, \"quoted phrases\", ?terms, -terms and %regex%)")
	}
	p := &Pattern{}
	var cur []term
	rest := trimmed
	for rest != "" {
		var t term
		or := false
		switch rest[0] {
		case '?':
			or, rest = true, rest[1:]
		case '-':
			t.exclude, rest = true, rest[1:]
		}
		if rest == "" || rest[0] == ' ' {
			return nil, bad("a ? or - without a term")
		}
		switch rest[0] {
		case '"':
			text, n, err := quoted(rest)
			if err != nil {
				return nil, bad(err.Error())
			}
			t.text, rest = text, rest[n:]
		case '%':
			end := strings.IndexByte(rest[1:], '%')
			if end < 0 {
				return nil, bad("a %regex% without its closing %")
			}
			re, err := regexp.Compile(rest[1 : 1+end])
			if err != nil {
				return nil, bad(fmt.Sprintf("regular expression: %v", err))
			}
			t.re, rest = re, rest[2+end:]
		default:
			end := strings.IndexAny(rest, " \t")
			if end < 0 {
				end = len(rest)
			}
			t.text, rest = rest[:end], rest[end:]
			if strings.ContainsRune(t.text, '"') {
				return nil, bad(fmt.Sprintf("term %s: a double quote inside an unquoted term", t.text))
			}
		}
		if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
			return nil, bad("terms must be separated by spaces")
		}
		rest = strings.TrimLeft(rest, " \t")
		if or && len(cur) > 0 {
			p.groups = append(p.groups, cur)
			cur = nil
		}
		cur = append(cur, t)
	}
	p.groups = append(p.groups, cur)
	return p, nil
}

// quoted reads a double-quoted phrase at the start of s and returns its text and length.
func quoted(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("a quoted phrase without its closing quote: %s", s)
}
