"""Checks what `cdk deploy` created in a moto server (AWS_ENDPOINT_URL).

moto's CloudFormation creates resources lazily, when the stack's resources are listed, and
reports CREATE_COMPLETE regardless; so this script lists them (which makes moto create them),
then reads each service's API back and compares it with what the template asked for.

Usage: verify.py STACK_NAME TEMPLATE_JSON
Prints one line per check ("ok ..." / "GAP ..." / "FAIL ...") and exits 1 if any FAIL.
A GAP is something moto does not implement (listed in cdk/README.md); a FAIL is something moto
does implement that came out wrong.
"""

import json
import os
import sys

import boto3

failures = []


def ok(msg):
    print("ok   " + msg)


def gap(msg):
    print("GAP  " + msg)


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg)


def client(name):
    return boto3.client(name, endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def resources_of(template, typ):
    return {k: v.get("Properties", {}) for k, v in template["Resources"].items() if v["Type"] == typ}


def main():
    stack_name, template_path = sys.argv[1], sys.argv[2]
    with open(template_path) as f:
        template = json.load(f)

    cf = client("cloudformation")
    stack = cf.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        ok(f"stack {stack_name} {stack['StackStatus']}")
    else:
        fail(f"stack {stack_name} {stack['StackStatus']}")

    summaries = cf.list_stack_resources(StackName=stack_name)["StackResourceSummaries"]
    physical = {s["LogicalResourceId"]: s.get("PhysicalResourceId") for s in summaries}
    wanted = {k: v["Type"] for k, v in template["Resources"].items() if v["Type"] != "AWS::CDK::Metadata"}
    missing = sorted(f"{k} ({t})" for k, t in wanted.items() if not physical.get(k))
    ok(f"{len(wanted) - len(missing)} of {len(wanted)} resources created")
    for m in missing:
        gap(f"not created by moto's CloudFormation: {m}")

    ecs = client("ecs")
    services = resources_of(template, "AWS::ECS::Service")
    for logical, props in services.items():
        arn = physical.get(logical)
        if not arn:
            fail(f"ECS service {logical} not created")
            continue
        cluster = physical.get(props["Cluster"]["Ref"])
        d = ecs.describe_services(cluster=cluster, services=[arn])["services"]
        if not d:
            fail(f"ECS service {arn} not found in cluster {cluster}")
            continue
        svc = d[0]
        ok(f"ECS service {svc['serviceName']} status {svc.get('status')} desired {svc.get('desiredCount')}")
        if svc.get("desiredCount") != props["DesiredCount"]:
            fail(f"desiredCount {svc.get('desiredCount')} != {props['DesiredCount']}")
        want_dc = props["DeploymentConfiguration"]
        got_dc = svc.get("deploymentConfiguration") or {}
        for key, api in (("MinimumHealthyPercent", "minimumHealthyPercent"), ("MaximumPercent", "maximumPercent")):
            if got_dc.get(api) == want_dc[key]:
                ok(f"deploymentConfiguration.{api} = {got_dc.get(api)}")
            elif api not in got_dc:
                gap(f"deploymentConfiguration.{api} not kept by moto")
            else:
                fail(f"deploymentConfiguration.{api} = {got_dc.get(api)}, want {want_dc[key]}")
        for key, api in (("Strategy", "strategy"), ("BakeTimeInMinutes", "bakeTimeInMinutes"),
                         ("DeploymentCircuitBreaker", "deploymentCircuitBreaker"), ("Alarms", "alarms"),
                         ("LifecycleHooks", "lifecycleHooks")):
            if key not in want_dc:
                continue
            if api in got_dc:
                ok(f"deploymentConfiguration.{api} kept: {json.dumps(got_dc[api], default=str)[:120]}")
            else:
                gap(f"deploymentConfiguration.{api} not kept by moto (template: {json.dumps(want_dc[key])[:80]})")
        lbs = svc.get("loadBalancers") or []
        if lbs:
            ok(f"loadBalancers: container {lbs[0].get('containerName')}:{lbs[0].get('containerPort')}")
            if "AdvancedConfiguration" in props["LoadBalancers"][0] and "advancedConfiguration" not in lbs[0]:
                gap("loadBalancers[].advancedConfiguration (blue/green target group, listener rules) not kept by moto")
        else:
            gap("service loadBalancers not kept by moto")
        if svc.get("healthCheckGracePeriodSeconds") == props.get("HealthCheckGracePeriodSeconds"):
            ok(f"healthCheckGracePeriodSeconds = {svc.get('healthCheckGracePeriodSeconds')}")
        else:
            gap(f"healthCheckGracePeriodSeconds = {svc.get('healthCheckGracePeriodSeconds')} (template {props.get('HealthCheckGracePeriodSeconds')})")

        td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
        proxy = next((c for c in td["containerDefinitions"] if c["name"] == "proxy"), None)
        if proxy is None:
            fail("task definition has no proxy container")
        else:
            hc = proxy.get("healthCheck", {})
            if hc.get("command", [])[:4] == ["CMD", "/healthcheck", "-probe", "container"]:
                ok(f"proxy healthCheck {hc}")
            else:
                fail(f"proxy healthCheck {hc}")
            if proxy.get("stopTimeout"):
                ok(f"proxy stopTimeout {proxy['stopTimeout']}")
            else:
                fail("proxy stopTimeout missing")
            if proxy.get("dependsOn") == [{"containerName": "app", "condition": "START"}]:
                ok("proxy dependsOn app START (proxy stops first)")
            else:
                fail(f"proxy dependsOn {proxy.get('dependsOn')}")

    elb = client("elbv2")
    for logical, props in resources_of(template, "AWS::ElasticLoadBalancingV2::TargetGroup").items():
        arn = physical.get(logical)
        if not arn or "HealthCheckPath" not in props:
            continue  # NoRoute: a Lambda target group
        tg = elb.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
        if tg.get("HealthCheckPath") == props["HealthCheckPath"] and tg.get("HealthCheckIntervalSeconds") == props["HealthCheckIntervalSeconds"]:
            ok(f"target group {logical}: {tg['HealthCheckPath']} every {tg['HealthCheckIntervalSeconds']}s, "
               f"healthy {tg.get('HealthyThresholdCount')} unhealthy {tg.get('UnhealthyThresholdCount')}")
        else:
            fail(f"target group {logical}: {tg}")
        attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]}
        want = next(a["Value"] for a in props["TargetGroupAttributes"] if a["Key"] == "deregistration_delay.timeout_seconds")
        got = attrs.get("deregistration_delay.timeout_seconds")
        if got == want:
            ok(f"target group {logical}: deregistration delay {want}s")
        elif got == "300":
            gap(f"target group {logical}: TargetGroupAttributes ignored by moto's CloudFormation "
                f"(deregistration delay is the ELB default 300, template {want})")
        else:
            fail(f"target group {logical}: deregistration delay {attrs.get('deregistration_delay.timeout_seconds')}, want {want}")
    for logical, props in resources_of(template, "AWS::ElasticLoadBalancingV2::ListenerRule").items():
        arn = physical.get(logical)
        if not arn:
            continue
        rule = elb.describe_rules(RuleArns=[arn])["Rules"][0]
        # The only listener rule resource is the production listener's /gangway/* rule: a
        # plain forward to NoRoute. The weighted rules are custom resources (Custom::AWS).
        if [a["Type"] for a in rule["Actions"]] == ["forward"]:
            ok(f"listener rule {logical}: forward")
        else:
            fail(f"listener rule {logical}: actions {rule['Actions']}")
    for logical in resources_of(template, "Custom::AWS"):
        if physical.get(logical):
            ok(f"custom resource {logical} created")
        else:
            gap(f"custom resource {logical} (the weighted listener rule) not created")

    lam = client("lambda")
    for logical, props in resources_of(template, "AWS::Lambda::Function").items():
        name = physical.get(logical)
        if not name:
            continue
        if props.get("Handler") != "bootstrap":
            continue  # the custom resources' provider function, CDK's own
        fn = lam.get_function(FunctionName=name)["Configuration"]
        if fn.get("Runtime") == "provided.al2023" and fn.get("Handler") == "bootstrap":
            ok(f"hook function {fn['FunctionName']}: {fn['Runtime']}, handler {fn['Handler']}")
        else:
            fail(f"hook function {fn}")
        if fn.get("Architectures") != props.get("Architectures"):
            gap(f"hook function Architectures {fn.get('Architectures')} (template {props.get('Architectures')}): ignored by moto")
        env = fn.get("Environment", {}).get("Variables", {})
        if env.get("GANGWAY_READINESS_URL", "").endswith("/gangway/ready"):
            ok(f"hook function GANGWAY_READINESS_URL = {env['GANGWAY_READINESS_URL']}")
        else:
            fail(f"hook function environment {env}")

    cw = client("cloudwatch")
    names = [p["AlarmName"] for k, p in resources_of(template, "AWS::CloudWatch::Alarm").items() if physical.get(k)]
    found = {a["AlarmName"] for a in cw.describe_alarms(AlarmNames=names)["MetricAlarms"]} if names else set()
    for n in names:
        (ok if n in found else fail)(f"alarm {n}")

    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
