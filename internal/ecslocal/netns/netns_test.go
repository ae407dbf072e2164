package netns_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	netns.Abandon(crashed)
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

// TestNameIsOneNetworks: a name that another open network has is refused with ErrNameInUse,
// on any subnet, and the open network keeps its namespaces and bridge (Open removes what a
// network of its name left, which an open one has not); the name is free again once the
// network holding it closes.
func TestNameIsOneNetworks(t *testing.T) {
	ecslocaltest.RequireRoot(t, "ip")
	ctx := context.Background()
	first, err := netns.Open(ctx, "nsnam", netip.MustParsePrefix("198.19.250.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close(ctx)
	ns, err := first.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := netip.MustParsePrefix("198.19.249.0/24")
	if _, err := netns.Open(ctx, "nsnam", other); !errors.Is(err, netns.ErrNameInUse) || !strings.Contains(err.Error(), "nsnam") {
		t.Fatalf("a second network of an open network's name: %v; want ErrNameInUse naming it", err)
	}
	if _, err := os.Stat(ns.Path); err != nil {
		t.Errorf("the open network's namespace after the refused Open: %v", err)
	}
	if out, err := exec.Command("ip", "-4", "-o", "addr", "show", "dev", first.Bridge()).CombinedOutput(); err != nil || !strings.Contains(string(out), "198.19.250.1/24") {
		t.Errorf("the open network's bridge after the refused Open: %v: %s", err, out)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := netns.Open(ctx, "nsnam", other)
	if err != nil {
		t.Fatalf("the name once the first network closed: %v", err)
	}
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSubnetIsOneNetworks: a subnet that another open network holds, or that an interface of
// the host is on, is refused with ErrSubnetInUse (two bridges on one /24 take each other's
// traffic); it is free again once the network holding it closes.
func TestSubnetIsOneNetworks(t *testing.T) {
	ecslocaltest.RequireRoot(t, "ip")
	ctx := context.Background()
	subnet := netip.MustParsePrefix("198.19.252.0/24")
	first, err := netns.Open(ctx, "nsone", subnet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := netns.Open(ctx, "nstwo", subnet); !errors.Is(err, netns.ErrSubnetInUse) || !strings.Contains(err.Error(), "198.19.252.0/24") {
		t.Fatalf("a second network on a held subnet: %v; want ErrSubnetInUse naming it", err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := netns.Open(ctx, "nstwo", subnet)
	if err != nil {
		t.Fatalf("the subnet once the first network closed: %v", err)
	}
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// An interface that is not ecslocal's, on another /24.
	other := netip.MustParsePrefix("198.19.251.0/24")
	if out, err := exec.Command("ip", "link", "add", "nsdummy0", "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	defer exec.Command("ip", "link", "del", "nsdummy0").Run()
	if out, err := exec.Command("ip", "addr", "add", "198.19.251.9/24", "dev", "nsdummy0").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	if _, err := netns.Open(ctx, "nsthr", other); !errors.Is(err, netns.ErrSubnetInUse) || !strings.Contains(err.Error(), "nsdummy0") {
		t.Fatalf("a subnet an interface is on: %v; want ErrSubnetInUse naming nsdummy0", err)
	}
	if _, err := os.Stat("/sys/class/net/nsthrbr"); !os.IsNotExist(err) {
		t.Errorf("the refused network left its bridge: %v", err)
	}
}

func TestOpenRefusesOtherRanges(t *testing.T) {
	for _, subnet := range []string{"10.0.0.0/24", "198.18.0.0/16", "198.18.0.1/24"} {
		if _, err := netns.Open(context.Background(), "nsbad", netip.MustParsePrefix(subnet)); err == nil {
			t.Errorf("Open accepted subnet %s", subnet)
		}
	}
}
