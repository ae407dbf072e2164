package resource

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// fields lists the fields of one message type that the data plane reads, by protobuf field
// name. A nil value accepts the field as a whole (scalars, or messages checked elsewhere); a
// non-nil value lists the fields read from the sub-message, or from each element of a
// repeated one. Any set field that is not listed makes the resource unsupported: the data
// plane would silently ignore it, so it rejects the resource instead, naming the field.
type fields map[string]fields

// leaf marks a field that is accepted as a whole.
var leaf fields

// checkFields returns an error naming the first set field of m, in field-number order, that
// allowed does not list. path prefixes the field names in the error.
func checkFields(m protoreflect.Message, allowed fields, path string) error {
	if len(m.GetUnknown()) > 0 {
		return unsupported(path, "fields unknown to this release of Gangway")
	}
	fds := m.Descriptor().Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if !m.Has(fd) {
			continue
		}
		name := string(fd.Name())
		p := joinPath(path, name)
		sub, ok := allowed[name]
		if !ok {
			return unsupported(p, "not supported by Gangway's data plane")
		}
		if sub == nil || fd.Message() == nil || fd.IsMap() {
			continue
		}
		v := m.Get(fd)
		if fd.IsList() {
			l := v.List()
			for j := 0; j < l.Len(); j++ {
				if err := checkFields(l.Get(j).Message(), sub, fmt.Sprintf("%s[%d]", p, j)); err != nil {
					return err
				}
			}
			continue
		}
		if err := checkFields(v.Message(), sub, p); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fieldError is a problem with one field of a resource. Its message names the field path.
type fieldError struct {
	path string
	msg  string
}

func (e *fieldError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return e.path + ": " + e.msg
}

func unsupported(path, msg string) error { return &fieldError{path: path, msg: msg} }

// paths builds a fields tree from dotted paths: "a.b" and "a.c" give {a: {b: leaf, c: leaf}}.
// A final "{}" accepts the message only when it is empty: "a.{}" gives {a: {}}.
func paths(ps ...string) fields {
	root := fields{}
	for _, p := range ps {
		node := root
		parts := strings.Split(p, ".")
		for i, part := range parts {
			if part == "{}" {
				break
			}
			if i == len(parts)-1 {
				if _, ok := node[part]; !ok {
					node[part] = leaf
				}
				break
			}
			next := node[part]
			if next == nil {
				next = fields{}
				node[part] = next
			}
			node = next
		}
	}
	return root
}
