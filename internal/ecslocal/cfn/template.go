package cfn

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Template is a CloudFormation template's sections that ecslocal reads ("Template anatomy",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-anatomy.html).
// Rules (parameter checks) and Mappings are not read.
type Template struct {
	Description string
	Parameters  map[string]struct {
		Type    string
		Default any
	}
	Conditions map[string]any
	Resources  map[string]resourceDef
	Outputs    map[string]struct {
		Description string
		Value       any
		Condition   string
		Export      *struct{ Name any }
	}
}

type resourceDef struct {
	Type       string
	Properties map[string]any
	DependsOn  any // a logical ID or a list of them
	Condition  string
	Metadata   map[string]any
}

// ParseTemplate reads a JSON template (what cdk synth writes; YAML is not read).
func ParseTemplate(body []byte) (*Template, error) {
	var t Template
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, fmt.Errorf("template: %w (ecslocal reads JSON templates)", err)
	}
	if len(t.Resources) == 0 {
		return nil, fmt.Errorf("template: no Resources")
	}
	return &t, nil
}

// noValue is AWS::NoValue: the property that resolves to it is removed.
type noValue struct{}

// resolver evaluates intrinsic functions against the stack's state ("Intrinsic function
// reference",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference.html).
type resolver struct {
	t          *Template
	params     map[string]any // parameters and pseudo parameters
	refs       map[string]any // logical ID → Ref value, for created resources
	attrs      map[string]map[string]any
	conditions map[string]bool
	region     string
}

// condition evaluates a named condition, once.
func (r *resolver) condition(name string) (bool, error) {
	if v, ok := r.conditions[name]; ok {
		return v, nil
	}
	def, ok := r.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("condition %q is not in Conditions", name)
	}
	v, err := r.resolve(def)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("condition %s: %v is not a boolean", name, v)
	}
	r.conditions[name] = b
	return b, nil
}

// resolve evaluates every intrinsic function in v.
func (r *resolver) resolve(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return r.function(k, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			rv, err := r.resolve(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, drop := rv.(noValue); !drop {
				out[k] = rv
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for i, e := range x {
			rv, err := r.resolve(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if _, drop := rv.(noValue); !drop {
				out = append(out, rv)
			}
		}
		return out, nil
	}
	return v, nil
}

func (r *resolver) function(name string, arg any) (any, error) {
	switch name {
	case "Ref":
		id, _ := arg.(string)
		return r.ref(id)
	case "Condition":
		id, _ := arg.(string)
		return r.condition(id)
	case "Fn::If":
		return r.fnIf(arg)
	case "Fn::GetAtt":
		var id, attr string
		switch a := arg.(type) {
		case []any:
			if len(a) == 2 {
				id, _ = a[0].(string)
				attr, _ = a[1].(string)
			}
		case string:
			id, attr, _ = strings.Cut(a, ".")
		}
		return r.getAtt(id, attr)
	}
	a, err := r.resolve(arg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	args, _ := a.([]any)
	switch name {
	case "Fn::Join":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Join: want [delimiter, [values]]")
		}
		sep, _ := args[0].(string)
		list, ok := args[1].([]any)
		if !ok {
			return nil, fmt.Errorf("Fn::Join: %v is not a list", args[1])
		}
		parts := make([]string, len(list))
		for i, e := range list {
			parts[i] = str(e)
		}
		return strings.Join(parts, sep), nil
	case "Fn::Select":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Select: want [index, [values]]")
		}
		i, err := strconv.Atoi(str(args[0]))
		list, ok := args[1].([]any)
		if err != nil || !ok || i < 0 || i >= len(list) {
			return nil, fmt.Errorf("Fn::Select: index %v out of %v", args[0], args[1])
		}
		return list[i], nil
	case "Fn::Split":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Split: want [delimiter, string]")
		}
		var out []any
		for _, p := range strings.Split(str(args[1]), str(args[0])) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::GetAZs":
		return []any{r.region + "a", r.region + "b", r.region + "c"}, nil
	case "Fn::Base64":
		return nil, fmt.Errorf("Fn::Base64 is not modelled")
	case "Fn::Equals":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Equals: want two values")
		}
		return str(args[0]) == str(args[1]), nil
	case "Fn::Not":
		if len(args) != 1 {
			return nil, fmt.Errorf("Fn::Not: want one condition")
		}
		b, ok := args[0].(bool)
		return !b, boolErr(ok, name)
	case "Fn::And", "Fn::Or":
		all := name == "Fn::And"
		for _, e := range args {
			b, ok := e.(bool)
			if !ok {
				return nil, boolErr(false, name)
			}
			if b != all {
				return b, nil
			}
		}
		return all, nil
	case "Fn::Sub":
		return r.sub(a)
	}
	return nil, fmt.Errorf("%s is not modelled", name)
}

// If needs its branches unevaluated until the condition is known.
func (r *resolver) fnIf(arg any) (any, error) {
	args, ok := arg.([]any)
	if !ok || len(args) != 3 {
		return nil, fmt.Errorf("Fn::If: want [condition, then, else]")
	}
	name, _ := args[0].(string)
	c, err := r.condition(name)
	if err != nil {
		return nil, err
	}
	if c {
		return r.resolve(args[1])
	}
	return r.resolve(args[2])
}

func boolErr(ok bool, name string) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%s: want conditions", name)
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// sub is Fn::Sub: ${Name} is a parameter, pseudo parameter, a resource's Ref or (with a dot)
// its attribute, or a variable of the second form's map; ${!Text} stands for ${Text}.
func (r *resolver) sub(a any) (any, error) {
	var s string
	vars := map[string]any{}
	switch x := a.(type) {
	case string:
		s = x
	case []any:
		if len(x) != 2 {
			return nil, fmt.Errorf("Fn::Sub: want a string or [string, {variables}]")
		}
		s, _ = x[0].(string)
		vars, _ = x[1].(map[string]any)
	}
	var err error
	out := subVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		if v, ok := vars[name]; ok {
			return str(v)
		}
		var v any
		var e error
		if id, attr, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
			v, e = r.getAtt(id, attr)
		} else {
			v, e = r.ref(name)
		}
		if e != nil && err == nil {
			err = e
		}
		return str(v)
	})
	if err != nil {
		return nil, fmt.Errorf("Fn::Sub: %w", err)
	}
	return out, nil
}

func (r *resolver) ref(id string) (any, error) {
	if id == "AWS::NoValue" {
		return noValue{}, nil
	}
	if v, ok := r.params[id]; ok {
		return v, nil
	}
	if v, ok := r.refs[id]; ok {
		return v, nil
	}
	if _, ok := r.t.Resources[id]; ok {
		return nil, fmt.Errorf("{\"Ref\": %q}: the resource has not been created", id)
	}
	return nil, fmt.Errorf("{\"Ref\": %q}: no such parameter or resource", id)
}

func (r *resolver) getAtt(id, attr string) (any, error) {
	attrs, ok := r.attrs[id]
	if !ok {
		if _, ok := r.t.Resources[id]; ok {
			return nil, fmt.Errorf("Fn::GetAtt %s.%s: the resource has not been created", id, attr)
		}
		return nil, fmt.Errorf("Fn::GetAtt %s.%s: no such resource", id, attr)
	}
	v, ok := attrs[attr]
	if !ok && attrs[ignoredAttr] == true {
		return fmt.Sprintf("%s.%s", r.refs[id], attr), nil
	}
	if !ok {
		return nil, fmt.Errorf("Fn::GetAtt %s.%s: ecslocal does not model that attribute", id, attr)
	}
	return v, nil
}

// str is a value as a string, the way CloudFormation joins and compares them.
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = str(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// dependencies are the logical IDs a resource refers to (Ref, Fn::GetAtt, Fn::Sub) or names
// in DependsOn, among the template's resources.
func (t *Template) dependencies(id string) []string {
	def := t.Resources[id]
	seen := map[string]bool{}
	add := func(s string) {
		if _, ok := t.Resources[s]; ok && s != id {
			seen[s] = true
		}
	}
	switch d := def.DependsOn.(type) {
	case string:
		add(d)
	case []any:
		for _, e := range d {
			s, _ := e.(string)
			add(s)
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				switch k {
				case "Ref":
					s, _ := e.(string)
					add(s)
				case "Fn::GetAtt":
					switch a := e.(type) {
					case []any:
						if len(a) > 0 {
							s, _ := a[0].(string)
							add(s)
						}
					case string:
						s, _, _ := strings.Cut(a, ".")
						add(s)
					}
				case "Fn::Sub":
					var s string
					switch a := e.(type) {
					case string:
						s = a
					case []any:
						if len(a) > 0 {
							s, _ = a[0].(string)
						}
					}
					for _, m := range subVar.FindAllStringSubmatch(s, -1) {
						name, _, _ := strings.Cut(m[1], ".")
						add(name)
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(def.Properties)
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// order returns the logical IDs so that each comes after those it depends on (by name among
// the ready ones, for a stable order), or an error naming a cycle's members.
func (t *Template) order() ([]string, error) {
	deps := map[string][]string{}
	for id := range t.Resources {
		deps[id] = t.dependencies(id)
	}
	done := map[string]bool{}
	var out []string
	for len(out) < len(deps) {
		var ready []string
		for id, ds := range deps {
			if done[id] {
				continue
			}
			if !slices.ContainsFunc(ds, func(d string) bool { return !done[d] }) {
				ready = append(ready, id)
			}
		}
		if len(ready) == 0 {
			var left []string
			for id := range deps {
				if !done[id] {
					left = append(left, id)
				}
			}
			slices.Sort(left)
			return nil, fmt.Errorf("circular dependency between resources %s", strings.Join(left, ", "))
		}
		slices.Sort(ready)
		for _, id := range ready {
			done[id] = true
		}
		out = append(out, ready...)
	}
	return out, nil
}
