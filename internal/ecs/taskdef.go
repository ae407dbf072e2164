package ecs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/gangway-ecs/gangway/internal/config"
)

// TaskDefinition is a task definition in the JSON that
// `aws ecs register-task-definition --cli-input-json` takes.
type TaskDefinition = ecssdk.RegisterTaskDefinitionInput

// ReadTaskDefinition reads and parses a task definition file.
func ReadTaskDefinition(path string) (*TaskDefinition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("task definition: %w", err)
	}
	td, err := ParseTaskDefinition(data)
	if err != nil {
		return nil, fmt.Errorf("task definition %s: %w", path, err)
	}
	return td, nil
}

// ParseTaskDefinition parses register-task-definition input JSON. Member names match the
// API's camelCase names; a member the API does not know is an error (the AWS CLI rejects it
// too), which catches typos such as "stopTimout" that the API would otherwise never see.
func ParseTaskDefinition(data []byte) (*TaskDefinition, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var td TaskDefinition
	if err := dec.Decode(&td); err != nil {
		return nil, unknownMemberError(data, reflect.TypeFor[TaskDefinition](), jsonError(data, dec, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the task definition object")
	}
	if td.Family == nil || *td.Family == "" {
		return nil, errors.New(`"family" is required`)
	}
	if len(td.ContainerDefinitions) == 0 {
		return nil, errors.New(`"containerDefinitions" is required`)
	}
	for i, c := range td.ContainerDefinitions {
		if c.Name == nil || *c.Name == "" {
			return nil, fmt.Errorf("containerDefinitions[%d]: \"name\" is required", i)
		}
	}
	return &td, nil
}

// jsonError adds the line number to a decoding error.
func jsonError(data []byte, dec *json.Decoder, err error) error {
	offset := dec.InputOffset()
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
	}
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	line := 1 + bytes.Count(data[:offset], []byte("\n"))
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.HasPrefix(msg, "unknown field") {
		msg += " (not a register-task-definition member; read-only members of describe-task-definition output such as taskDefinitionArn, revision or status must be removed)"
	}
	return fmt.Errorf("line %d: %s", line, msg)
}

// unknownMemberError completes jsonError's "unknown field" error with where the member is
// (containerDefinitions[0]) and the member of that object it is nearest to, if any:
// encoding/json names only the member. t is the type the document was decoded into.
func unknownMemberError(data []byte, t reflect.Type, err error) error {
	m := regexp.MustCompile(`^line (\d+): unknown field "([^"]*)"`).FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	var doc any
	if json.Unmarshal(data, &doc) != nil {
		return err
	}
	path, suggestion, ok := findMember(doc, t, "", m[2])
	if !ok {
		return err
	}
	where := ""
	if path != "" {
		where = path + ": "
	}
	if suggestion == "" {
		return fmt.Errorf("line %s: %s%s", m[1], where, strings.TrimPrefix(err.Error(), "line "+m[1]+": "))
	}
	return fmt.Errorf("line %s: %sunknown field %q (did you mean %q?)", m[1], where, m[2], suggestion)
}

// findMember looks in v, decoded as t, for an object member named name that t does not have
// (matched without regard to case, as encoding/json matches). It returns the path of the
// object that holds it and the nearest of that object's members, in the API's camelCase.
func findMember(v any, t reflect.Type, path, name string) (string, string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := v.(type) {
	case map[string]any:
		keys := slices.Sorted(maps.Keys(x))
		switch t.Kind() {
		case reflect.Struct:
			fields := map[string]reflect.Type{}
			var names []string
			for i := range t.NumField() {
				if f := t.Field(i); f.IsExported() {
					names = append(names, strings.ToLower(f.Name[:1])+f.Name[1:])
					fields[strings.ToLower(f.Name)] = f.Type
				}
			}
			for _, k := range keys {
				ft, known := fields[strings.ToLower(k)]
				if !known && k == name {
					return path, config.Closest(k, names), true
				}
				if known {
					if p, s, ok := findMember(x[k], ft, memberPath(path, k), name); ok {
						return p, s, true
					}
				}
			}
		case reflect.Map:
			for _, k := range keys {
				if p, s, ok := findMember(x[k], t.Elem(), path+"["+k+"]", name); ok {
					return p, s, true
				}
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, e := range x {
				if p, s, ok := findMember(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), name); ok {
					return p, s, true
				}
			}
		}
	}
	return "", "", false
}

func memberPath(path, member string) string {
	if path == "" {
		return member
	}
	return path + "." + member
}

// Container returns the container definition with the given name.
func Container(td *TaskDefinition, name string) (*ecstypes.ContainerDefinition, bool) {
	for i := range td.ContainerDefinitions {
		if str(td.ContainerDefinitions[i].Name) == name {
			return &td.ContainerDefinitions[i], true
		}
	}
	return nil, false
}

// GangwayContainers returns the names of the containers that run Gangway: those whose
// healthCheck command runs bin/healthcheck (["CMD", "/healthcheck", ...]) or asks the
// probe server's default address for a probe path.
func GangwayContainers(td *TaskDefinition) []string {
	var names []string
	for _, c := range td.ContainerDefinitions {
		if c.HealthCheck != nil && parseHealthCheck(c.HealthCheck.Command).gangway {
			names = append(names, str(c.Name))
		}
	}
	return names
}

// Env returns the value of a container's environment variable.
func Env(c *ecstypes.ContainerDefinition, name string) (string, bool) {
	for _, kv := range c.Environment {
		if str(kv.Name) == name {
			return str(kv.Value), true
		}
	}
	return "", false
}

// SetEnv sets (or adds) a container's environment variable.
func SetEnv(c *ecstypes.ContainerDefinition, name, value string) {
	for i, kv := range c.Environment {
		if str(kv.Name) == name {
			c.Environment[i].Value = &value
			return
		}
	}
	c.Environment = append(c.Environment, ecstypes.KeyValuePair{Name: &name, Value: &value})
}

// str dereferences an optional string from the SDK.
func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
