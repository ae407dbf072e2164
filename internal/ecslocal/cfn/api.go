package cfn

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecslocal/wire"
)

// The CloudFormation Query API ("AWS CloudFormation API Reference",
// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/Welcome.html): awsQuery,
// Version 2010-05-15.
const (
	Version   = "2010-05-15"
	namespace = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
)

type stackOut struct {
	StackName         string
	StackId           string
	Description       string
	Parameters        []Parameter
	CreationTime      time.Time
	LastUpdatedTime   *time.Time
	StackStatus       string
	StackStatusReason string
	Outputs           []Output
}

type resourceSummary struct {
	LogicalResourceId    string
	PhysicalResourceId   string
	ResourceType         string
	LastUpdatedTimestamp time.Time
	ResourceStatus       string
	ResourceStatusReason string
}

// SetAssetDir says where stacks created through CreateStack find their assets (cdk.out); "" means
// none: their Lambda functions are accepted and ignored.
func (s *Service) SetAssetDir(dir string) {
	s.mu.Lock()
	s.assetDir = dir
	s.mu.Unlock()
}

// ServeHTTP serves the Query API; the form is already parsed (r.PostForm).
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := uuid()
	w.Header().Set("Content-Type", "text/xml")
	if err := r.ParseForm(); err != nil {
		writeError(w, wire.Errorf("MalformedQueryString", "reading the request: %v", err), id)
		return
	}
	op := r.PostForm.Get("Action")
	out, err := s.call(r.Context(), op, r.PostForm)
	if err != nil {
		s.log.Info("cloudformation", "op", op, "error", err)
		writeError(w, err, id)
		return
	}
	raw, err := wire.MarshalQueryResponse(op, namespace, out, id)
	if err != nil {
		writeError(w, err, id)
		return
	}
	s.log.Debug("cloudformation", "op", op)
	_, _ = w.Write(raw)
}

func (s *Service) stack(name string) (Stack, error) {
	if name == "" {
		return Stack{}, wire.Errorf("ValidationError", "StackName is required")
	}
	st := s.Stacks(name)
	if len(st) == 0 {
		return Stack{}, wire.Errorf("ValidationError", "Stack with id %s does not exist", name)
	}
	return st[len(st)-1], nil
}

func (s *Service) call(ctx context.Context, op string, form url.Values) (any, error) {
	decode := func(v any) error {
		if err := wire.UnmarshalQuery(form, v); err != nil {
			return wire.Errorf("ValidationError", "%s: %v", op, err)
		}
		return nil
	}
	// named is the stack of an operation whose only input is StackName.
	named := func() (Stack, error) {
		var in struct{ StackName string }
		if err := decode(&in); err != nil {
			return Stack{}, err
		}
		return s.stack(in.StackName)
	}
	switch op {
	case "CreateStack":
		var in struct {
			StackName, TemplateBody, TemplateURL string
			Parameters                           []struct{ ParameterKey, ParameterValue string }
		}
		if err := decode(&in); err != nil {
			return nil, err
		}
		if in.TemplateBody == "" {
			return nil, wire.Errorf("ValidationError", "ecslocal takes a stack's template as TemplateBody (TemplateURL %q: there is no S3)", in.TemplateURL)
		}
		params := map[string]string{}
		for _, p := range in.Parameters {
			params[p.ParameterKey] = p.ParameterValue
		}
		s.mu.Lock()
		dir := s.assetDir
		s.mu.Unlock()
		// The stack's state says how it went, as DescribeStacks then reports it.
		st, err := s.Create(context.WithoutCancel(ctx), in.StackName, []byte(in.TemplateBody), params, dir)
		var se *stackError
		if errors.As(err, &se) {
			return nil, wire.Errorf(se.code, "%s", se.message)
		}
		if st == nil {
			return nil, wire.Errorf("ValidationError", "%v", err)
		}
		return &struct{ StackId string }{st.StackId}, nil
	case "UpdateStack":
		var in struct {
			StackName, TemplateBody, TemplateURL string
			UsePreviousTemplate                  bool
			Parameters                           []struct {
				ParameterKey, ParameterValue string
				UsePreviousValue             bool
			}
		}
		if err := decode(&in); err != nil {
			return nil, err
		}
		var body []byte
		switch {
		case in.TemplateURL != "":
			return nil, wire.Errorf("ValidationError", "ecslocal takes a stack's template as TemplateBody or UsePreviousTemplate (TemplateURL %q: there is no S3)", in.TemplateURL)
		case in.TemplateBody != "" && in.UsePreviousTemplate:
			return nil, wire.Errorf("ValidationError", "You cannot specify both usePreviousTemplate and Template Body/Template URL")
		case in.TemplateBody != "":
			body = []byte(in.TemplateBody)
		case !in.UsePreviousTemplate:
			return nil, wire.Errorf("ValidationError", "Either Template URL or Template Body must be specified.")
		}
		params := make([]UpdateParameter, 0, len(in.Parameters))
		for _, p := range in.Parameters {
			params = append(params, UpdateParameter{Key: p.ParameterKey, Value: p.ParameterValue, UsePreviousValue: p.UsePreviousValue})
		}
		st, err := s.Update(ctx, in.StackName, body, params)
		var se *stackError
		if errors.As(err, &se) {
			return nil, wire.Errorf(se.code, "%s", se.message)
		}
		if err != nil {
			return nil, wire.Errorf("ValidationError", "%v", err)
		}
		return &struct{ StackId string }{st.StackId}, nil
	case "DescribeStackEvents":
		st, err := named()
		if err != nil {
			return nil, err
		}
		return &struct{ StackEvents []Event }{s.Events(st.StackId)}, nil
	case "DescribeStacks":
		var in struct{ StackName string }
		if err := decode(&in); err != nil {
			return nil, err
		}
		var stacks []Stack
		if in.StackName != "" {
			st, err := s.stack(in.StackName)
			if err != nil {
				return nil, err
			}
			stacks = []Stack{st}
		} else {
			stacks = s.Stacks("")
		}
		out := &struct{ Stacks []stackOut }{Stacks: []stackOut{}}
		for _, st := range stacks {
			out.Stacks = append(out.Stacks, stackOut{st.StackName, st.StackId, st.Description, st.Parameters, st.CreationTime, st.LastUpdatedTime, st.StackStatus, st.StackStatusReason, st.Outputs})
		}
		return out, nil
	case "DescribeStackResources", "ListStackResources":
		var in struct{ StackName, LogicalResourceId string }
		if err := decode(&in); err != nil {
			return nil, err
		}
		st, err := s.stack(in.StackName)
		if err != nil {
			return nil, err
		}
		var res []Resource
		var sums []resourceSummary
		for _, r := range st.Resources {
			if in.LogicalResourceId != "" && r.LogicalResourceId != in.LogicalResourceId {
				continue
			}
			res = append(res, *r)
			sums = append(sums, resourceSummary{r.LogicalResourceId, r.PhysicalResourceId, r.ResourceType, r.Timestamp, r.ResourceStatus, r.ResourceStatusReason})
		}
		if op == "ListStackResources" {
			return &struct{ StackResourceSummaries []resourceSummary }{sums}, nil
		}
		return &struct{ StackResources []Resource }{res}, nil
	case "GetTemplate":
		st, err := named()
		if err != nil {
			return nil, err
		}
		return &struct{ TemplateBody string }{st.Template}, nil
	}
	return nil, wire.Errorf("InvalidAction", "ecslocal does not implement the CloudFormation operation %q (it has CreateStack, UpdateStack, DescribeStacks, DescribeStackEvents, DescribeStackResources, ListStackResources, GetTemplate)", op)
}

func writeError(w http.ResponseWriter, err error, id string) {
	var we *wire.Error
	if !errors.As(err, &we) {
		we = &wire.Error{Code: "InternalFailure", Message: err.Error(), Status: http.StatusInternalServerError}
	}
	w.WriteHeader(we.Status)
	_, _ = w.Write(wire.MarshalQueryError(we, id))
}
