package ecs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
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
		return nil, jsonError(data, dec, err)
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
