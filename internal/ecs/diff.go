package ecs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecssdk "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// ServiceTaskDefinition returns the task definition a service runs now (its primary
// deployment's), in register-task-definition form: the read-only members of
// DescribeTaskDefinition's answer (taskDefinitionArn, revision, status, registeredAt, ...)
// are dropped, and its tags are kept.
func ServiceTaskDefinition(ctx context.Context, c *ecssdk.Client, cluster, service string) (td *TaskDefinition, arn string, err error) {
	svc, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.DescribeServicesOutput, error) {
		return c.DescribeServices(ctx, &ecssdk.DescribeServicesInput{Cluster: nonEmpty(cluster), Services: []string{service}})
	})
	if err != nil {
		return nil, "", fmt.Errorf("DescribeServices %s: %w", service, err)
	}
	if len(svc.Services) == 0 {
		return nil, "", &notFoundError{what: "service " + service, reason: "not found in cluster " + orString(cluster, "default")}
	}
	arn = aws.ToString(svc.Services[0].TaskDefinition)
	td, err = DescribeTaskDefinition(ctx, c, arn)
	return td, arn, err
}

// DescribeTaskDefinition returns the task definition arn names in register-task-definition
// form, with its tags (see ServiceTaskDefinition).
func DescribeTaskDefinition(ctx context.Context, c *ecssdk.Client, arn string) (*TaskDefinition, error) {
	out, err := withTimeout(ctx, func(ctx context.Context) (*ecssdk.DescribeTaskDefinitionOutput, error) {
		return c.DescribeTaskDefinition(ctx, &ecssdk.DescribeTaskDefinitionInput{
			TaskDefinition: aws.String(arn),
			Include:        []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags},
		})
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeTaskDefinition %s: %w", arn, err)
	}
	if out.TaskDefinition == nil {
		return nil, &notFoundError{what: "task definition " + arn, reason: "not found"}
	}
	td, err := registerInput(out.TaskDefinition)
	if err != nil {
		return nil, fmt.Errorf("task definition %s: %w", arn, err)
	}
	td.Tags = out.Tags
	return td, nil
}

// registerInput copies the members a described task definition shares with
// register-task-definition input. The SDK's types carry no JSON tags, so encoding/json
// matches members by their Go names, which the two types share.
func registerInput(d *ecstypes.TaskDefinition) (*TaskDefinition, error) {
	data, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	var td TaskDefinition
	if err := json.Unmarshal(data, &td); err != nil {
		return nil, err
	}
	return &td, nil
}

// NormalJSON renders a task definition for comparison: API member names (camelCase), keys
// sorted, members that are not set left out, and what ECS fills in on registration made
// explicit — essential containers (the default), the "tcp" protocol of a port mapping, and
// hostPort equal to containerPort in awsvpc mode. Containers are sorted by name and
// environment variables and secrets by name, since their order has no meaning.
func NormalJSON(td *TaskDefinition) string {
	v, _ := normalValue(reflect.ValueOf(td), false).(map[string]any)
	if v == nil {
		v = map[string]any{}
	}
	containers, _ := v["containerDefinitions"].([]any)
	for _, c := range containers {
		c, ok := c.(map[string]any)
		if !ok {
			continue
		}
		if _, ok := c["essential"]; !ok {
			c["essential"] = true
		}
		ports, _ := c["portMappings"].([]any)
		for _, p := range ports {
			if p, ok := p.(map[string]any); ok {
				if _, ok := p["protocol"]; !ok {
					p["protocol"] = "tcp"
				}
				if _, ok := p["hostPort"]; !ok && v["networkMode"] == "awsvpc" && p["containerPort"] != nil {
					p["hostPort"] = p["containerPort"]
				}
			}
		}
		for _, k := range []string{"environment", "secrets"} {
			sortByName(c[k])
		}
	}
	sortByName(containers)
	data, _ := json.MarshalIndent(v, "", "  ")
	return string(data) + "\n"
}

func sortByName(list any) {
	l, _ := list.([]any)
	slices.SortStableFunc(l, func(a, b any) int {
		an, _ := a.(map[string]any)["name"].(string)
		bn, _ := b.(map[string]any)["name"].(string)
		return cmp.Compare(an, bn)
	})
}

// normalValue turns SDK values into JSON values under API member names. Unset members (nil
// pointers, empty lists and maps, zero values that are not behind a pointer) are nil;
// keep keeps a zero value that was set through a pointer (essential: false).
func normalValue(v reflect.Value, keep bool) any {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return normalValue(v.Elem(), true)
	case reflect.Struct:
		m := map[string]any{}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if x := normalValue(v.Field(i), false); x != nil {
				r, n := utf8.DecodeRuneInString(f.Name)
				m[string(unicode.ToLower(r))+f.Name[n:]] = x
			}
		}
		if len(m) == 0 && !keep {
			return nil
		}
		return m
	case reflect.Slice, reflect.Array:
		if v.Len() == 0 {
			return nil
		}
		l := make([]any, v.Len())
		for i := range l {
			l[i] = normalValue(v.Index(i), true)
		}
		return l
	case reflect.Map:
		if v.Len() == 0 {
			return nil
		}
		m := map[string]any{}
		for it := v.MapRange(); it.Next(); {
			m[fmt.Sprint(it.Key().Interface())] = normalValue(it.Value(), true)
		}
		return m
	}
	if v.IsZero() && !keep {
		return nil
	}
	switch v.Kind() { // plain JSON types: enums become strings, int32 becomes int64
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.Bool:
		return v.Bool()
	}
	return v.Interface()
}

// UnifiedDiff compares two texts line by line and returns a unified diff with three lines
// of context ("" when they are equal).
func UnifiedDiff(oldName, newName, oldText, newText string) string {
	a, b := splitLines(oldText), splitLines(newText)
	ops := diffLines(a, b)
	if !slices.ContainsFunc(ops, func(o diffOp) bool { return o.kind != ' ' }) {
		return ""
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", oldName, newName)
	const contextLines = 3
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		// A hunk: from context lines before this change to context lines after the last
		// change that is at most 2*context lines away from the previous one.
		start := max(0, i-contextLines)
		end := i
		for j := i; j < len(ops); j++ {
			if ops[j].kind != ' ' {
				end = j
			} else if j-end > 2*contextLines {
				break
			}
		}
		end = min(len(ops), end+contextLines+1)
		h := ops[start:end]
		oldStart, newStart, oldN, newN := h[0].a+1, h[0].b+1, 0, 0
		for _, o := range h {
			if o.kind != '+' {
				oldN++
			}
			if o.kind != '-' {
				newN++
			}
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", oldStart, oldN, newStart, newN)
		for _, o := range h {
			line := o.line
			fmt.Fprintf(&out, "%c%s\n", o.kind, line)
		}
		i = end
	}
	return out.String()
}

type diffOp struct {
	kind rune // ' ', '-' or '+'
	line string
	a, b int // position in the old and new text when the op applies
}

// diffLines is a longest-common-subsequence line diff; task definitions are a few hundred
// lines, so the quadratic table is small.
func diffLines(a, b []string) []diffOp {
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i], i, j})
			i++
			j++
		case j < len(b) && (i == len(a) || lcs[i][j+1] > lcs[i+1][j]):
			ops = append(ops, diffOp{'+', b[j], i, j})
			j++
		default:
			ops = append(ops, diffOp{'-', a[i], i, j})
			i++
		}
	}
	return ops
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
