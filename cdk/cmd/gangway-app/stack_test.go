package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// cdkJSONContext reads the context defaults the app ships with in cdk.json.
func cdkJSONContext(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../../cdk.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("cdk.json: %v", err)
	}
	out := map[string]string{}
	for k, v := range doc.Context {
		out[k] = fmt.Sprint(v)
	}
	return out
}

func hookDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBuildFromCdkJSONDefaults(t *testing.T) {
	ctx := cdkJSONContext(t)
	ctx[ctxHookAssetDir] = hookDir(t)
	ctx[ctxProxyTag] = "v1.2.3"
	app := awscdk.NewApp(nil)
	if err := build(app, func(k string) string { return ctx[k] }); err != nil {
		t.Fatal(err)
	}
	stack := app.Node().FindChild(jsii.String("Gangway")).(awscdk.Stack)
	tpl := assertions.Template_FromStack(stack, nil)
	raw, _ := json.Marshal(tpl.ToJSON())
	doc := string(raw)
	for _, want := range []string{`"Strategy":"BLUE_GREEN"`, `"ghcr.io/gangway-ecs/gangway-proxy:v1.2.3"`, `"public.ecr.aws/nginx/nginx:stable"`, `"DomainName":"app.example.com"`} {
		if !strings.Contains(doc, want) {
			t.Errorf("template lacks %s", want)
		}
	}
	// The runbook outputs, under the exact keys runbooks query, and the app's own.
	for _, out := range []string{"LoadBalancerDns", "TestReadinessUrl",
		"ClusterName", "ServiceName", "ServiceArn", "TaskFamily", "ProxyLogGroup", "AppLogGroup", "HookLogGroup",
		"BlueTargetGroupArn", "GreenTargetGroupArn", "ProductionListenerArn", "TestListenerArn",
		"ProductionListenerRuleArn", "TestListenerRuleArn", "AlarmNames", "HookFunctionName", "LoadBalancerDnsName", "DashboardName"} {
		if len(*tpl.FindOutputs(jsii.String(out), map[string]any{})) != 1 {
			t.Errorf("no output %s", out)
		}
	}
}

func TestBuildRejectsBadContext(t *testing.T) {
	for _, tc := range []struct {
		key, value, want string
	}{
		{ctxStrategy, "BLUE", "must be ROLLING, BLUE_GREEN, LINEAR or CANARY"},
		{ctxAppPort, "eighty", "not a whole number"},
		{ctxProxyTag, "", "gangway:proxyTag: required"},
		{ctxInternetFacing, "yes", "must be true or false"},
		{ctxHostedZoneID, "Z123", "gangway:hostedZoneName: required"},
		{ctxDesiredCount, "0", "DesiredCount"}, // 0 means the default; checked below with -1
	} {
		ctx := cdkJSONContext(t)
		ctx[ctxHookAssetDir] = hookDir(t)
		ctx[tc.key] = tc.value
		if tc.key == ctxDesiredCount {
			ctx[tc.key] = "-1"
		}
		err := build(awscdk.NewApp(nil), func(k string) string { return ctx[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%q: error %v, want %q", tc.key, tc.value, err, tc.want)
		}
	}
}

// TestProxyImagePinnedByDigest: the README's `cdk deploy -c gangway:proxyImage=REPO@sha256:...`
// deploys that digest, whatever gangway:proxyTag says.
func TestProxyImagePinnedByDigest(t *testing.T) {
	digest := "123456789012.dkr.ecr.eu-west-1.amazonaws.com/gangway-proxy@sha256:" + strings.Repeat("ab", 32)
	for _, tc := range []struct{ image, tag, want string }{
		{digest, "v9.9.9", digest},
		{"localhost:5000/gangway-proxy:v2", "v9.9.9", "localhost:5000/gangway-proxy:v2"},
		{"localhost:5000/gangway-proxy", "v3", "localhost:5000/gangway-proxy:v3"},
	} {
		ctx := cdkJSONContext(t)
		ctx[ctxHookAssetDir] = hookDir(t)
		ctx[ctxProxyImage], ctx[ctxProxyTag] = tc.image, tc.tag
		app := awscdk.NewApp(nil)
		if err := build(app, func(k string) string { return ctx[k] }); err != nil {
			t.Fatal(err)
		}
		stack := app.Node().FindChild(jsii.String("Gangway")).(awscdk.Stack)
		raw, _ := json.Marshal(assertions.Template_FromStack(stack, nil).ToJSON())
		if !strings.Contains(string(raw), `"Image":"`+tc.want+`"`) {
			t.Errorf("%s with tag %s: the template's proxy image is not %s", tc.image, tc.tag, tc.want)
		}
	}
}

// TestProxyConfigFile: -c gangway:proxyConfigFile=FILE puts the document in the proxy's
// GANGWAY_CONFIG_YAML (the construct's ProxyConfig); a file that cannot be read is an error
// naming the key.
func TestProxyConfigFile(t *testing.T) {
	doc := "listeners:\n  - name: public\n    address: \":8080\"\n    readiness_path: /gangway/ready\nroutes:\n  - name: app\n    cluster: app\n    allow_websockets: true\nclusters:\n  - name: app\n    endpoints: [\"127.0.0.1:80\"]\n"
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := cdkJSONContext(t)
	ctx[ctxHookAssetDir] = hookDir(t)
	ctx[ctxProxyConfig] = path
	app := awscdk.NewApp(nil)
	if err := build(app, func(k string) string { return ctx[k] }); err != nil {
		t.Fatal(err)
	}
	stack := app.Node().FindChild(jsii.String("Gangway")).(awscdk.Stack)
	raw, _ := json.Marshal(assertions.Template_FromStack(stack, nil).ToJSON())
	want, _ := json.Marshal(map[string]string{"Name": "GANGWAY_CONFIG_YAML", "Value": doc})
	if !strings.Contains(string(raw), string(want)) {
		t.Errorf("the template does not carry the document in GANGWAY_CONFIG_YAML")
	}
	ctx[ctxProxyConfig] = filepath.Join(t.TempDir(), "missing.yaml")
	if err := build(awscdk.NewApp(nil), func(k string) string { return ctx[k] }); err == nil || !strings.Contains(err.Error(), ctxProxyConfig) {
		t.Errorf("a missing file: error %v, want one naming %s", err, ctxProxyConfig)
	}
}
