package ecs

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzLint feeds arbitrary task definitions to the parser and the linter: task definitions
// come from users, and neither may panic on any of them.
func FuzzLint(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(taskdefDir, "*.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"family": "x", "containerDefinitions": [{"name": "p", "healthCheck": {"command": ["CMD", "/healthcheck"], "interval": 0}, "dependsOn": [{}]}, {"name": "a", "dependsOn": [{"containerName": "p"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := ParseTaskDefinition(data)
		if err != nil {
			return
		}
		for _, v := range Lint(LintInput{TaskDefinition: td, LongestRequest: 10 * time.Second, ColdStart: 10 * time.Second}) {
			if v.Field == "" || v.Rule == "" || v.Fix == "" {
				t.Fatalf("incomplete finding %+v", v)
			}
		}
	})
}
