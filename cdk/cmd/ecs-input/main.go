// Command ecs-input renders the ECS resources of synthesized templates as AWS CLI input
// (package ecsinput), one directory per template:
//
//	ecs-input -out DIR TEMPLATE.template.json...
//
// writes DIR/<template>/taskdef-<id>.json (register-task-definition input),
// service-<id>.json (create-service input), target-group-<id>.json (describe-target-groups
// with attributes), listener-<id>.json and rule-<id>.json (create-listener and create-rule
// input), function-<id>.json (create-function input) and lint-flags (the `proxy lint` flags
// the template records). It prints each directory it wrote. Exit 1 on an unreadable template, 2 on bad usage.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gangway-ecs/gangway/cdk/ecsinput"
)

func main() {
	fs := flag.NewFlagSet("ecs-input", flag.ContinueOnError)
	out := fs.String("out", "", "directory to write into (required)")
	if err := fs.Parse(os.Args[1:]); err != nil || *out == "" || fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ecs-input -out DIR TEMPLATE.template.json...")
		os.Exit(2)
	}
	for _, path := range fs.Args() {
		if err := render(path, *out); err != nil {
			fmt.Fprintf(os.Stderr, "ecs-input: %s: %v\n", path, err)
			os.Exit(1)
		}
	}
}

func render(path, out string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r, err := ecsinput.Render(data)
	if err != nil {
		return err
	}
	if len(r.TaskDefinitions) == 0 {
		return nil // not a service's template (e.g. the CDK bootstrap's)
	}
	dir := filepath.Join(out, strings.TrimSuffix(filepath.Base(path), ".template.json"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{"lint-flags": []byte(strings.Join(r.LintFlags, " ") + "\n")}
	for prefix, set := range map[string]map[string][]byte{"taskdef": r.TaskDefinitions, "service": r.Services, "target-group": r.TargetGroups,
		"listener": r.Listeners, "rule": r.Rules, "function": r.Functions} {
		for id, b := range set {
			files[prefix+"-"+id+".json"] = b
		}
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Println(dir)
	return nil
}
