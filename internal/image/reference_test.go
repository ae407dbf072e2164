package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestOneImageReference: the shipped task definitions, the CDK app's defaults and the docs
// name one proxy image, Reference; no other repository for it appears anywhere.
func TestOneImageReference(t *testing.T) {
	const root = "../.."
	taskdefs, _ := filepath.Glob(filepath.Join(root, "taskdefs", "*.json"))
	if len(taskdefs) == 0 {
		t.Fatal("no task definitions")
	}
	for _, f := range taskdefs {
		var td struct {
			ContainerDefinitions []struct {
				Name, Image string
				HealthCheck *struct{ Command []string }
			}
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &td); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		found := false
		for _, c := range td.ContainerDefinitions {
			// The Gangway container runs the probe, whatever flags it gives it.
			if c.HealthCheck != nil && len(c.HealthCheck.Command) >= len(HealthTest) && slices.Equal(c.HealthCheck.Command[:len(HealthTest)], HealthTest) {
				found = true
				if c.Image != Reference {
					t.Errorf("%s: container %s: image %q, want %q", f, c.Name, c.Image, Reference)
				}
			}
		}
		if !found {
			t.Errorf("%s: no Gangway container", f)
		}
	}

	var cdk struct{ Context map[string]any }
	data, err := os.ReadFile(filepath.Join(root, "cdk", "cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cdk); err != nil {
		t.Fatal(err)
	}
	if got := cdk.Context["gangway:proxyImage"].(string) + ":" + cdk.Context["gangway:proxyTag"].(string); got != Reference {
		t.Errorf("cdk/cdk.json: proxy image %s, want %s", got, Reference)
	}

	// In prose: the repository with the release tag, a digest, or a placeholder in capitals.
	docs := []string{filepath.Join(root, "README.md"), filepath.Join(root, "cdk", "README.md"), filepath.Join(root, "taskdefs", "README.md")}
	for _, pattern := range []string{"docs/*.md", "docs/runbooks/*.md"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		docs = append(docs, m...)
	}
	mention := regexp.MustCompile(`ghcr\.io/gangway-ecs/[A-Za-z0-9._-]+(?:[:@][A-Za-z0-9._:-]+)?`)
	for _, f := range append(docs, taskdefs...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		for _, old := range []string{"public.ecr.aws/gangway/", "ghcr.io/gangway-ecs/proxy"} {
			if strings.Contains(text, old) {
				t.Errorf("%s names %s…, not %s", f, old, Repository)
			}
		}
		for _, ref := range mention.FindAllString(text, -1) {
			ref = strings.TrimRight(ref, ".:")
			repo, tag, _ := strings.Cut(ref, ":")
			switch {
			case repo != Repository && !strings.HasPrefix(ref, Repository+"@"):
				t.Errorf("%s: %s is not %s", f, ref, Repository)
			case tag != "" && tag != ReleaseTag && strings.ToUpper(tag) != tag:
				t.Errorf("%s: %s: tag %q, want %s (or a placeholder such as VERSION)", f, ref, tag, ReleaseTag)
			}
		}
	}
}

// TestChangelogNamesTheRelease: the newest release in CHANGELOG.md is ReleaseTag, the version
// every shipped file pins, so that the notes of the pinned version exist.
func TestChangelogNamesTheRelease(t *testing.T) {
	data, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("CHANGELOG.md has no release section (## [X.Y.Z] - YYYY-MM-DD)")
	}
	if got := "v" + string(m[1]); got != ReleaseTag {
		t.Errorf("CHANGELOG.md's newest release is %s, ReleaseTag is %s", got, ReleaseTag)
	}
}
