package test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// endpoint is somewhere a client connects: the primary directly, or a
// switchyard in front of it.
type endpoint struct {
	Name string // "direct" or "switchyard", for messages
	Host string
	Port int
}

func directEndpoint(sb *sandbox.Sandbox) endpoint {
	return endpoint{Name: "direct", Host: "127.0.0.1", Port: sb.Primary.Port}
}

func (s *switchyard) endpoint() endpoint {
	return endpoint{Name: "switchyard", Host: s.Host, Port: s.Port}
}

func (e endpoint) addr() string { return fmt.Sprintf("%s:%d", e.Host, e.Port) }

// missingClient skips the test because a client is not installed, or fails
// it when SWITCHYARD_REQUIRE_SANDBOX=1 asks for every test to run.
func missingClient(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(sandbox.RequireEnv) == "1" {
		t.Fatalf("%s (%s=1 requires every client)", msg, sandbox.RequireEnv)
	}
	t.Skipf("%s (set %s=1 to fail instead)", msg, sandbox.RequireEnv)
}

// mariadbCLI returns the path of the mariadb command-line client.
func mariadbCLI(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"mariadb", "mysql"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missingClient(t, "the mariadb command-line client is not installed (apt-get install mariadb-client)")
	return ""
}

// sha2PluginDir returns the directory holding the client-side
// caching_sha2_password plugin of libmariadb.
func sha2PluginDir(t testing.TB) string {
	t.Helper()
	patterns := []string{
		"/usr/lib/*/libmariadb3/plugin/caching_sha2_password.so",
		"/usr/lib/mysql/plugin/caching_sha2_password.so",
		"/usr/lib64/mariadb/plugin/caching_sha2_password.so",
	}
	for _, pat := range patterns {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return filepath.Dir(m[0])
		}
	}
	missingClient(t, "libmariadb's caching_sha2_password client plugin is not installed (apt-get install libmariadb3)")
	return ""
}

var pythons struct {
	mu    sync.Mutex
	found map[string]string // module -> interpreter ("" when none has it)
}

// pythonWith returns a Python interpreter that can import module.
func pythonWith(t testing.TB, module, pkg string) string {
	t.Helper()
	pythons.mu.Lock()
	defer pythons.mu.Unlock()
	if pythons.found == nil {
		pythons.found = map[string]string{}
	}
	py, ok := pythons.found[module]
	if !ok {
		// Debian's python3-* packages install for /usr/bin/python3, which
		// need not be the python3 first in PATH.
		candidates := []string{"/usr/bin/python3"}
		if p, err := exec.LookPath("python3"); err == nil {
			candidates = append(candidates, p)
		}
		for _, c := range candidates {
			if exec.Command(c, "-c", "import "+module).Run() == nil {
				py = c
				break
			}
		}
		pythons.found[module] = py
	}
	if py == "" {
		missingClient(t, "no python3 can import %s (apt-get install %s)", module, pkg)
	}
	return py
}

// run runs a client command with a deadline and returns its stdout and
// stderr.
func run(t testing.TB, timeout time.Duration, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %s: %w", filepath.Base(name), timeout, err)
	}
	return o.Bytes(), e.Bytes(), err
}

// cliConn says how the mariadb CLI connects.
type cliConn struct {
	User, Password string
	DB             string
	TLS            bool // --ssl with the test CA, verifying the certificate
	Sha2           bool // --default-auth=caching_sha2_password
}

// cliArgs returns the mariadb CLI arguments for c at e: no option files,
// TCP, batch mode with raw output.
func cliArgs(t testing.TB, e endpoint, c cliConn) []string {
	args := []string{"--no-defaults", "--protocol=tcp", "-h", e.Host, "-P", strconv.Itoa(e.Port),
		"-u", c.User, "--password=" + c.Password, "--batch", "--raw", "--connect-timeout=10", "--max-allowed-packet=256M", "--default-character-set=utf8mb4"}
	if c.DB != "" {
		args = append(args, "-D", c.DB)
	}
	if c.TLS {
		p := testPKI(t)
		args = append(args, "--ssl", "--ssl-ca="+p.CAFile, "--ssl-verify-server-cert")
	}
	if c.Sha2 {
		args = append(args, "--default-auth=caching_sha2_password", "--plugin-dir="+sha2PluginDir(t))
	}
	return args
}

// cli runs the mariadb CLI at e with extra arguments (such as -e SQL).
func cli(t testing.TB, e endpoint, c cliConn, stdin []byte, extra ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	return run(t, 2*time.Minute, stdin, mariadbCLI(t), append(cliArgs(t, e, c), extra...)...)
}

// pyConn says how the Python script connects.
type pyConn struct {
	Driver         string // pymysql or mysqldb
	User, Password string
	DB             string
	TLS            bool
	Sha2           bool
}

// pythonFor returns an interpreter that has driver, skipping the test when
// there is none.
func pythonFor(t testing.TB, driver string) string {
	t.Helper()
	switch driver {
	case "pymysql":
		return pythonWith(t, "pymysql", "python3-pymysql")
	case "mysqldb":
		return pythonWith(t, "MySQLdb", "python3-mysqldb")
	}
	t.Fatalf("unknown python driver %q", driver)
	return ""
}

// pyScript is the client script the Python tests run.
func pyScript(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("clients", "compat.py"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// python runs clients/compat.py with driver c.Driver against e.
func python(t testing.TB, e endpoint, c pyConn, scenario string, extra ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	py := pythonFor(t, c.Driver)
	args := []string{pyScript(t), "--driver", c.Driver, "--host", e.Host, "--port", strconv.Itoa(e.Port),
		"--user", c.User, "--password", c.Password, "--db", c.DB}
	if c.TLS {
		args = append(args, "--ssl-ca", testPKI(t).CAFile)
	}
	if c.Sha2 {
		args = append(args, "--sha2")
		if c.Driver == "mysqldb" {
			args = append(args, "--plugin-dir", sha2PluginDir(t))
		}
	}
	args = append(args, scenario)
	args = append(args, extra...)
	return run(t, 2*time.Minute, nil, py, args...)
}
