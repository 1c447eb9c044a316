package main

import (
	"bufio"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// TestDemoProgressLines checks the demo's filter over the sandbox log: its
// progress lines pass, whole and indented, however they are split; the
// servers' logs do not.
func TestDemoProgressLines(t *testing.T) {
	var out strings.Builder
	p := &progressLines{w: &out}
	for _, chunk := range []string{"sandbox: initialised template ", "datadir in 3s\n[primary] 2026-12-06 InnoDB: ",
		"started\nsandbox: started 3 servers in 2s\n", "sandbox: unfinished"} {
		if n, err := p.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v, want %d, nil", chunk, n, err, len(chunk))
		}
	}
	want := "  sandbox: initialised template datadir in 3s\n  sandbox: started 3 servers in 2s\n"
	if got := out.String(); got != want {
		t.Errorf("progress output %q, want %q", got, want)
	}
}

// TestDemo runs `switchyard demo` as a user would, on the engine the tests run
// on (SWITCHYARD_ENGINE), and proves through it that writes run on the primary
// and reads on the replicas (by @@server_id); then Ctrl-C removes everything.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sandbox")
	}
	engine := os.Getenv(sandboxtest.EngineEnv)
	if engine == "" {
		engine = sandbox.FlavorMariaDB
	}
	cmd := exec.Command(binary, "demo", "-engine", engine, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })

	var addr string
	var output []string
	timeout := time.After(2 * time.Minute)
	for addr == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				err := <-exited
				if strings.Contains(stderr.String(), sandbox.ErrNoServer.Error()) && os.Getenv(sandboxtest.RequireEnv) != "1" {
					t.Skipf("demo: %s", stderr.String())
				}
				t.Fatalf("demo exited (%v) before listening:\n%s\n%s", err, strings.Join(output, "\n"), stderr.String())
			}
			output = append(output, line)
			if a, ok := strings.CutPrefix(line, "Switchyard is listening on "); ok {
				addr = strings.TrimSuffix(a, ". Connect with:")
			}
		case <-timeout:
			t.Fatalf("demo not listening after 2 minutes:\n%s\n%s", strings.Join(output, "\n"), stderr.String())
		}
	}
	go func() {
		for range lines { // the rest is how to connect
		}
	}()
	t.Logf("demo on %s listening on %s:\n%s", engine, addr, strings.Join(output, "\n"))

	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "app", "app-secret", "tcp", addr
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var writer int
	if err := db.QueryRowContext(ctx, "SELECT @@server_id FOR UPDATE").Scan(&writer); err != nil {
		t.Fatalf("through the demo's Switchyard: %v", err)
	}
	if writer != 1 {
		t.Errorf("SELECT ... FOR UPDATE ran on server_id %d, want the primary (1)", writer)
	}
	// The monitor admits the replicas after its first checks: until then
	// reads run on the primary.
	readers := map[int]int{}
	for deadline := time.Now().Add(30 * time.Second); len(readers) < 2 && time.Now().Before(deadline); {
		var id int
		if err := db.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id); err != nil {
			t.Fatalf("read through the demo's Switchyard: %v", err)
		}
		if id != 1 {
			readers[id]++
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if len(readers) != 2 {
		t.Errorf("reads ran on replicas %v in 30 s, want both (server_id 2 and 3); switchyard log:\n%s", readers, stderr.String())
	}
	db.Close()

	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("demo after Ctrl-C: %v\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("demo still running a minute after Ctrl-C")
	}
}
