package proxy

import (
	"testing"

	"github.com/gangway-ecs/gangway/internal/testcert"
)

// The tests' certificates come from internal/testcert; these names keep the tests short.

type testCA = testcert.CA

func newCA(t *testing.T, name string) *testCA { return testcert.New(t, name) }

func writeFile(t *testing.T, dir, name string, data []byte) string {
	return testcert.WriteFile(t, dir, name, data)
}
