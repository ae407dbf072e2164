// Package netns gives each ecslocal task the network an awsvpc task has on ECS: a network
// namespace of its own with one address (so the containers of a task share localhost and every
// task has an IP), reachable from the host. The namespaces hang off a bridge that ecslocal
// creates, in a /24 of 198.18.0.0/15, the range RFC 2544 reserves for network tests; the host
// side of the bridge is the subnet's .1.
//
// Everything is named after the network's name, so that a second ecslocal (a parallel test)
// with another name and subnet does not touch this one's, and Open removes what a crashed
// run of the same name left behind. A name and a subnet are each one network's at a time:
// Open refuses a name or a subnet that another open network holds (lock files under
// LockDir, released when the network closes or its process ends), so that it never removes
// a running network's namespaces as a crashed run's, and a subnet that an interface of the
// host is on, since two bridges on one /24 would take each other's traffic. It needs root on
// Linux and iproute2's ip.
package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
)

// Dir is where ip netns keeps its namespaces.
const Dir = "/var/run/netns"

// LockDir holds a lock file per name and per subnet; an open network holds its name's and
// its subnet's.
const LockDir = "/var/run/ecslocal"

// ErrSubnetInUse is Open's error for a subnet another network, or an interface of the host,
// already has.
var ErrSubnetInUse = errors.New("subnet in use")

// ErrNameInUse is Open's error for a name another open network has.
var ErrNameInUse = errors.New("name in use")

// Network is a bridge and the task namespaces attached to it.
type Network struct {
	name   string
	prefix netip.Prefix
	bridge string
	locks  []*os.File // the name's and the subnet's lock files, locked until Close

	mu   sync.Mutex
	used map[netip.Addr]string // task namespace by address
	last netip.Addr            // the address handed out last
}

// Namespace is one task's network namespace.
type Namespace struct {
	Name string     // the ip netns name
	Path string     // its file, for runc's network namespace path
	Addr netip.Addr // the task's address
	veth string     // the host end of its veth pair
}

// validName keeps names short enough for interface names (15 bytes: the name plus "br" or
// a 9-character veth suffix).
var validName = regexp.MustCompile(`^[a-z][a-z0-9]{0,5}$`)

// Open creates the bridge of network name with address .1 of subnet (a /24 inside
// 198.18.0.0/15), after removing what a previous run of the same name left.
func Open(ctx context.Context, name string, subnet netip.Prefix) (*Network, error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("network name %q: want 1 to 6 lowercase letters or digits, starting with a letter", name)
	}
	testRange := netip.MustParsePrefix("198.18.0.0/15")
	if subnet.Bits() != 24 || !testRange.Contains(subnet.Addr()) || subnet.Masked() != subnet {
		return nil, fmt.Errorf("network %s: subnet %s: want a /24 inside %s", name, subnet, testRange)
	}
	// The name first: what a network of this name left is removed below, and a network
	// that is still open is not a leftover.
	nameLock, err := lock("name-"+name, ErrNameInUse, "another open ecslocal network has this name; stop its ecslocal, or choose another name")
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	subnetLock, err := lock("subnet-"+subnet.Addr().String(), ErrSubnetInUse, "another ecslocal network on this host has subnet "+subnet.String()+"; choose another subnet")
	if err != nil {
		nameLock.Close()
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	n := &Network{name: name, prefix: subnet, bridge: name + "br", locks: []*os.File{nameLock, subnetLock}, used: map[netip.Addr]string{}}
	if err := n.open(ctx); err != nil {
		n.unlock()
		return nil, err
	}
	return n, nil
}

// unlock releases the network's name and subnet.
func (n *Network) unlock() {
	for _, f := range n.locks {
		f.Close()
	}
	n.locks = nil
}

func (n *Network) open(ctx context.Context) error {
	if err := n.removeLeftovers(ctx); err != nil {
		return err
	}
	if iface := interfaceOn(n.prefix); iface != "" {
		return fmt.Errorf("network %s: subnet %s: %w: interface %s has an address in it (a leftover of another run? ip link del %s), or choose another subnet",
			n.name, n.prefix, ErrSubnetInUse, iface, iface)
	}
	gw := n.gateway()
	if err := ip(ctx, "link", "add", n.bridge, "type", "bridge"); err != nil {
		return fmt.Errorf("network %s: %w", n.name, err)
	}
	if err := ip(ctx, "addr", "add", netip.PrefixFrom(gw, 24).String(), "dev", n.bridge); err != nil {
		return fmt.Errorf("network %s: %w", n.name, err)
	}
	if err := ip(ctx, "link", "set", n.bridge, "up"); err != nil {
		return fmt.Errorf("network %s: %w", n.name, err)
	}
	return nil
}

// lock locks file under LockDir without waiting: the lock is held while the file stays
// open, and the kernel drops it when the process ends, however it ends. A lock another
// process or network holds is inUse, with why.
func lock(file string, inUse error, why string) (*os.File, error) {
	if err := os.MkdirAll(LockDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(LockDir, file), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s (lock %s)", inUse, why, f.Name())
		}
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return f, nil
}

// interfaceOn returns the name of an interface of the host with an address in p, or "".
func interfaceOn(p netip.Prefix) string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, iface := range ifaces {
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if addr, ok := netip.AddrFromSlice(ipn.IP); ok && p.Contains(addr.Unmap()) {
					return iface.Name
				}
			}
		}
	}
	return ""
}

func (n *Network) gateway() netip.Addr { return n.prefix.Addr().Next() }

// Bridge is the name of the host's bridge interface.
func (n *Network) Bridge() string { return n.bridge }

// Gateway is the host's address on the bridge.
func (n *Network) Gateway() netip.Addr { return n.gateway() }

// nsPrefix starts the names of this network's namespaces.
func (n *Network) nsPrefix() string { return "ecsl-" + n.name + "-" }

// removeLeftovers deletes this network's namespaces and bridge from an earlier run.
func (n *Network) removeLeftovers(ctx context.Context) error {
	entries, err := os.ReadDir(Dir)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("network %s: %w", n.name, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), n.nsPrefix()) {
			if err := ip(ctx, "netns", "del", e.Name()); err != nil {
				return fmt.Errorf("network %s: removing a leftover namespace: %w", n.name, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.bridge)); err == nil {
		if err := ip(ctx, "link", "del", n.bridge); err != nil {
			return fmt.Errorf("network %s: removing the leftover bridge: %w", n.name, err)
		}
	}
	return nil
}

// Create makes a namespace with the next free address, its loopback up and a veth pair to
// the bridge. Close or Remove takes it away.
func (n *Network) Create(ctx context.Context) (*Namespace, error) {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on Linux
	id := fmt.Sprintf("%x", b)
	ns := &Namespace{Name: n.nsPrefix() + id, veth: n.name + "v" + id} // at most 6+1+8 bytes
	ns.Path = filepath.Join(Dir, ns.Name)

	// Addresses are handed out in turn rather than lowest first: a stopped task's address
	// comes back only after the others, once the host has long forgotten the old task's MAC.
	// Taken again at once, it was unreachable from the host for seconds (checks timed out).
	n.mu.Lock()
	first, end := n.gateway().Next(), lastAddr(n.prefix)
	a := first
	if n.last.IsValid() && n.last.Next() != end {
		a = n.last.Next()
	}
	for range 256 {
		if _, taken := n.used[a]; !taken {
			ns.Addr, n.last = a, a
			n.used[a] = ns.Name
			break
		}
		if a = a.Next(); a == end {
			a = first
		}
	}
	n.mu.Unlock()
	if !ns.Addr.IsValid() {
		return nil, fmt.Errorf("network %s: no free address in %s", n.name, n.prefix)
	}
	steps := [][]string{
		{"netns", "add", ns.Name},
		{"link", "add", ns.veth, "type", "veth", "peer", "name", "eth0", "netns", ns.Name},
		{"link", "set", ns.veth, "master", n.bridge, "up"},
		{"-n", ns.Name, "addr", "add", netip.PrefixFrom(ns.Addr, 24).String(), "dev", "eth0"},
		{"-n", ns.Name, "link", "set", "eth0", "up"},
		{"-n", ns.Name, "link", "set", "lo", "up"},
		{"-n", ns.Name, "route", "add", "default", "via", n.gateway().String()},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			_ = n.Remove(context.WithoutCancel(ctx), ns)
			return nil, fmt.Errorf("network %s: namespace %s: %w", n.name, ns.Name, err)
		}
	}
	return ns, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	a[3] = 255
	return netip.AddrFrom4(a)
}

// Remove deletes a namespace (its veth pair goes with it) and frees its address.
func (n *Network) Remove(ctx context.Context, ns *Namespace) error {
	var err error
	if _, statErr := os.Stat(ns.Path); statErr == nil {
		err = ip(ctx, "netns", "del", ns.Name)
	}
	n.mu.Lock()
	delete(n.used, ns.Addr)
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("network %s: %w", n.name, err)
	}
	return nil
}

// Close removes every namespace of the network and the bridge, and frees the subnet.
func (n *Network) Close(ctx context.Context) error {
	err := n.removeLeftovers(ctx)
	n.mu.Lock()
	clear(n.used)
	if err == nil {
		// The bridge and namespaces are gone: the name and subnet are free for another
		// network. (When removing them failed, the locks stay with the process, as they do
		// with the host.)
		n.unlock()
	}
	n.mu.Unlock()
	return err
}

func ip(ctx context.Context, args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
