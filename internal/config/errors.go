package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem in a configuration file, at a position and a field path.
type FieldError struct {
	File   string // the file name as given to Parse or Load
	Line   int    // 1-based; 0 when unknown
	Column int    // 1-based; 0 when unknown
	Path   string // the field path, like "listeners[0].tls.client_auth"; "" for the document
	Msg    string // what is wrong and what is allowed
}

// Error formats the error as "file:line:column: path: message", leaving out unknown parts.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a configuration, in file order. Parse returns it as its
// error; use errors.As to get at the individual FieldErrors.
type Errors []*FieldError

// Error joins the errors, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As look at each FieldError.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sortByPosition orders errors by line and column; errors without a position go first, and
// errors at the same position keep the order in which they were found.
func (es Errors) sortByPosition() {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
}

var (
	errStatusValue      = errors.New("a status must be a number from 100 to 599")
	errStatusRangeOrder = errors.New("a range must go from low to high")
)
