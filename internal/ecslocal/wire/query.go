package wire

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The awsQuery protocol (https://smithy.io/2.0/aws/protocols/aws-query-protocol.html): the
// request is a form whose keys are member paths (Targets.member.1.Id), the response an XML
// document whose elements are named after the members, lists wrapped in <member>. Elastic Load
// Balancing v2 names every member in PascalCase, as aws-sdk-go-v2 names its Go fields.

// UnmarshalQuery decodes the form of an awsQuery request into v, a pointer to an SDK input
// shape. Action and Version are the caller's.
func UnmarshalQuery(form url.Values, v any) error {
	return decodeQuery(reflect.ValueOf(v).Elem(), form, "")
}

func decodeQuery(dst reflect.Value, form url.Values, prefix string) error {
	t := dst.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if skipField(f) {
			continue
		}
		if err := decodeQueryValue(dst.Field(i), form, prefix+f.Name); err != nil {
			return err
		}
	}
	return nil
}

// present reports whether the form has key or anything under it.
func present(form url.Values, key string) bool {
	if _, ok := form[key]; ok {
		return true
	}
	for k := range form {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

func decodeQueryValue(dst reflect.Value, form url.Values, key string) error {
	if !present(form, key) {
		return nil
	}
	t := dst.Type()
	bad := func(want string) error {
		return &SerializationError{Path: key, Msg: fmt.Sprintf("expected %s, got %q", want, form.Get(key))}
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if err := decodeQueryValue(p.Elem(), form, key); err != nil {
			return err
		}
		dst.Set(p)
	case reflect.Struct:
		if t == timeType {
			ts, err := time.Parse(time.RFC3339, form.Get(key))
			if err != nil {
				return bad("an ISO 8601 timestamp")
			}
			dst.Set(reflect.ValueOf(ts))
			return nil
		}
		return decodeQuery(dst, form, key+".")
	case reflect.Slice:
		// An empty list is sent as the bare key with an empty value.
		var idx []int
		for k := range form {
			rest, ok := strings.CutPrefix(k, key+".member.")
			if !ok {
				continue
			}
			n, _, _ := strings.Cut(rest, ".")
			i, err := strconv.Atoi(n)
			if err != nil || i < 1 {
				return &SerializationError{Path: k, Msg: "bad list index"}
			}
			if !slices.Contains(idx, i) {
				idx = append(idx, i)
			}
		}
		slices.Sort(idx)
		s := reflect.MakeSlice(t, len(idx), len(idx))
		for j, i := range idx {
			if err := decodeQueryValue(s.Index(j), form, fmt.Sprintf("%s.member.%d", key, i)); err != nil {
				return err
			}
		}
		dst.Set(s)
	case reflect.String:
		dst.SetString(form.Get(key))
	case reflect.Bool:
		b, err := strconv.ParseBool(form.Get(key))
		if err != nil {
			return bad("true or false")
		}
		dst.SetBool(b)
	case reflect.Int32, reflect.Int64, reflect.Int:
		n, err := strconv.ParseInt(form.Get(key), 10, 64)
		if err != nil || dst.OverflowInt(n) {
			return bad("an integer")
		}
		dst.SetInt(n)
	case reflect.Float64, reflect.Float32:
		n, err := strconv.ParseFloat(form.Get(key), 64)
		if err != nil {
			return bad("a number")
		}
		dst.SetFloat(n)
	default:
		return &SerializationError{Path: key, Msg: "unsupported member"}
	}
	return nil
}

// MarshalQueryResponse writes the awsQuery response document of operation op with result v
// (a pointer to an SDK output shape) in namespace xmlns.
func MarshalQueryResponse(op, xmlns string, v any, requestID string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, "<%sResponse xmlns=%q><%sResult>", op, xmlns, op)
	rv := reflect.ValueOf(v).Elem()
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		if skipField(f) || omit(rv.Field(i)) {
			continue
		}
		if err := encodeXML(&b, f.Name, rv.Field(i)); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(&b, "</%sResult><ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>", op, requestID, op)
	return b.Bytes(), nil
}

func encodeXML(b *bytes.Buffer, name string, v reflect.Value) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return encodeXML(b, name, v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			t := v.Interface().(time.Time)
			return element(b, name, t.UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		fmt.Fprintf(b, "<%s>", name)
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if skipField(f) || omit(v.Field(i)) {
				continue
			}
			if err := encodeXML(b, f.Name, v.Field(i)); err != nil {
				return err
			}
		}
		fmt.Fprintf(b, "</%s>", name)
	case reflect.Slice:
		fmt.Fprintf(b, "<%s>", name)
		for i := range v.Len() {
			if err := encodeXML(b, "member", v.Index(i)); err != nil {
				return err
			}
		}
		fmt.Fprintf(b, "</%s>", name)
	case reflect.Map:
		keys := v.MapKeys()
		slices.SortFunc(keys, func(x, y reflect.Value) int { return strings.Compare(x.String(), y.String()) })
		fmt.Fprintf(b, "<%s>", name)
		for _, k := range keys {
			b.WriteString("<entry>")
			if err := element(b, "key", k.String()); err != nil {
				return err
			}
			if err := encodeXML(b, "value", v.MapIndex(k)); err != nil {
				return err
			}
			b.WriteString("</entry>")
		}
		fmt.Fprintf(b, "</%s>", name)
	case reflect.String:
		return element(b, name, v.String())
	case reflect.Bool, reflect.Int, reflect.Int32, reflect.Int64:
		return element(b, name, fmt.Sprint(v.Interface()))
	case reflect.Float32, reflect.Float64:
		return element(b, name, strconv.FormatFloat(v.Float(), 'f', -1, 64))
	default:
		return fmt.Errorf("%s: cannot encode %s", name, v.Type())
	}
	return nil
}

func element(b *bytes.Buffer, name, text string) error {
	fmt.Fprintf(b, "<%s>", name)
	if err := xml.EscapeText(b, []byte(text)); err != nil {
		return err
	}
	fmt.Fprintf(b, "</%s>", name)
	return nil
}

// MarshalQueryError writes the awsQuery error document.
func MarshalQueryError(e *Error, requestID string) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<ErrorResponse><Error>")
	fault := "Sender"
	if e.Status >= 500 {
		fault = "Receiver"
	}
	_ = element(&b, "Type", fault)
	_ = element(&b, "Code", e.Code)
	_ = element(&b, "Message", e.Message)
	b.WriteString("</Error>")
	_ = element(&b, "RequestId", requestID)
	b.WriteString("</ErrorResponse>")
	return b.Bytes()
}
