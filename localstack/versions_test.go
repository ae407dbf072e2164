package localstack

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestOneMotoVersion: every place that names a moto version names the one that
// scripts/moto-install.sh pins, so that the suites and the compose file test against the
// same server.
func TestOneMotoVersion(t *testing.T) {
	pin := regexp.MustCompile(`(?m)^MOTO_VERSION=(\S+)$`).FindStringSubmatch(read(t, "../scripts/moto-install.sh"))
	if pin == nil {
		t.Fatal("scripts/moto-install.sh pins no MOTO_VERSION")
	}
	version := regexp.MustCompile(`(?i)(?:moto(?:\[server\])?==|motoserver/moto:|MOTO_VERSION=|moto )v?(\d+\.\d+\.\d+)`)
	files, err := filepath.Glob("../scripts/*")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "docker-compose.yml", "README.md", "../cdk/README.md")
	mk, _ := filepath.Glob("../mk/*.mk")
	files = append(files, mk...)
	seen := 0
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.IsDir() {
			continue
		}
		for _, m := range version.FindAllStringSubmatch(read(t, f), -1) {
			seen++
			if m[1] != pin[1] {
				t.Errorf("%s: %q, but scripts/moto-install.sh pins moto %s", f, m[0], pin[1])
			}
		}
	}
	if seen < 2 {
		t.Errorf("found %d moto versions; the pin and the compose image at least", seen)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
