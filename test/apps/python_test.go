package apps

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// python is Debian's interpreter, the one its python3-* packages serve (the
// python3 on PATH may be another build without them).
const python = "/usr/bin/python3"

// requirePython skips the test (or fails it, under SWITCHYARD_REQUIRE_SANDBOX=1)
// unless python can import every module; packages names the Debian packages
// that provide them, for the message.
func requirePython(t *testing.T, modules, packages []string) {
	t.Helper()
	out, err := exec.Command(python, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput()
	if err == nil {
		return
	}
	msg := "python: cannot import " + strings.Join(modules, ", ") + " (install " + strings.Join(packages, " ") +
		"): " + strings.TrimSpace(tail(string(out), 3))
	if os.Getenv(sandbox.RequireEnv) == "1" {
		t.Fatal(msg)
	}
	t.Skipf("%s; set %s=1 to fail instead", msg, sandbox.RequireEnv)
}

// report is what an application script prints (see apptrace.py).
type report struct {
	App    string           `json:"app"`
	Phase  string           `json:"phase"`
	OK     bool             `json:"ok"`
	Error  string           `json:"error"`
	Info   map[string]int64 `json:"info"`
	Events []event          `json:"events"`
}

// event is one thing the application did: a read, a write, a transaction or
// a check of what it read back.
type event struct {
	Kind string `json:"kind"` // read, write, transaction, check
	Name string `json:"name"`

	// Reads.
	ServerID     *int     `json:"server_id"` // @@server_id as the reading statement selected it
	InTx         bool     `json:"in_tx"`
	TxWrote      bool     `json:"tx_wrote"`
	Autocommit   bool     `json:"autocommit"`
	Locking      bool     `json:"locking"`
	SessionWrote bool     `json:"session_wrote"`
	SinceWriteMs *float64 `json:"since_write_ms"` // upper bound of the time since the session's last write began
	WrittenBy    []int    `json:"written_by"`     // written_by of the rows read

	// Checks.
	OK   bool   `json:"ok"`
	Got  string `json:"got"`
	Want string `json:"want"`
}

// appEnv says where an application finds its database.
type appEnv struct {
	Proxy *switchyard
	DB    string
	Run   string   // prefix of the names the application creates
	Extra []string // more environment, "KEY=value"
}

// runApp runs the application script app/run.py for one phase and returns
// its report; it fails the test when the script does not finish cleanly or
// any of its checks failed.
func runApp(t *testing.T, app, phase string, e appEnv) *report {
	t.Helper()
	script, err := filepath.Abs(filepath.Join(app, "run.py"))
	if err != nil {
		t.Fatal(err)
	}
	host, port := e.Proxy.hostPort(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, script, phase)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = append(os.Environ(),
		"PYTHONDONTWRITEBYTECODE=1", // keep the source tree clean
		"SY_HOST="+host, "SY_PORT="+port, "SY_DB="+e.DB, "SY_RUN="+e.Run,
		"SY_USER="+appUser.Name, "SY_PASSWORD="+appUser.Password)
	cmd.Env = append(cmd.Env, e.Extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	rep := &report{}
	if err := json.Unmarshal(stdout.Bytes(), rep); err != nil {
		t.Fatalf("%s %s: %v; no report: %v\nstdout:\n%s\nstderr:\n%s", app, phase, runErr, err,
			tail(stdout.String(), 40), tail(stderr.String(), 40))
	}
	if runErr != nil || !rep.OK {
		t.Errorf("%s %s failed: %v\n%s\nstderr:\n%s", app, phase, runErr, rep.Error, tail(stderr.String(), 20))
	}
	checks := 0
	for _, ev := range rep.Events {
		if ev.Kind != "check" {
			continue
		}
		checks++
		if !ev.OK {
			t.Errorf("%s %s: check %q: got %s, want %s", app, phase, ev.Name, ev.Got, ev.Want)
		}
	}
	t.Logf("%s %s: %d events, %d checks, %d reads", app, phase, len(rep.Events), checks, len(rep.reads()))
	return rep
}

// reads returns the read events.
func (r *report) reads() []event {
	var out []event
	for _, ev := range r.Events {
		if ev.Kind == "read" {
			out = append(out, ev)
		}
	}
	return out
}
