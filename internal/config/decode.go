package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder walks a yaml.Node tree into the Config structs by their yaml tags. Unlike
// yaml.Node.Decode it collects every error with its position and field path, rejects
// unknown and repeated keys, parses durations, and records where each field was set, so that
// defaults apply only to fields the file leaves out and later checks can point at lines.
type decoder struct {
	file string
	errs Errors
	// set maps the path of every field the file sets (not null) to the node to blame for it:
	// the key of a mapping entry, or the element of a list.
	set map[string]*yaml.Node
	// bad holds the paths of fields that failed to decode: later checks stay silent about
	// them (and what they contain), whose values are meaningless.
	bad map[string]bool
	// visited counts nodes walked: aliases can make a small document expand into a huge
	// one, and maxNodes bounds the work.
	visited int
}

const maxNodes = 200_000

// enum is implemented by the string types whose values are a fixed set.
type enum interface{ allowed() []string }

func (Services) allowed() []string         { return []string{"all", "proxy", "control"} }
func (LogLevel) allowed() []string         { return []string{"debug", "info", "warn", "error"} }
func (ListenerProtocol) allowed() []string { return []string{"http", "tcp"} }
func (EscapedSlashesAction) allowed() []string {
	return []string{"keep_unchanged", "reject_request", "unescape_and_redirect", "unescape_and_forward"}
}
func (ClientAuth) allowed() []string       { return []string{"none", "verify_if_given", "require"} }
func (LBPolicy) allowed() []string         { return []string{"round_robin", "least_request", "random"} }
func (UpstreamProtocol) allowed() []string { return []string{"http1", "http2"} }
func (HealthCheckType) allowed() []string  { return []string{"http", "tcp"} }

var (
	durationType = reflect.TypeFor[time.Duration]()
	enumType     = reflect.TypeFor[enum]()
)

func newDecoder(file string) *decoder {
	return &decoder{file: file, set: map[string]*yaml.Node{}, bad: map[string]bool{}}
}

// errorf records an error blamed on node n (which may be nil).
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	e := &FieldError{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	d.errs = append(d.errs, e)
}

// value decodes n into v. at is the node to blame for errors (the key when n is a mapping
// value); path is the field path of v.
func (d *decoder) value(path string, at, n *yaml.Node, v reflect.Value) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if at == nil {
		at = n
	}
	d.visited++
	if d.visited > maxNodes {
		if d.visited == maxNodes+1 {
			d.errorf(at, path, "the document is too large (more than %d values after expanding aliases)", maxNodes)
		}
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // null: unset, the default applies
	}
	d.set[path] = at

	t := v.Type()
	switch {
	case t == durationType:
		d.duration(path, at, n, v)
	case t.Kind() == reflect.Pointer:
		p := reflect.New(t.Elem())
		d.value(path, at, n, p.Elem())
		v.Set(p)
	case t.Kind() == reflect.Struct:
		d.structure(path, at, n, v)
	case t.Kind() == reflect.Slice:
		d.list(path, at, n, v)
	case t.Kind() == reflect.Map:
		d.stringMap(path, at, n, v)
	case t.Kind() == reflect.String:
		d.str(path, at, n, v)
	case t.Kind() == reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.errorf(at, path, "expected true or false, found %s", describe(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.errorf(at, path, "expected true or false, found %s", describe(n))
			return
		}
		v.SetBool(b)
	case t.Kind() == reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			d.errorf(at, path, "expected a whole number, found %s", describe(n))
			return
		}
		var i int64
		if err := n.Decode(&i); err != nil || int64(int(i)) != i {
			d.errorf(at, path, "%s is out of range", n.Value)
			return
		}
		v.SetInt(i)
	default:
		panic(fmt.Sprintf("config: no decoder for %s", t)) // a schema change without decoder support
	}
}

func (d *decoder) str(path string, at, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(at, path, "expected a string, found %s", describe(n))
		return
	}
	if v.Type().Implements(enumType) {
		allowed := v.Interface().(enum).allowed()
		if !contains(allowed, n.Value) {
			msg := fmt.Sprintf("%q is not one of %s", n.Value, strings.Join(allowed, ", "))
			if s := Closest(n.Value, allowed); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(at, path, "%s", msg)
			return
		}
	}
	v.SetString(n.Value)
}

func (d *decoder) duration(path string, at, n *yaml.Node, v reflect.Value) {
	const format = `use a number and a unit (ns, us, ms, s, m, h), like "30s", "5m" or "1h30m"`
	if n.Kind != yaml.ScalarNode {
		d.errorf(at, path, "expected a duration (%s), found %s", format, describe(n))
		return
	}
	var dur time.Duration
	switch n.Tag {
	case "!!int", "!!float":
		// A bare 0 is unambiguous; any other bare number lacks its unit.
		if f, err := strconv.ParseFloat(n.Value, 64); err != nil || f != 0 {
			d.errorf(at, path, "%s is not a duration: %s", n.Value, format)
			return
		}
	case "!!str":
		var err error
		if dur, err = time.ParseDuration(n.Value); err != nil {
			d.errorf(at, path, "%q is not a duration: %s", n.Value, format)
			return
		}
	default:
		d.errorf(at, path, "expected a duration (%s), found %s", format, describe(n))
		return
	}
	if dur < 0 {
		d.errorf(at, path, "%s: must not be negative", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) list(path string, at, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(at, path, "expected a list, found %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.value(fmt.Sprintf("%s[%d]", path, i), item, item, s.Index(i))
	}
	v.Set(s)
}

// stringMap decodes a mapping of strings to strings (header maps).
func (d *decoder) stringMap(path string, at, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(at, path, "expected a mapping of names to values, found %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, kv := range d.pairs(path, n) {
		p := path + "." + kv.key.Value
		val := kv.value
		if val.Kind == yaml.AliasNode && val.Alias != nil {
			val = val.Alias
		}
		d.set[p] = kv.key
		switch {
		case val.Kind == yaml.ScalarNode && val.Tag == "!!null":
			m.SetMapIndex(reflect.ValueOf(kv.key.Value), reflect.ValueOf(""))
		case val.Kind == yaml.ScalarNode:
			m.SetMapIndex(reflect.ValueOf(kv.key.Value), reflect.ValueOf(val.Value))
		default:
			d.errorf(kv.key, p, "expected a string, found %s", describe(val))
		}
	}
	v.Set(m)
}

func (d *decoder) structure(path string, at, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.errorf(at, path, "expected a mapping (key: value lines), found %s", describe(n))
		return
	}
	fields := yamlFields(v.Type())
	for _, kv := range d.pairs(path, n) {
		key := kv.key.Value
		p := key
		if path != "" {
			p = path + "." + key
		}
		i, ok := fields.index[key]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", key)
			if s := Closest(key, fields.names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			where := "here"
			if path != "" {
				where = "in " + path
			}
			msg += fmt.Sprintf("; allowed %s: %s", where, strings.Join(fields.names, ", "))
			d.errorf(kv.key, p, "%s", msg)
			continue
		}
		d.value(p, kv.key, kv.value, v.Field(i))
	}
}

type pair struct{ key, value *yaml.Node }

// pairs returns the entries of a mapping node with YAML merge keys ("<<: *anchor") expanded:
// a key set in the mapping itself wins over a merged one, and among merged mappings the
// first wins. A key repeated in the mapping itself is an error.
func (d *decoder) pairs(path string, n *yaml.Node) []pair {
	var out []pair
	seen := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain names, found %s", describe(k))
			continue
		}
		if k.Tag == "!!merge" {
			merges = append(merges, val)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, joinPath(path, k.Value), "set twice (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, val})
	}
	for _, m := range merges {
		if m.Kind == yaml.AliasNode && m.Alias != nil {
			m = m.Alias
		}
		var sources []*yaml.Node
		switch m.Kind {
		case yaml.MappingNode:
			sources = []*yaml.Node{m}
		case yaml.SequenceNode:
			sources = m.Content
		}
		if sources == nil {
			d.errorf(m, path, "a merge (<<) needs a mapping or a list of mappings, found %s", describe(m))
			continue
		}
		for _, src := range sources {
			if src.Kind == yaml.AliasNode && src.Alias != nil {
				src = src.Alias
			}
			if src.Kind != yaml.MappingNode {
				d.errorf(src, path, "a merge (<<) needs a mapping, found %s", describe(src))
				continue
			}
			d.visited += len(src.Content)
			if d.visited > maxNodes {
				continue // value() reports the size error
			}
			for _, kv := range d.pairs(path, src) {
				if _, dup := seen[kv.key.Value]; !dup {
					seen[kv.key.Value] = kv.key
					out = append(out, kv)
				}
			}
		}
	}
	return out
}

type fieldTable struct {
	index map[string]int // yaml key -> struct field index
	names []string       // yaml keys in declaration order
}

func yamlFields(t reflect.Type) fieldTable {
	ft := fieldTable{index: map[string]int{}}
	for i := range t.NumField() {
		name := yamlName(t.Field(i))
		if name == "" {
			continue
		}
		ft.index[name] = i
		ft.names = append(ft.names, name)
	}
	return ft
}

// yamlName is the key of a struct field in the file, or "" when it is not part of the file.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || name == "" {
		return ""
	}
	return name
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names what a node is, for "expected X, found Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.Tag {
	case "!!null":
		return "nothing"
	case "!!bool":
		return "boolean " + n.Value
	case "!!int", "!!float":
		return "number " + n.Value
	case "!!str":
		return fmt.Sprintf("string %q", n.Value)
	}
	return fmt.Sprintf("%s %q", strings.TrimPrefix(n.Tag, "!!"), n.Value)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Closest returns the candidate nearest to s by edit distance, ignoring case, or "" when
// none is close enough to be a plausible typo: the "did you mean" of every configuration
// error, and of the task-definition parser (internal/ecs).
func Closest(s string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		dist := editDistance(strings.ToLower(s), strings.ToLower(c))
		if best == "" || dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if best == "" || bestDist > max(2, len(s)/3) || bestDist >= len(s) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
