package ecslocaltest

import (
	"encoding/json"
	"os"
	"testing"
)

// TemplateImages reads a synthesized CloudFormation template and returns the image of each
// container of its task definitions, by container name; the construct's template must name
// an app and a proxy container. hint says what writes the template when it is missing.
func TemplateImages(t testing.TB, path, hint string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the synthesized stack: %v (%s)", err, hint)
	}
	var tpl struct {
		Resources map[string]struct {
			Type       string
			Properties struct {
				ContainerDefinitions []struct{ Name, Image string }
			}
		}
	}
	if err := json.Unmarshal(raw, &tpl); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	images := map[string]string{}
	for _, r := range tpl.Resources {
		if r.Type == "AWS::ECS::TaskDefinition" {
			for _, c := range r.Properties.ContainerDefinitions {
				images[c.Name] = c.Image
			}
		}
	}
	if images["app"] == "" || images["proxy"] == "" {
		t.Fatalf("%s: no task definition with containers app and proxy: %v", path, images)
	}
	return images
}
