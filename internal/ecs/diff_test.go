package ecs

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func TestUnifiedDiff(t *testing.T) {
	old := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\n"
	for _, tc := range []struct{ name, new, want string }{
		{"equal", old, ""},
		{"one change", strings.Replace(old, "g\n", "G\n", 1),
			"--- old\n+++ new\n@@ -4,7 +4,7 @@\n d\n e\n f\n-g\n+G\n h\n i\n j\n"},
		{"insert at start", "0\n" + old, "--- old\n+++ new\n@@ -1,3 +1,4 @@\n+0\n a\n b\n c\n"},
		{"two hunks", strings.Replace(strings.Replace(old, "a\n", "A\n", 1), "m\n", "", 1),
			"--- old\n+++ new\n@@ -1,4 +1,4 @@\n-a\n+A\n b\n c\n d\n@@ -10,4 +10,3 @@\n j\n k\n l\n-m\n"},
		{"near changes share a hunk", strings.Replace(strings.Replace(old, "c\n", "C\n", 1), "f\n", "F\n", 1),
			"--- old\n+++ new\n@@ -1,9 +1,9 @@\n a\n b\n-c\n+C\n d\n e\n-f\n+F\n g\n h\n i\n"},
	} {
		if got := UnifiedDiff("old", "new", old, tc.new); got != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, got, tc.want)
		}
	}
}

func TestNormalJSON(t *testing.T) {
	td := &TaskDefinition{
		Family:      aws.String("app"),
		NetworkMode: ecstypes.NetworkModeAwsvpc,
		ContainerDefinitions: []ecstypes.ContainerDefinition{
			{Name: aws.String("z"), Essential: aws.Bool(false), DockerLabels: map[string]string{"Team": "edge"}},
			{Name: aws.String("a"), PortMappings: []ecstypes.PortMapping{{ContainerPort: aws.Int32(8080)}},
				Environment: []ecstypes.KeyValuePair{{Name: aws.String("B"), Value: aws.String("")}, {Name: aws.String("A"), Value: aws.String("1")}}},
		},
	}
	want := `{
  "containerDefinitions": [
    {
      "environment": [
        {
          "name": "A",
          "value": "1"
        },
        {
          "name": "B",
          "value": ""
        }
      ],
      "essential": true,
      "name": "a",
      "portMappings": [
        {
          "containerPort": 8080,
          "hostPort": 8080,
          "protocol": "tcp"
        }
      ]
    },
    {
      "dockerLabels": {
        "Team": "edge"
      },
      "essential": false,
      "name": "z"
    }
  ],
  "family": "app",
  "networkMode": "awsvpc"
}
`
	if got := NormalJSON(td); got != want {
		t.Errorf("NormalJSON:\n%s\nwant:\n%s", got, want)
	}
}

func TestCheckStage(t *testing.T) {
	for _, s := range []string{"RECONCILE_SERVICE", "BAKE_TIME", "CLEAN_UP"} {
		if err := CheckStage(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{"", "bake_time", "PRE_PRODUCTION_TRAFFIC_SHIFT"} { // the last is a hook stage, never reported
		if err := CheckStage(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if stageIndex("SCALE_UP") >= stageIndex("BAKE_TIME") || stageIndex("nope") != -1 {
		t.Errorf("stage order")
	}
}

func TestRevisionOf(t *testing.T) {
	const td = "arn:aws:ecs:us-east-1:1:task-definition/app:7"
	revs := []Revision{
		{ARN: "arn:aws:ecs:us-east-1:1:service-revision/prod/app/111", TaskDefinition: td},
		{ARN: "arn:aws:ecs:us-east-1:1:service-revision/prod/app/222", TaskDefinition: td},
		{ARN: "arn:aws:ecs:us-east-1:1:service-revision/prod/app/333", TaskDefinition: "arn:aws:ecs:us-east-1:1:task-definition/app:8"},
	}
	for _, tc := range []struct {
		startedBy, td string
		want          int
	}{
		{"ecs-svc/222", td, 1},
		{"ecs-svc/111", td, 0},
		{"ecs-svc/999", td, -1}, // unknown revision, and two revisions share the task definition
		{"", "arn:aws:ecs:us-east-1:1:task-definition/app:8", 2},
		{"", "arn:aws:ecs:us-east-1:1:task-definition/other:1", -1},
	} {
		task := ecstypes.Task{StartedBy: aws.String(tc.startedBy), TaskDefinitionArn: aws.String(tc.td)}
		if got := revisionOf(revs, task); got != tc.want {
			t.Errorf("startedBy %q, %s: revision %d, want %d", tc.startedBy, tc.td, got, tc.want)
		}
	}
}

func TestFirstLine(t *testing.T) {
	for body, want := range map[string]string{
		"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n": "502 Bad Gateway",
		"\n\n  not implemented  \nmore":                             "not implemented",
		"":                                                          "(empty body)",
		strings.Repeat("x", 300):                                    strings.Repeat("x", 200) + "...",
	} {
		if got := firstLine([]byte(body)); got != want {
			t.Errorf("firstLine(%.20q) = %q, want %q", body, got, want)
		}
	}
}
