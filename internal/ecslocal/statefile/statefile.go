// Package statefile keeps ecslocal's control-plane records in a file: task definitions,
// clusters, services, service deployments and revisions, tasks, load balancers, target groups,
// listeners, rules and tags. The file is written whole and atomically (a temporary file,
// synced, renamed over it) when the records change, and read at start. Tasks are not
// resurrected: one that ran when ecslocal ended is STOPPED on load (ecsapi.API.Restore).
package statefile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gangway-ecs/gangway/internal/ecslocal/ecsapi"
	"github.com/gangway-ecs/gangway/internal/ecslocal/elbapi"
)

// StoppedReason is the stoppedReason of a task that ran when the ecslocal that recorded it
// ended (ecslocal's wording; its stopCode is TerminationNotice).
const StoppedReason = "Task stopped because ecslocal exited while it ran; tasks are not restored from the state file"

// version is the file's format; a file of another version is refused.
const version = 1

type contents struct {
	Version int
	ECS     ecsapi.State
	ELB     elbapi.State
}

// File keeps the records of two APIs in a file.
type File struct {
	path string
	ecs  *ecsapi.API
	elb  *elbapi.API
	last []byte // what the file holds
}

// Open loads the file at path, when it exists, into the two APIs (which must hold no
// records), and returns the File that saves them there.
func Open(path string, ecs *ecsapi.API, elb *elbapi.API) (*File, error) {
	f := &File{path: path, ecs: ecs, elb: elb}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	var c contents
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if c.Version != version {
		return nil, fmt.Errorf("state file %s: version %d, want %d", path, c.Version, version)
	}
	if err := elb.Restore(c.ELB); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if err := ecs.Restore(c.ECS, StoppedReason); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return f, nil
}

// Save writes the records when they differ from what the file holds: to a temporary file
// beside it, synced, then renamed over it, so that the file is always one whole state.
func (f *File) Save() error {
	data, err := json.MarshalIndent(contents{Version: version, ECS: f.ecs.State(), ELB: f.elb.State()}, "", " ")
	if err != nil {
		return fmt.Errorf("state file %s: %w", f.path, err)
	}
	if bytes.Equal(data, f.last) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), filepath.Base(f.path)+".*")
	if err != nil {
		return fmt.Errorf("state file %s: %w", f.path, err)
	}
	defer os.Remove(tmp.Name()) // after a failure; gone after the rename
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		return fmt.Errorf("state file %s: %w", f.path, err)
	}
	f.last = data
	return nil
}

// Run saves every interval until ctx ends, then once more.
func (f *File) Run(ctx context.Context, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return f.Save()
		case <-tick.C:
			if err := f.Save(); err != nil {
				return err
			}
		}
	}
}
