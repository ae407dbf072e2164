package ecslocaltest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gangway-ecs/gangway/internal/ecslocal/netns"
	"github.com/gangway-ecs/gangway/internal/ecslocal/tasks"
)

// runnerSubnets is how many /24s Runner draws from: 198.18.0.0–198.19.199.255. The /24s
// above are for tests that name their own (the netns tests).
const runnerSubnets = 256 + 200

// Runner is tasks.New on a network of the runner's own: a /24 drawn at random, and a name
// drawn with it, drawn again while another network of this host holds the /24 or the name
// (netns.ErrSubnetInUse, netns.ErrNameInUse), so that tests side by side, in one process or
// several, never share one. It returns the runner and o with the Name and Subnet it took;
// closing the runner is the caller's.
func Runner(ctx context.Context, t testing.TB, o tasks.Options, rec tasks.Recorder) (*tasks.Runner, tasks.Options) {
	t.Helper()
	for range 50 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		n := (int(b[0])<<8 | int(b[1])) % runnerSubnets
		o.Name = fmt.Sprintf("s%03x", n)
		o.Subnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, byte(18 + n/256), byte(n % 256), 0}), 24)
		r, err := tasks.New(ctx, o, rec)
		if errors.Is(err, netns.ErrSubnetInUse) || errors.Is(err, netns.ErrNameInUse) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return r, o
	}
	t.Fatal("ecslocaltest: 50 subnets drawn, every one in use")
	return nil, o
}
