package sandbox_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// syncBuffer is a bytes.Buffer safe for one writer and one poller.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunCLI(t *testing.T) {
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- sandbox.RunCLI(ctx, []string{"-engine", sandboxtest.Engine(), "-replicas", "1", "-base-dir", t.TempDir()}, &stdout, &stderr)
	}()

	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(stdout.String(), "Press Ctrl-C") {
		select {
		case c := <-code:
			if strings.Contains(stderr.String(), sandbox.ErrNoServer.Error()) && os.Getenv(sandbox.RequireEnv) != "1" {
				t.Skip(stderr.String())
			}
			t.Fatalf("RunCLI returned %d before it was ready; stderr:\n%s", c, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("RunCLI not ready after 2m; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	}
	out := stdout.String()
	t.Logf("RunCLI output:\n%s", out)

	cmds := regexp.MustCompile(`(?m)^\s+(primary|replica1)\s+mariadb -h127\.0\.0\.1 -P(\d+) -uapp -papp-secret$`).FindAllStringSubmatch(out, -1)
	if len(cmds) != 2 {
		t.Fatalf("want app commands for primary and replica1, found %q", cmds)
	}
	title := "MariaDB"
	if sandboxtest.Engine() == sandbox.FlavorMySQL {
		title = "MySQL"
	}
	for _, want := range []string{
		`^` + title + ` \d+\.\d+\.\d+ sandbox ready`,
		`(?m)^NAME\s+ROLE\s+ADDRESS\s+SERVER_ID$`,
		`(?m)^primary\s+primary\s+127\.0\.0\.1:` + cmds[0][2] + `\s+1$`,
		`(?m)^replica1\s+replica\s+127\.0\.0\.1:` + cmds[1][2] + `\s+2$`,
		`mariadb -h127\.0\.0\.1 -P` + cmds[0][2] + ` -uroot -psandbox`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output does not match %s", want)
		}
	}
	dir := regexp.MustCompile(`data in (\S+)\)`).FindStringSubmatch(out)
	if dir == nil {
		t.Fatal("output does not name the data directory")
	}
	// The printed replica command must reach a working replica.
	srv := &sandbox.Server{Name: "replica1"}
	port, err := strconv.Atoi(cmds[1][2])
	if err != nil {
		t.Fatal(err)
	}
	srv.Port = port
	var readOnly int
	if err := open(t, srv, "app", "app-secret", "").QueryRowContext(ctx, "SELECT @@read_only").Scan(&readOnly); err != nil || readOnly != 1 {
		t.Errorf("replica1 from the printed command: read_only %d, err %v", readOnly, err)
	}

	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("RunCLI = %d after cancel, want 0; stderr:\n%s", c, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("RunCLI did not return after cancel")
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("%s still exists after RunCLI returned: %v", dir[1], err)
	}
}

func TestRunCLIUsage(t *testing.T) {
	for _, args := range [][]string{{"-replicas", "-1"}, {"extra"}, {"-no-such-flag"}} {
		var stdout, stderr bytes.Buffer
		if code := sandbox.RunCLI(t.Context(), args, &stdout, &stderr); code != 2 {
			t.Errorf("RunCLI(%q) = %d, want 2; stderr:\n%s", args, code, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("RunCLI(%q) wrote to stdout: %q", args, stdout.String())
		}
	}
}
