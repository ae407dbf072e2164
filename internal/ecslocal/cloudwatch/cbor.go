package cloudwatch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"

	// smithy-go's CBOR codec, which aws-sdk-go-v2's own clients use: the protocol's subset of
	// RFC 8949 (string map keys, definite lengths written, indefinite ones read). Its API is
	// the SDK's runtime's and may change between versions; go.mod pins the version.
	smithycbor "github.com/aws/smithy-go/encoding/cbor"
)

// The Smithy RPC v2 CBOR protocol (https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html),
// which aws-sdk-go-v2's CloudWatch client speaks from v1.52: POST to CBORPathPrefix followed
// by the operation's name, with a Smithy-Protocol header of rpc-v2-cbor and the input as a
// CBOR map (or no body). The answer carries the same header, the output as a CBOR map, and
// timestamps as epoch seconds under tag 1; an error is a map with __type and message, with the
// status and the x-amzn-query-error header of the awsJson1_0 answer (CloudWatch is
// awsQueryCompatible). The operations, their checks and their errors are the awsJson1_0
// protocol's (ServeHTTP): the input is carried over to it as the JSON it would have been.

// CBORPathPrefix is the path of CloudWatch's operations under the RPC v2 CBOR protocol.
const CBORPathPrefix = "/service/GraniteServiceVersion20100801/operation/"

// serveCBOR serves one operation of the RPC v2 CBOR protocol.
func (s *Service) serveCBOR(w http.ResponseWriter, r *http.Request, op string) {
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	if p := r.Header.Get("Smithy-Protocol"); p != "rpc-v2-cbor" {
		writeCBORError(w, invalid("Smithy-Protocol header %q: the RPC v2 CBOR protocol's requests carry rpc-v2-cbor", p))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeCBORError(w, invalid("reading the request: %v", err))
		return
	}
	in := []byte("{}")
	if len(body) > 0 {
		if in, err = cborToJSON(body); err != nil {
			writeCBORError(w, serializationError(op, err))
			return
		}
	}
	out, err := s.call(op, jsonInput(op, in))
	if err != nil {
		s.log.Info("cloudwatch", "op", op, "protocol", "rpc-v2-cbor", "error", err)
		writeCBORError(w, err)
		return
	}
	v, err := toCBOR(reflect.ValueOf(out))
	if err != nil {
		writeCBORError(w, err)
		return
	}
	s.log.Debug("cloudwatch", "op", op, "protocol", "rpc-v2-cbor")
	_, _ = w.Write(smithycbor.Encode(v))
}

// writeCBORError writes err as the RPC v2 CBOR protocol's error: writeError's status and
// headers, its body as CBOR.
func writeCBORError(w http.ResponseWriter, err error) {
	ae := asAPIError(err)
	setErrorHeaders(w, ae)
	w.WriteHeader(ae.status)
	_, _ = w.Write(smithycbor.Encode(smithycbor.Map{"__type": smithycbor.String(ae.shape), "message": smithycbor.String(ae.message)}))
}

// cborToJSON returns a CBOR input as the JSON that the awsJson1_0 protocol carries: maps
// as objects, timestamps (tag 1) as epoch seconds, blobs as base64 strings.
func cborToJSON(p []byte) ([]byte, error) {
	v, err := smithycbor.Decode(p)
	if err != nil {
		return nil, err
	}
	if _, ok := v.(smithycbor.Map); !ok {
		return nil, fmt.Errorf("the input is a CBOR %s, not a map", cborKind(v))
	}
	g, err := fromCBOR(v, 0)
	if err != nil {
		return nil, err
	}
	return json.Marshal(g)
}

// maxCBORDepth bounds the nesting of an input: CloudWatch's deepest input (PutMetricAlarm's
// Metrics) nests five levels.
const maxCBORDepth = 32

// fromCBOR returns v as a value encoding/json writes.
func fromCBOR(v smithycbor.Value, depth int) (any, error) {
	if depth > maxCBORDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxCBORDepth)
	}
	switch v := v.(type) {
	case smithycbor.Uint:
		return uint64(v), nil
	case smithycbor.NegInt:
		if v == 0 || v > 1<<63 {
			return nil, fmt.Errorf("negative integer out of range")
		}
		return -int64(v-1) - 1, nil
	case smithycbor.Float32:
		return finite(float64(v))
	case smithycbor.Float64:
		return finite(float64(v))
	case smithycbor.String:
		return string(v), nil
	case smithycbor.Slice:
		return []byte(v), nil
	case smithycbor.Bool:
		return bool(v), nil
	case *smithycbor.Nil, *smithycbor.Undefined:
		return nil, nil
	case smithycbor.List:
		out := make([]any, len(v))
		for i, e := range v {
			g, err := fromCBOR(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = g
		}
		return out, nil
	case smithycbor.Map:
		out := make(map[string]any, len(v))
		for k, e := range v {
			g, err := fromCBOR(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = g
		}
		return out, nil
	case *smithycbor.Tag:
		if v.ID != 1 {
			return nil, fmt.Errorf("CBOR tag %d: only tag 1 (an epoch timestamp) is a member's", v.ID)
		}
		switch n := v.Value.(type) {
		case smithycbor.Uint, smithycbor.NegInt, smithycbor.Float32, smithycbor.Float64:
			return fromCBOR(n, depth+1)
		}
		return nil, fmt.Errorf("timestamp (tag 1) of a CBOR %s, not a number", cborKind(v.Value))
	}
	return nil, fmt.Errorf("unexpected CBOR %T", v)
}

func finite(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%v is not a number CloudWatch takes", f)
	}
	return f, nil
}

// cborKind names v's CBOR type, for errors.
func cborKind(v smithycbor.Value) string {
	switch v.(type) {
	case smithycbor.Uint, smithycbor.NegInt:
		return "integer"
	case smithycbor.Float32, smithycbor.Float64:
		return "float"
	case smithycbor.String:
		return "text string"
	case smithycbor.Slice:
		return "byte string"
	case smithycbor.List:
		return "array"
	case smithycbor.Map:
		return "map"
	case *smithycbor.Tag:
		return "tag"
	case smithycbor.Bool:
		return "boolean"
	}
	return "null"
}

var (
	epochType     = reflect.TypeFor[Epoch]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

// toCBOR returns an output value as CBOR, with the member names and omissions encoding/json
// gives it: exported fields under their JSON names, nil slices, maps and pointers and
// omitempty zero values left out, Epoch as a timestamp (tag 1, epoch seconds), and any
// other value with a JSON form of its own (a json.RawMessage that holds a query's
// MetricStat as it was given) as that JSON.
func toCBOR(v reflect.Value) (smithycbor.Value, error) {
	if v.Type() == epochType {
		t := v.Interface().(Epoch).Time
		return &smithycbor.Tag{ID: 1, Value: smithycbor.Float64(float64(t.UnixMilli()) / 1000)}, nil
	}
	if v.Type().Implements(marshalerType) && (v.Kind() != reflect.Pointer || !v.IsNil()) {
		raw, err := json.Marshal(v.Interface())
		if err != nil {
			return nil, err
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var g any
		if err := d.Decode(&g); err != nil {
			return nil, err
		}
		return jsonToCBOR(g)
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return &smithycbor.Nil{}, nil
		}
		return toCBOR(v.Elem())
	case reflect.Struct:
		m := smithycbor.Map{}
		if err := structToCBOR(v, m); err != nil {
			return nil, err
		}
		return m, nil
	case reflect.Slice, reflect.Array:
		l := make(smithycbor.List, v.Len())
		for i := range v.Len() {
			e, err := toCBOR(v.Index(i))
			if err != nil {
				return nil, err
			}
			l[i] = e
		}
		return l, nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("a map keyed by %s", v.Type().Key())
		}
		m := make(smithycbor.Map, v.Len())
		for it := v.MapRange(); it.Next(); {
			e, err := toCBOR(it.Value())
			if err != nil {
				return nil, err
			}
			m[it.Key().String()] = e
		}
		return m, nil
	case reflect.String:
		return smithycbor.String(v.String()), nil
	case reflect.Bool:
		return smithycbor.Bool(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if i := v.Int(); i < 0 {
			return smithycbor.NegInt(uint64(-(i + 1)) + 1), nil
		} else {
			return smithycbor.Uint(uint64(i)), nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return smithycbor.Uint(v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return smithycbor.Float64(v.Float()), nil
	}
	return nil, fmt.Errorf("no CBOR for a %s", v.Type())
}

// jsonToCBOR returns a value decoded from JSON (numbers as json.Number) as CBOR: integers
// as integers, other numbers as doubles.
func jsonToCBOR(g any) (smithycbor.Value, error) {
	switch g := g.(type) {
	case nil:
		return &smithycbor.Nil{}, nil
	case bool:
		return smithycbor.Bool(g), nil
	case string:
		return smithycbor.String(g), nil
	case json.Number:
		if i, err := g.Int64(); err == nil {
			return toCBOR(reflect.ValueOf(i))
		}
		f, err := g.Float64()
		if err != nil {
			return nil, err
		}
		return smithycbor.Float64(f), nil
	case []any:
		l := make(smithycbor.List, len(g))
		for i, e := range g {
			v, err := jsonToCBOR(e)
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	case map[string]any:
		m := make(smithycbor.Map, len(g))
		for k, e := range g {
			v, err := jsonToCBOR(e)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	}
	return nil, fmt.Errorf("no CBOR for JSON's %T", g)
}

// structToCBOR adds v's members to m, embedded structs' members as their own (as
// encoding/json does).
func structToCBOR(v reflect.Value, m smithycbor.Map) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		fv := v.Field(i)
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct && f.Type != epochType {
			if err := structToCBOR(fv, m); err != nil {
				return err
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		switch fv.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
			if fv.IsNil() {
				continue // JSON's null: absent, to the protocol
			}
		}
		if strings.Contains(","+opts+",", ",omitempty,") && emptyJSON(fv) {
			continue
		}
		e, err := toCBOR(fv)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
		m[name] = e
	}
	return nil
}

// emptyJSON reports whether encoding/json's omitempty leaves v out.
func emptyJSON(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
