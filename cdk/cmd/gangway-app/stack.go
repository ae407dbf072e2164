package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/gangway-ecs/gangway/cdk/gangway"
)

// Context keys the app reads. Defaults live in cdk.json.
const (
	ctxStackName      = "gangway:stackName"
	ctxAppImage       = "gangway:appImage"
	ctxAppTag         = "gangway:appTag"
	ctxAppPort        = "gangway:appPort"
	ctxProxyImage     = "gangway:proxyImage"
	ctxProxyTag       = "gangway:proxyTag"
	ctxDomainName     = "gangway:domainName"
	ctxHostedZoneID   = "gangway:hostedZoneId"
	ctxHostedZoneName = "gangway:hostedZoneName"
	ctxCertificateArn = "gangway:certificateArn"
	ctxStrategy       = "gangway:strategy"
	ctxDesiredCount   = "gangway:desiredCount"
	ctxInternetFacing = "gangway:internetFacing"
	ctxHookAssetDir   = "gangway:hookAssetDir"
	ctxProxyConfig    = "gangway:proxyConfigFile"
)

// build adds the stack to app from the context values get returns.
func build(app constructs.Construct, get func(string) string) error {
	var errs []error
	required := func(key string) string {
		v := get(key)
		if v == "" {
			errs = append(errs, fmt.Errorf("context %s: required (set it in cdk.json or pass -c %s=...)", key, key))
		}
		return v
	}
	number := func(key string) int {
		v := get(key)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("context %s = %q: not a whole number", key, v))
		}
		return n
	}

	stackName := get(ctxStackName)
	if stackName == "" {
		stackName = "Gangway"
	}
	appImage, appTag := required(ctxAppImage), required(ctxAppTag)
	proxyImage := required(ctxProxyImage)
	if proxyImage != "" && !pinned(proxyImage) {
		proxyImage += ":" + required(ctxProxyTag)
	}
	props := &gangway.GangwayServiceProps{
		AppPort:      number(ctxAppPort),
		DesiredCount: number(ctxDesiredCount),
		DomainName:   get(ctxDomainName),
		HookAssetDir: get(ctxHookAssetDir),
	}
	if path := get(ctxProxyConfig); path != "" {
		doc, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("context %s: %w", ctxProxyConfig, err))
		}
		props.ProxyConfig = string(doc)
	}
	switch s := get(ctxStrategy); s {
	case "":
	case "ROLLING", "BLUE_GREEN", "LINEAR", "CANARY":
		props.Strategy = awsecs.DeploymentStrategy(s)
	default:
		errs = append(errs, fmt.Errorf("context %s = %q: must be ROLLING, BLUE_GREEN, LINEAR or CANARY", ctxStrategy, s))
	}
	switch v := get(ctxInternetFacing); v {
	case "":
	case "true", "false":
		props.InternetFacing = jsii.Bool(v == "true")
	default:
		errs = append(errs, fmt.Errorf("context %s = %q: must be true or false", ctxInternetFacing, v))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	var env *awscdk.Environment
	if account, region := os.Getenv("CDK_DEFAULT_ACCOUNT"), os.Getenv("CDK_DEFAULT_REGION"); account != "" && region != "" {
		env = &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)}
	}
	stack := awscdk.NewStack(app, jsii.String(stackName), &awscdk.StackProps{
		Env:         env,
		Description: jsii.String("Gangway: blue/green ECS service that rolls itself back when readiness fails"),
	})

	props.AppImage = awsecs.ContainerImage_FromRegistry(jsii.String(appImage+":"+appTag), nil)
	props.ProxyImage = awsecs.ContainerImage_FromRegistry(jsii.String(proxyImage), nil)
	if arn := get(ctxCertificateArn); arn != "" {
		props.Certificate = awscertificatemanager.Certificate_FromCertificateArn(stack, jsii.String("Certificate"), jsii.String(arn))
	}
	if id := get(ctxHostedZoneID); id != "" {
		zone := get(ctxHostedZoneName)
		if zone == "" {
			return fmt.Errorf("context %s: required with %s", ctxHostedZoneName, ctxHostedZoneID)
		}
		props.HostedZone = awsroute53.HostedZone_FromHostedZoneAttributes(stack, jsii.String("Zone"), &awsroute53.HostedZoneAttributes{
			HostedZoneId: jsii.String(id), ZoneName: jsii.String(zone),
		})
	}
	svc, err := gangway.NewGangwayService(stack, "Service", props)
	if err != nil {
		return err
	}
	// The construct creates the runbook outputs (ClusterName, ServiceArn, ... DashboardName;
	// cdk/README.md "For on-call"). LoadBalancerDns is the same value as its
	// LoadBalancerDnsName, kept under the name the getting-started guide reads.
	awscdk.NewCfnOutput(stack, jsii.String("LoadBalancerDns"), &awscdk.CfnOutputProps{
		Description: jsii.String("load balancer DNS name (also LoadBalancerDnsName)"),
		Value:       svc.LoadBalancer.LoadBalancerDnsName(),
	})
	if svc.ReadinessURL != nil {
		awscdk.NewCfnOutput(stack, jsii.String("TestReadinessUrl"), &awscdk.CfnOutputProps{
			Description: jsii.String("readiness through the test listener (reachable only from the hook and TestTrafficCidrs)"),
			Value:       svc.ReadinessURL,
		})
	}
	return nil
}

// pinned reports whether an image reference already names a tag or a digest
// (repository:tag, repository@sha256:...), as `make image-push` prints it; the app then
// ignores gangway:proxyTag. A colon before the last slash is a registry's port.
func pinned(image string) bool {
	return strings.Contains(image, "@") || strings.LastIndexByte(image, ':') > strings.LastIndexByte(image, '/')
}
