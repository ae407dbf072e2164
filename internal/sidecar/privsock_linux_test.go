package sidecar

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dialEnv makes the test binary a client of the abstract socket it names
// (TestPrivateADSDialHelper), so that another process can try to connect.
const dialEnv = "GANGWAY_TEST_DIAL_ABSTRACT"

func TestPrivateADSDialHelper(t *testing.T) {
	name := os.Getenv(dialEnv)
	if name == "" {
		t.Skip("helper process for TestPrivateADSRefusesOtherProcesses")
	}
	c, err := net.Dial("unix", name)
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	fmt.Println("read:", err)
}

// TestPrivateADSRefusesOtherProcesses: an abstract socket has no file permissions, so the
// listener itself must refuse every process but its own (the application container of an
// awsvpc task shares the network namespace).
func TestPrivateADSRefusesOtherProcesses(t *testing.T) {
	// The listener logs from its Accept goroutine: a file takes concurrent writes.
	logFile := filepath.Join(t.TempDir(), "log")
	logw, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logw.Close()
	ln, target, err := listenPrivateADS(slog.New(slog.NewTextHandler(logw, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	name, ok := strings.CutPrefix(target, "unix:@")
	if !ok || !strings.HasPrefix(name, fmt.Sprintf("gangway-xds-%d-", os.Getpid())) {
		t.Fatalf("target %q, want unix:@gangway-xds-<pid>-<random>", target)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()

	// Another process: dropped, and the listener keeps accepting.
	helper := exec.Command(os.Args[0], "-test.run=^TestPrivateADSDialHelper$", "-test.v")
	helper.Env = append(os.Environ(), dialEnv+"=@"+name)
	var out bytes.Buffer
	helper.Stdout, helper.Stderr = &out, &out
	if err := helper.Run(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "read: "+io.EOF.Error()) {
		t.Fatalf("another process was not disconnected:\n%s", out.String())
	}
	if logs, _ := os.ReadFile(logFile); !strings.Contains(string(logs), "only this process may connect") {
		t.Errorf("the refusal is not logged:\n%s", logs)
	}

	// This process: accepted.
	c, err := net.Dial("unix", "@"+name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case sc, ok := <-accepted:
		if !ok {
			t.Fatal("Accept failed")
		}
		sc.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("a connection from this process was not accepted")
	}
}
