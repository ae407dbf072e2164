package tasks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// runc drives the runc binary with a state directory of ecslocal's own, so that containers of
// a crashed run can be found and removed, and nothing else's are touched.
type runc struct {
	root string // runc --root
}

func (r runc) cmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "runc", append([]string{"--root", r.root}, args...)...)
}

func (r runc) run(ctx context.Context, args ...string) error {
	var stderr bytes.Buffer
	c := r.cmd(ctx, args...)
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("runc %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// status is a container's status as runc state reports it (created, running, stopped), or
// "" when runc does not know it yet.
func (r runc) status(ctx context.Context, id string) string {
	out, err := r.cmd(ctx, "state", id).Output()
	if err != nil {
		return ""
	}
	var st struct {
		Status string `json:"status"`
	}
	if json.Unmarshal(out, &st) != nil {
		return ""
	}
	return st.Status
}

// list returns the IDs of the containers runc knows in this root.
func (r runc) list(ctx context.Context) ([]string, error) {
	out, err := r.cmd(ctx, "list", "-q").Output()
	if err != nil {
		return nil, fmt.Errorf("runc list: %w", err)
	}
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if id := strings.TrimSpace(sc.Text()); id != "" {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// The OCI runtime spec (github.com/opencontainers/runtime-spec, config.md), the part ecslocal
// writes.
type bundleSpec struct {
	OCIVersion string    `json:"ociVersion"`
	Process    process   `json:"process"`
	Root       specRoot  `json:"root"`
	Hostname   string    `json:"hostname"`
	Mounts     []mount   `json:"mounts"`
	Linux      specLinux `json:"linux"`
}

type process struct {
	Terminal        bool         `json:"terminal"`
	User            user         `json:"user"`
	Args            []string     `json:"args"`
	Env             []string     `json:"env"`
	Cwd             string       `json:"cwd"`
	Capabilities    capabilities `json:"capabilities"`
	NoNewPrivileges bool         `json:"noNewPrivileges"`
}

type user struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

type capabilities struct {
	Bounding  []string `json:"bounding"`
	Effective []string `json:"effective"`
	Permitted []string `json:"permitted"`
}

type specRoot struct {
	Path     string `json:"path"`
	Readonly bool   `json:"readonly"`
}

type mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Options     []string `json:"options,omitempty"`
}

type specLinux struct {
	Namespaces    []namespace `json:"namespaces"`
	Resources     *resources  `json:"resources,omitempty"`
	MaskedPaths   []string    `json:"maskedPaths"`
	ReadonlyPaths []string    `json:"readonlyPaths"`
}

type resources struct {
	Memory *memoryResources `json:"memory,omitempty"`
}

// memoryResources are a container's memory limits in bytes: limit is the hard limit
// (memory.limit_in_bytes, memory.max), reservation the soft one.
type memoryResources struct {
	Limit       int64 `json:"limit,omitempty"`
	Reservation int64 `json:"reservation,omitempty"`
}

// memoryLimits turns a container definition's memory and memoryReservation (MiB) into the
// limits the ECS agent gives Docker (--memory, --memory-reservation); nil when it has
// neither.
func memoryLimits(memory, reservation *int32) *resources {
	const mib = 1 << 20
	if memory == nil && reservation == nil {
		return nil
	}
	m := &memoryResources{}
	if memory != nil {
		m.Limit = int64(*memory) * mib
	}
	if reservation != nil {
		m.Reservation = int64(*reservation) * mib
	}
	return &resources{Memory: m}
}

type namespace struct {
	Type string `json:"type"`
	Path string `json:"path,omitempty"`
}

// defaultCapabilities are Docker's default capabilities, which the ECS agent leaves in
// place unless linuxParameters.capabilities changes them.
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// newSpec is the bundle configuration of one container: its own PID, IPC, UTS and mount
// namespaces, the task's network namespace (netnsPath), its memory limits (res, or none),
// and the /proc, /dev, /sys and /sys/fs/cgroup (its own cgroups, read-only) a container
// engine provides.
func newSpec(rootfs string, readonly bool, u user, args, env []string, cwd, hostname, netnsPath string, res *resources) bundleSpec {
	return bundleSpec{
		OCIVersion: "1.0.2",
		Process: process{
			User: u, Args: args, Env: env, Cwd: cwd,
			Capabilities: capabilities{Bounding: defaultCapabilities, Effective: defaultCapabilities, Permitted: defaultCapabilities},
		},
		Root:     specRoot{Path: rootfs, Readonly: readonly},
		Hostname: hostname,
		Mounts: []mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: specLinux{
			Namespaces: []namespace{{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "network", Path: netnsPath}},
			Resources:  res,
			MaskedPaths: []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

func writeSpec(bundle string, s bundleSpec) error {
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o600)
}

// resolveUser turns a container definition's user ("uid", "uid:gid", "name", "name:group")
// into IDs, looking names up in the image's /etc/passwd and /etc/group as Docker does.
func resolveUser(rootfs, spec string) (user, error) {
	if spec == "" {
		return user{}, nil
	}
	name, group, hasGroup := strings.Cut(spec, ":")
	var u user
	uid, err := strconv.ParseUint(name, 10, 32)
	if err == nil {
		u.UID = uint32(uid)
	} else {
		fields, ferr := lookup(filepath.Join(rootfs, "etc/passwd"), name)
		if ferr != nil {
			return user{}, fmt.Errorf("user %q: %w", spec, ferr)
		}
		id, _ := strconv.ParseUint(fields[2], 10, 32)
		gid, _ := strconv.ParseUint(fields[3], 10, 32)
		u.UID, u.GID = uint32(id), uint32(gid)
	}
	if !hasGroup {
		return u, nil
	}
	gid, err := strconv.ParseUint(group, 10, 32)
	if err == nil {
		u.GID = uint32(gid)
		return u, nil
	}
	fields, err := lookup(filepath.Join(rootfs, "etc/group"), group)
	if err != nil {
		return user{}, fmt.Errorf("user %q: %w", spec, err)
	}
	id, _ := strconv.ParseUint(fields[2], 10, 32)
	u.GID = uint32(id)
	return u, nil
}

// lookup finds the colon-separated line of a passwd or group file whose first field is name.
func lookup(file, name string) ([]string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("the image has no %s to look %q up in", filepath.Base(file), name)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 4 && f[0] == name {
			return f, nil
		}
	}
	return nil, fmt.Errorf("%q is not in the image's %s", name, filepath.Base(file))
}
