package netns_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecslocaltest"
	"github.com/gangway-ecs/gangway/internal/ecslocal/netns"
)

// TestAddressesAreNotReusedAtOnce: a removed namespace's address goes to a later namespace
// only after the others of the subnet, so that the host does not send the new task's packets
// to the old task's MAC.
func TestAddressesAreNotReusedAtOnce(t *testing.T) {
	ecslocaltest.RequireRoot(t, "ip")
	ctx := context.Background()
	n, err := netns.Open(ctx, "nsturn", netip.MustParsePrefix("198.19.253.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	a, err := n.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Remove(ctx, a); err != nil {
		t.Fatal(err)
	}
	b, err := n.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b.Addr == a.Addr {
		t.Errorf("the address %s of a removed namespace was handed out again at once", a.Addr)
	}
}
