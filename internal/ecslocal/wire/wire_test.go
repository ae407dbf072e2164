package wire

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// A member of the wrong type is refused with its path; the SDK's round trips are in
// server/roundtrip_test.go.
func TestUnmarshalJSONNamesTheMember(t *testing.T) {
	for body, path := range map[string]string{
		`{"family": 7}`: "family",
		`{"containerDefinitions": [{"name": "a"}, {"portMappings": [{"containerPort": "80"}]}]}`: "containerDefinitions[1].portMappings[0].containerPort",
		`{"containerDefinitions": {}}`: "containerDefinitions",
	} {
		err := UnmarshalJSON([]byte(body), &ecs.RegisterTaskDefinitionInput{})
		var se *SerializationError
		if !errors.As(err, &se) || se.Path != path {
			t.Errorf("%s: %v, want an error at %s", body, err, path)
		}
	}
	var in ecs.ListServiceDeploymentsInput
	if err := UnmarshalJSON([]byte(`{"createdAt": {"after": 1764936000.25}}`), &in); err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1764936000, 250e6); !in.CreatedAt.After.Equal(want) {
		t.Errorf("epoch seconds decoded as %v, want %v", in.CreatedAt.After, want)
	}
	if err := UnmarshalJSON(nil, &in); err != nil {
		t.Errorf("an empty body is an empty input: %v", err)
	}
}

func TestUnmarshalQuery(t *testing.T) {
	form := url.Values{
		"TargetGroupArn":        {"arn:tg"},
		"Targets.member.2.Id":   {"198.18.0.3"},
		"Targets.member.1.Id":   {"198.18.0.2"},
		"Targets.member.1.Port": {"8080"},
	}
	var in elb.RegisterTargetsInput
	if err := UnmarshalQuery(form, &in); err != nil {
		t.Fatal(err)
	}
	if len(in.Targets) != 2 || *in.Targets[0].Id != "198.18.0.2" || *in.Targets[0].Port != 8080 || *in.Targets[1].Id != "198.18.0.3" || in.Targets[1].Port != nil {
		t.Errorf("decoded %+v", in.Targets)
	}
	for key, value := range map[string]string{"Targets.member.x.Id": "a", "Targets.member.1.Port": "eighty"} {
		var se *SerializationError
		if err := UnmarshalQuery(url.Values{key: {value}}, &elb.RegisterTargetsInput{}); !errors.As(err, &se) {
			t.Errorf("%s=%s: %v, want a SerializationError", key, value, err)
		}
	}
}
