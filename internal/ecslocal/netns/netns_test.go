package netns_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/netns"
)

// TestLeftoversOfACrashedRun: what a run that never closed its network left behind is gone
// when the next run of the same name opens it, and Close leaves nothing.
func TestLeftoversOfACrashedRun(t *testing.T) {
	ecslocaltest.RequireRoot(t, "ip")
	ctx := context.Background()
	subnet := netip.MustParsePrefix("198.19.254.0/24")
	crashed, err := netns.Open(ctx, "nsleft", subnet)
	if err != nil {
		t.Fatal(err)
	}
	a, err := crashed.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := crashed.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.Addr == b.Addr || !subnet.Contains(a.Addr) || a.Addr == crashed.Gateway() {
		t.Errorf("addresses %s and %s in %s (gateway %s)", a.Addr, b.Addr, subnet, crashed.Gateway())
	}
	// No Close: the process "crashed". The next run removes the namespaces and the bridge.
	next, err := netns.Open(ctx, "nsleft", subnet)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []*netns.Namespace{a, b} {
		if _, err := os.Stat(ns.Path); !os.IsNotExist(err) {
			t.Errorf("namespace %s of the crashed run is still there: %v", ns.Name, err)
		}
	}
	if _, err := next.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := next.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(netns.Dir, "ecsl-nsleft-*")); len(left) > 0 {
		t.Errorf("left after Close: %v", left)
	}
	if _, err := os.Stat("/sys/class/net/" + next.Bridge()); !os.IsNotExist(err) {
		t.Errorf("bridge %s left after Close: %v", next.Bridge(), err)
	}
}

func TestOpenRefusesOtherRanges(t *testing.T) {
	for _, subnet := range []string{"10.0.0.0/24", "198.18.0.0/16", "198.18.0.1/24"} {
		if _, err := netns.Open(context.Background(), "nsbad", netip.MustParsePrefix(subnet)); err == nil {
			t.Errorf("Open accepted subnet %s", subnet)
		}
	}
}
