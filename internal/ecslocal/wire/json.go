package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	ecsdocument "github.com/aws/aws-sdk-go-v2/service/ecs/document"
)

// The awsJson1_1 protocol (https://smithy.io/2.0/aws/protocols/aws-json-1_1-protocol.html)
// names each member as the API model does. aws-sdk-go-v2 names the Go field after the member
// with its first letter upper-cased, so the wire name is the field name with its first letter
// lower-cased; TestJSONRoundTrip checks that against the SDK's own deserializers for every
// shape the server writes. Timestamps are epoch seconds (a JSON number, fractions allowed).

var (
	timeType        = reflect.TypeFor[time.Time]()
	ecsDocumentType = reflect.TypeFor[ecsdocument.Interface]()
)

// documentMarshaler is what the SDK's document.Interface values (LazyDocument) implement.
type documentMarshaler interface {
	MarshalSmithyDocument() ([]byte, error)
}

// memberName is the wire name of a Go field in an awsJson shape.
func memberName(field string) string {
	r, n := utf8.DecodeRuneInString(field)
	return string(unicode.ToLower(r)) + field[n:]
}

// skipField reports whether a struct field is not a member of the shape: unexported fields,
// the embedded marker struct, and the output's ResultMetadata.
func skipField(f reflect.StructField) bool {
	return !f.IsExported() || f.Anonymous || f.Name == "ResultMetadata"
}

// MarshalJSON encodes v, a pointer to an aws-sdk-go-v2 shape, as an awsJson1_1 body.
// Unset members (nil pointers, nil slices and maps, empty enums) are left out; numbers and
// booleans that the SDK holds by value are always written, since the model gives them a
// default that the value states.
func MarshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encodeJSON(&b, reflect.ValueOf(v)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encodeJSON(b *bytes.Buffer, v reflect.Value) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		return encodeJSON(b, v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		if d, ok := v.Interface().(documentMarshaler); ok {
			raw, err := d.MarshalSmithyDocument()
			if err != nil {
				return err
			}
			b.Write(raw)
			return nil
		}
		return encodeUnion(b, v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			t := v.Interface().(time.Time)
			b.WriteString(epochSeconds(t))
			return nil
		}
		b.WriteByte('{')
		first := true
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if skipField(f) || omit(v.Field(i)) {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			writeString(b, memberName(f.Name))
			b.WriteByte(':')
			if err := encodeJSON(b, v.Field(i)); err != nil {
				return fmt.Errorf("%s: %w", memberName(f.Name), err)
			}
		}
		b.WriteByte('}')
	case reflect.Slice:
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encodeJSON(b, v.Index(i)); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k.String())
			b.WriteByte(':')
			if err := encodeJSON(b, v.MapIndex(k)); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case reflect.String:
		writeString(b, v.String())
	case reflect.Bool, reflect.Int, reflect.Int32, reflect.Int64, reflect.Float32, reflect.Float64:
		raw, err := json.Marshal(v.Interface())
		if err != nil {
			return err
		}
		b.Write(raw)
	default:
		return fmt.Errorf("cannot encode %s", v.Type())
	}
	return nil
}

// encodeUnion writes a union member (a struct named <Union>Member<Name> with a Value field)
// as the one-key object the protocol uses.
func encodeUnion(b *bytes.Buffer, v reflect.Value) error {
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	name := v.Type().Name()
	i := strings.LastIndex(name, "Member")
	val := v.FieldByName("Value")
	if i < 0 || !val.IsValid() {
		return fmt.Errorf("cannot encode %s", v.Type())
	}
	b.WriteByte('{')
	writeString(b, memberName(name[i+len("Member"):]))
	b.WriteByte(':')
	if err := encodeJSON(b, val); err != nil {
		return err
	}
	b.WriteByte('}')
	return nil
}

func omit(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return v.IsNil()
	case reflect.String:
		return v.Len() == 0
	}
	return false
}

func writeString(b *bytes.Buffer, s string) {
	raw, _ := json.Marshal(s) // a string always marshals
	b.Write(raw)
}

// epochSeconds formats t as seconds since the epoch with millisecond precision, the way AWS
// services write timestamps in JSON.
func epochSeconds(t time.Time) string {
	ms := t.UnixMilli()
	if ms%1000 == 0 {
		return fmt.Sprintf("%d", ms/1000)
	}
	return fmt.Sprintf("%.3f", float64(ms)/1000)
}

// SerializationError is a request body that does not fit the operation's input shape.
type SerializationError struct {
	Path string
	Msg  string
}

func (e *SerializationError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// UnmarshalJSON decodes an awsJson1_1 request body into v, a pointer to an SDK input shape.
// Members the shape does not have are ignored; a member of the wrong type is an error that
// names it.
func UnmarshalJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if len(bytes.TrimSpace(data)) == 0 {
		raw = map[string]any{}
	} else if err := dec.Decode(&raw); err != nil {
		return &SerializationError{Msg: "malformed JSON: " + err.Error()}
	}
	return decodeJSON(reflect.ValueOf(v).Elem(), raw, "")
}

func decodeJSON(dst reflect.Value, raw any, path string) error {
	if raw == nil {
		return nil
	}
	mismatch := func(want string) error {
		return &SerializationError{Path: path, Msg: fmt.Sprintf("expected %s, got %T", want, raw)}
	}
	t := dst.Type()
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if err := decodeJSON(p.Elem(), raw, path); err != nil {
			return err
		}
		dst.Set(p)
	case reflect.Interface:
		// ECS documents (hook details) take any JSON value; unions are output-only here.
		if t != ecsDocumentType {
			return &SerializationError{Path: path, Msg: "unsupported member"}
		}
		dst.Set(reflect.ValueOf(ecsdocument.NewLazyDocument(plain(raw))))
	case reflect.Struct:
		if t == timeType {
			n, ok := raw.(json.Number)
			if !ok {
				return mismatch("a timestamp in epoch seconds")
			}
			f, err := n.Float64()
			if err != nil {
				return mismatch("a timestamp in epoch seconds")
			}
			sec, frac := math.Modf(f)
			dst.Set(reflect.ValueOf(time.Unix(int64(sec), int64(math.Round(frac*1e3))*1e6).UTC()))
			return nil
		}
		obj, ok := raw.(map[string]any)
		if !ok {
			return mismatch("an object")
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if skipField(f) {
				continue
			}
			name := memberName(f.Name)
			val, ok := obj[name]
			if !ok {
				continue
			}
			if err := decodeJSON(dst.Field(i), val, join(path, name)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		arr, ok := raw.([]any)
		if !ok {
			return mismatch("a list")
		}
		s := reflect.MakeSlice(t, len(arr), len(arr))
		for i, e := range arr {
			if err := decodeJSON(s.Index(i), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		dst.Set(s)
	case reflect.Map:
		obj, ok := raw.(map[string]any)
		if !ok {
			return mismatch("a map")
		}
		m := reflect.MakeMapWithSize(t, len(obj))
		for k, e := range obj {
			ev := reflect.New(t.Elem()).Elem()
			if err := decodeJSON(ev, e, join(path, k)); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
		dst.Set(m)
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			return mismatch("a string")
		}
		dst.SetString(s)
	case reflect.Bool:
		bv, ok := raw.(bool)
		if !ok {
			return mismatch("a boolean")
		}
		dst.SetBool(bv)
	case reflect.Int32, reflect.Int64, reflect.Int:
		n, ok := raw.(json.Number)
		if !ok {
			return mismatch("an integer")
		}
		i, err := n.Int64()
		if err != nil || dst.OverflowInt(i) {
			return mismatch("an integer")
		}
		dst.SetInt(i)
	case reflect.Float64, reflect.Float32:
		n, ok := raw.(json.Number)
		if !ok {
			return mismatch("a number")
		}
		f, err := n.Float64()
		if err != nil {
			return mismatch("a number")
		}
		dst.SetFloat(f)
	default:
		return &SerializationError{Path: path, Msg: "unsupported member"}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// plain turns the decoder's json.Numbers into float64 or int64 so that a document holds
// ordinary Go values.
func plain(raw any) any {
	switch v := raw.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = plain(e)
		}
	case []any:
		for i, e := range v {
			v[i] = plain(e)
		}
	}
	return raw
}
