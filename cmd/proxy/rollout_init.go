package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gangway-ecs/gangway/internal/ecs"
)

// initCmd is `proxy rollout init`: it reads a live service, as `ecspresso init` does, and
// writes the files the other commands read — taskdef.json (register-task-definition input,
// for -taskdef), service.json (describe-services output, for lint's -service and deploy's
// -service-file) and target-group.json (describe-target-groups output with the group's
// attributes, for -target-group). It never overwrites a file unless given -force, so that a
// second run cannot lose edits.
func (o *rolloutOptions) initCmd(ctx context.Context, args []string) error {
	fs := o.flags(false)
	dir := fs.String("dir", ".", "directory to write taskdef.json, service.json and target-group.json in")
	force := fs.Bool("force", false, "overwrite files that exist")
	if err := o.parse(fs, args); err != nil {
		return err
	}
	files := map[string]string{"taskdef": filepath.Join(*dir, "taskdef.json"), "service": filepath.Join(*dir, "service.json"), "targetGroup": filepath.Join(*dir, "target-group.json")}
	if !*force {
		for _, k := range []string{"taskdef", "service", "targetGroup"} { // in a fixed order: one answer
			if f := files[k]; fileExists(f) {
				return &exitError{code: exitFailure, err: fmt.Errorf("%s exists: pass -force to overwrite it, or -dir to write elsewhere", f)}
			}
		}
	}
	c, err := o.client(ctx)
	if err != nil {
		return err
	}
	lb, err := ecs.NewELBClient(ctx, o.region)
	if err != nil {
		return o.apiError(err)
	}
	live, err := ecs.ReadLiveService(ctx, c, lb, o.cluster, o.service)
	if err != nil {
		return o.apiError(err)
	}
	write := map[string][]byte{
		files["taskdef"]: []byte(ecs.NormalJSON(live.TaskDefinition)),
		files["service"]: append(live.Service, '\n'),
	}
	if live.TargetGroup != nil {
		write[files["targetGroup"]] = append(live.TargetGroup, '\n')
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	for name, data := range write {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
	}
	lint := []string{"proxy lint", "-service", files["service"]}
	var text strings.Builder
	fmt.Fprintf(&text, "wrote %s: task definition %s\n", files["taskdef"], ecs.ShortARN(live.TaskDefinitionARN))
	fmt.Fprintf(&text, "wrote %s: service %s\n", files["service"], o.service)
	if live.TargetGroup != nil {
		fmt.Fprintf(&text, "wrote %s: target group %s\n", files["targetGroup"], live.TargetGroupARN)
		lint = append(lint, "-target-group", files["targetGroup"])
	} else {
		files["targetGroup"] = ""
		fmt.Fprintf(&text, "no target group: the service has no load balancer, and lint assumes the recommended one\n")
	}
	lint = append(lint, files["taskdef"])
	fmt.Fprintf(&text, "next: %s\n", strings.Join(lint, " "))
	o.emit(map[string]any{"type": "init", "taskDefinitionArn": live.TaskDefinitionARN, "targetGroupArn": live.TargetGroupARN,
		"taskdef": files["taskdef"], "service": files["service"], "targetGroup": files["targetGroup"]}, text.String())
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
