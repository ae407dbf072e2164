package ecslocaltest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// repoRoot is the module's root, found from this file's directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// LambdaRIE finds aws-lambda-rie: $GANGWAY_LAMBDA_RIE, or bin/aws-lambda-rie of
// scripts/install-lambda-rie.sh. Without it the test skips, saying why, unless
// GANGWAY_ECSLOCAL_REQUIRE is set (make test-ecslocal installs it first).
func LambdaRIE(t testing.TB) string {
	t.Helper()
	p := os.Getenv("GANGWAY_LAMBDA_RIE")
	if p == "" {
		p = filepath.Join(repoRoot(), "bin", "aws-lambda-rie")
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("GANGWAY_ECSLOCAL_REQUIRE") != "" {
			t.Fatalf("aws-lambda-rie: %v (scripts/install-lambda-rie.sh installs it)", err)
		}
		t.Skipf("aws-lambda-rie not installed (%v); scripts/install-lambda-rie.sh installs it", err)
	}
	return p
}

var (
	hookOnce sync.Once
	hookDir  string
	hookErr  error
)

// ReadinessHook builds cdk/cmd/readiness-hook as `make cdk-hook` does, for this machine's
// architecture, and returns the code directory holding its bootstrap (built once per test
// binary, in a directory of its own that outlives the test: the caller's TestMain may remove
// it with RemoveReadinessHook).
func ReadinessHook(t testing.TB) string {
	t.Helper()
	hookOnce.Do(func() {
		hookDir, hookErr = os.MkdirTemp("", "ecslocal-hook-")
		if hookErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "-o", filepath.Join(hookDir, "bootstrap"), "./cmd/readiness-hook")
		cmd.Dir = filepath.Join(repoRoot(), "cdk")
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			hookErr = fmt.Errorf("building the readiness hook: %v\n%s", err, out)
		}
	})
	if hookErr != nil {
		t.Fatal(hookErr)
	}
	return hookDir
}

// RemoveReadinessHook removes what ReadinessHook built, if anything.
func RemoveReadinessHook() {
	if hookDir != "" {
		os.RemoveAll(hookDir)
	}
}
