package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// insertAndCheck writes row id on the primary, waits for replication and checks every
// replica has it.
func insertAndCheck(t *testing.T, sb *sandbox.Sandbox, id int) {
	t.Helper()
	ctx := ctxTimeout(t, 60*time.Second)
	app := sb.Opts.Users[0]
	primary := open(t, sb.Primary, app.Name, app.Password, "")
	for _, stmt := range []string{
		"CREATE DATABASE IF NOT EXISTS life",
		"CREATE TABLE IF NOT EXISTS life.t (id INT PRIMARY KEY)",
		fmt.Sprintf("INSERT INTO life.t VALUES (%d)", id),
	} {
		if _, err := primary.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("primary: %s: %v", stmt, err)
		}
	}
	if err := sb.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range sb.Replicas {
		var n int
		db := open(t, r, app.Name, app.Password, "")
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM life.t WHERE id = ?", id).Scan(&n); err != nil || n != 1 {
			t.Errorf("%s: row %d: count %d, err %v; want 1, nil", r.Name, id, n, err)
		}
	}
}

// TestRestarts kills, stops, pauses and restarts servers of a private sandbox and checks
// that replication resumes each time.
func TestRestarts(t *testing.T) {
	sb := sandboxtest.New(t, sandbox.Options{})
	replica := sb.Replicas[0]
	insertAndCheck(t, sb, 1)

	t.Run("KillStartReplica", func(t *testing.T) {
		oldPid := replica.Pid()
		if err := replica.Kill(); err != nil {
			t.Fatal(err)
		}
		if pid := replica.Pid(); pid != 0 {
			t.Fatalf("Pid() after Kill = %d, want 0", pid)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", oldPid)); err == nil {
			t.Errorf("killed replica pid %d still in /proc", oldPid)
		}
		insertAndCheckPrimaryOnly(t, sb, 2)
		if err := replica.Start(ctxTimeout(t, 60*time.Second)); err != nil {
			t.Fatal(err)
		}
		insertAndCheck(t, sb, 3)
	})

	t.Run("StopStartReplica", func(t *testing.T) {
		if err := replica.Stop(ctxTimeout(t, 60*time.Second)); err != nil {
			t.Fatal(err)
		}
		insertAndCheckPrimaryOnly(t, sb, 4)
		if err := replica.Start(ctxTimeout(t, 60*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := replica.Start(ctxTimeout(t, 60*time.Second)); err == nil {
			t.Error("second Start of a running server succeeded")
		}
		insertAndCheck(t, sb, 5)
	})

	t.Run("PauseResumeReplica", func(t *testing.T) {
		if err := replica.Pause(); err != nil {
			t.Fatal(err)
		}
		insertAndCheckPrimaryOnly(t, sb, 6)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := sb.WaitReplicated(ctx)
		cancel()
		if err == nil {
			t.Error("WaitReplicated succeeded with a paused replica")
		}
		if err := replica.Resume(); err != nil {
			t.Fatal(err)
		}
		insertAndCheck(t, sb, 7)
	})

	t.Run("KillStartPrimary", func(t *testing.T) {
		if err := sb.Primary.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := sb.Primary.Start(ctxTimeout(t, 60*time.Second)); err != nil {
			t.Fatal(err)
		}
		insertAndCheck(t, sb, 8)
	})
}

// insertAndCheckPrimaryOnly writes row id on the primary while a replica is down.
func insertAndCheckPrimaryOnly(t *testing.T, sb *sandbox.Sandbox, id int) {
	t.Helper()
	app := sb.Opts.Users[0]
	ctx := ctxTimeout(t, 30*time.Second)
	_, err := open(t, sb.Primary, app.Name, app.Password, "").ExecContext(ctx, fmt.Sprintf("INSERT INTO life.t VALUES (%d)", id))
	if err != nil {
		t.Fatalf("primary: insert %d: %v", id, err)
	}
}

// serverChildren returns the PIDs of the database servers (mariadbd, or mysqld run
// through its root filesystem's loader) whose parent is this process.
func serverChildren(t *testing.T) map[int]bool {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid())
	pids := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var ppid string
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				ppid = strings.TrimSpace(v)
			}
		}
		if ppid != me {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		for _, arg := range strings.Split(string(cmdline), "\x00") {
			if name := filepath.Base(arg); name == "mariadbd" || name == "mysqld" {
				pids[pid] = true
			}
		}
	}
	return pids
}

// TestStartAndCloseLeaveNothing starts a lone primary in a fresh base directory holding
// a stale sandbox of a dead process, then checks Close removes every process and file.
func TestStartAndCloseLeaveNothing(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	base := t.TempDir()
	stale := filepath.Join(base, fmt.Sprintf("switchyard-sandbox-%d-1", deadPID(t)))
	live := filepath.Join(base, fmt.Sprintf("switchyard-sandbox-%d-2", os.Getppid()))
	for _, d := range []string{stale, live} {
		if err := os.MkdirAll(filepath.Join(d, "primary"), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	before := serverChildren(t)
	sb, err := sandbox.Start(t.Context(), sandbox.Options{Engine: sandboxtest.Engine(), NoReplicas: true, BaseDir: base})
	if err != nil {
		if errors.Is(err, sandbox.ErrNoServer) && os.Getenv(sandbox.RequireEnv) != "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Logf("lone primary started in %s", sb.StartupTime)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale sandbox dir of a dead owner survived Start: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("sandbox dir of a live owner was removed: %v", err)
	}
	if len(sb.Replicas) != 0 {
		t.Errorf("NoReplicas started %d replicas", len(sb.Replicas))
	}
	pid := sb.Primary.Pid()
	if after := serverChildren(t); !after[pid] || len(after) != len(before)+1 {
		t.Errorf("server children = %v, want %v plus %d", after, before, pid)
	}

	if err := sb.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sb.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(sb.Dir); !os.IsNotExist(err) {
		t.Errorf("sandbox dir %s still there after Close: %v", sb.Dir, err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("primary pid %d still exists after Close", pid)
	}
	if after := serverChildren(t); len(after) != len(before) {
		t.Errorf("server children after Close = %v, want %v", after, before)
	}
	if err := sb.Primary.Start(t.Context()); !errors.Is(err, sandbox.ErrClosed) {
		t.Errorf("Start after Close: err = %v, want ErrClosed", err)
	}
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	return p.Pid
}

// TestStartFailureCleansUp makes the server refuse its config and checks the error quotes
// the server's log and nothing is left behind.
func TestStartFailureCleansUp(t *testing.T) {
	base := t.TempDir()
	before := serverChildren(t)
	_, err := sandbox.Start(t.Context(), sandbox.Options{
		Engine: sandboxtest.Engine(), Replicas: 1, BaseDir: base, ExtraConfig: []string{"no_such_option_xyz=1"},
	})
	if err == nil {
		t.Fatal("Start with an unknown server option succeeded")
	}
	if errors.Is(err, sandbox.ErrNoServer) && os.Getenv(sandbox.RequireEnv) != "1" {
		t.Skip(err)
	}
	if !strings.Contains(err.Error(), "no_such_option_xyz") {
		t.Errorf("Start error does not quote the server log:\n%v", err)
	}
	if entries, _ := os.ReadDir(base); len(entries) != 0 {
		t.Errorf("base dir after failed Start holds %v", entries)
	}
	if after := serverChildren(t); len(after) != len(before) {
		t.Errorf("server children after failed Start = %v, want %v", after, before)
	}
}
