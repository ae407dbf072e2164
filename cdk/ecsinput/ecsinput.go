// Package ecsinput renders the ECS resources of a synthesized CloudFormation template as the
// JSON that the AWS CLI and `proxy lint` take: each AWS::ECS::TaskDefinition as
// `aws ecs register-task-definition --cli-input-json` input, each AWS::ECS::Service as
// create-service input, and each target group as `aws elbv2 describe-target-groups` prints
// it, with its attributes. `make cdk-test` lints what the construct synthesizes this way, so
// the construct and the linter cannot disagree unnoticed.
//
// CloudFormation names properties in PascalCase; the ECS API in camelCase, with the same
// words (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecs-taskdefinition.html
// against https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html).
// Keys of user-defined maps (log options, Docker labels) are kept as they are. Intrinsic
// functions are resolved to stand-in values: a Ref to the logical ID, Fn::GetAtt to an ARN
// naming the resource and attribute, pseudo parameters to an example account and region.
package ecsinput

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// MetadataKey is the task definition's Metadata entry that records the budget values the
// template cannot carry (the longest request, the cold start) as lint flags.
const MetadataKey = "Gangway"

// Rendered is every ECS resource of one template, by logical ID.
type Rendered struct {
	TaskDefinitions map[string][]byte
	Services        map[string][]byte
	TargetGroups    map[string][]byte
	// Listeners are the load balancer's listeners (CloudFormation's properties, which are
	// `aws elbv2 create-listener` input); Rules its listener rules as create-rule input, both
	// AWS::ElasticLoadBalancingV2::ListenerRule resources and the createRule calls of
	// Custom::AWS resources (the construct creates its production and test rules that way).
	// Another resource names a custom rule's ARN as "<ID>.Rules.0.RuleArn".
	Listeners map[string][]byte
	Rules     map[string][]byte
	// Functions are the Lambda functions (create-function input): the readiness hook's
	// environment is its configuration.
	Functions map[string][]byte
	// LintFlags are `proxy lint` flags from the task definitions' MetadataKey entries, in
	// flag order ("-cold-start", "10s", ...).
	LintFlags []string
}

type resource struct {
	Type       string
	Properties map[string]any
	Metadata   map[string]any
}

// Render renders the ECS resources of a template.
func Render(template []byte) (Rendered, error) {
	var doc struct{ Resources map[string]resource }
	if err := json.Unmarshal(template, &doc); err != nil {
		return Rendered{}, fmt.Errorf("template: %w", err)
	}
	out := Rendered{TaskDefinitions: map[string][]byte{}, Services: map[string][]byte{}, TargetGroups: map[string][]byte{},
		Listeners: map[string][]byte{}, Rules: map[string][]byte{}, Functions: map[string][]byte{}}
	r := resolver{resources: doc.Resources}
	ids := make([]string, 0, len(doc.Resources))
	for id := range doc.Resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		res := doc.Resources[id]
		var (
			v   any
			dst map[string][]byte
		)
		switch res.Type {
		case "AWS::ECS::TaskDefinition":
			v, dst = camel(r.resolve(res.Properties), ""), out.TaskDefinitions
			if m, ok := res.Metadata[MetadataKey].(map[string]any); ok {
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					out.LintFlags = append(out.LintFlags, "-"+k, fmt.Sprint(m[k]))
				}
			}
		case "AWS::ECS::Service":
			v, dst = camel(r.resolve(res.Properties), ""), out.Services
		case "AWS::ElasticLoadBalancingV2::TargetGroup":
			tg := r.resolve(res.Properties).(map[string]any)
			if attrs, ok := tg["TargetGroupAttributes"]; ok {
				tg["Attributes"] = attrs
				delete(tg, "TargetGroupAttributes")
			}
			v, dst = tg, out.TargetGroups
		case "AWS::ElasticLoadBalancingV2::Listener":
			v, dst = r.resolve(res.Properties), out.Listeners
		case "AWS::ElasticLoadBalancingV2::ListenerRule":
			v, dst = r.resolve(res.Properties), out.Rules
		case "AWS::Lambda::Function":
			v, dst = r.resolve(res.Properties), out.Functions
		case "Custom::AWS":
			params, err := createRule(r.resolve(res.Properties))
			if err != nil {
				return Rendered{}, fmt.Errorf("%s: %w", id, err)
			}
			if params == nil {
				continue
			}
			v, dst = params, out.Rules
		default:
			continue
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return Rendered{}, fmt.Errorf("%s: %w", id, err)
		}
		dst[id] = append(b, '\n')
	}
	return out, nil
}

// createRule returns the parameters of a Custom::AWS resource's Elastic Load Balancing
// createRule call, or nil when it makes another call.
func createRule(props any) (map[string]any, error) {
	create, _ := props.(map[string]any)["Create"].(string)
	if create == "" {
		return nil, nil
	}
	var call struct {
		Service, Action string
		Parameters      map[string]any
	}
	if err := json.Unmarshal([]byte(create), &call); err != nil {
		return nil, fmt.Errorf("property Create: %w", err)
	}
	if call.Service != "ElasticLoadBalancingV2" || call.Action != "createRule" {
		return nil, nil
	}
	return call.Parameters, nil
}

// opaqueMaps are properties whose values are maps with user-defined keys.
var opaqueMaps = map[string]bool{"Options": true, "DockerLabels": true, "DriverOpts": true, "Labels": true}

// camel renames object keys from CloudFormation's PascalCase to the API's camelCase.
func camel(v any, parent string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if opaqueMaps[parent] {
				out[k] = val
				continue
			}
			out[lowerFirst(k)] = camel(val, k)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = camel(e, parent)
		}
		return out
	}
	return v
}

// lowerFirst lowers a leading run of capitals, keeping the last one of a run that starts a
// word: "Cpu" → "cpu", "EFSVolumeConfiguration" → "efsVolumeConfiguration".
func lowerFirst(s string) string {
	r := []rune(s)
	i := 0
	for i < len(r) && unicode.IsUpper(r[i]) {
		i++
	}
	switch {
	case i == 0:
		return s
	case i == len(r) || i == 1:
		return strings.ToLower(string(r[:i])) + string(r[i:])
	default:
		return strings.ToLower(string(r[:i-1])) + string(r[i-1:])
	}
}

// Stand-ins for pseudo parameters.
var pseudo = map[string]string{
	"AWS::AccountId": "123456789012", "AWS::Region": "us-east-1", "AWS::Partition": "aws",
	"AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "stack", "AWS::NoValue": "",
}

type resolver struct{ resources map[string]resource }

// resolve replaces intrinsic functions with stand-in values.
func (r resolver) resolve(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for fn, arg := range x {
				if s, ok := r.intrinsic(fn, arg); ok {
					return s
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = r.resolve(val)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.resolve(e)
		}
		return out
	}
	return v
}

func (r resolver) intrinsic(fn string, arg any) (string, bool) {
	switch fn {
	case "Ref":
		name := fmt.Sprint(arg)
		if p, ok := pseudo[name]; ok {
			return p, true
		}
		return name, true
	case "Fn::GetAtt":
		parts := arg
		if s, ok := arg.(string); ok {
			parts = []any{s}
		}
		a, _ := parts.([]any)
		if len(a) == 0 {
			return "", false
		}
		id := fmt.Sprint(a[0])
		attr := ""
		if len(a) > 1 {
			attr = fmt.Sprint(a[1])
		}
		if attr == "Arn" {
			kind := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(r.resources[id].Type, "AWS::"), "::", "-"))
			return fmt.Sprintf("arn:aws:%s:us-east-1:123456789012:%s", kind, id), true
		}
		return id + "." + attr, true
	case "Fn::Join":
		a, _ := arg.([]any)
		if len(a) != 2 {
			return "", false
		}
		sep := fmt.Sprint(a[0])
		items, _ := r.resolve(a[1]).([]any)
		strs := make([]string, len(items))
		for i, it := range items {
			strs[i] = fmt.Sprint(it)
		}
		return strings.Join(strs, sep), true
	case "Fn::Sub":
		s, ok := arg.(string)
		if !ok {
			return "", false
		}
		for name, val := range pseudo {
			s = strings.ReplaceAll(s, "${"+name+"}", val)
		}
		return s, true
	}
	return "", false
}
