package sandbox

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		out, flavor, version string
		major, minor         int
	}{
		{"mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)", FlavorMariaDB, "10.11.19", 10, 11},
		{"/usr/sbin/mysqld  Ver 11.4.2-MariaDB for Linux on x86_64 (MariaDB Server)", FlavorMariaDB, "11.4.2", 11, 4},
		{"/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)", FlavorMySQL, "8.0.36", 8, 0},
	} {
		f, err := parseVersion(tc.out)
		if err != nil {
			t.Errorf("parseVersion(%q): %v", tc.out, err)
			continue
		}
		if f.name != tc.flavor || f.version != tc.version || f.major != tc.major || f.minor != tc.minor {
			t.Errorf("parseVersion(%q) = %s %s (%d.%d), want %s %s (%d.%d)", tc.out,
				f.name, f.version, f.major, f.minor, tc.flavor, tc.version, tc.major, tc.minor)
		}
	}
	if _, err := parseVersion("command not found"); err == nil {
		t.Error("parseVersion(garbage) succeeded")
	}
}

func TestReadOnlyBypass(t *testing.T) {
	for _, tc := range []struct {
		major, minor int
		want         string
	}{{10, 6, "SUPER,READ ONLY ADMIN"}, {10, 11, "READ ONLY ADMIN"}, {11, 4, "READ ONLY ADMIN"}} {
		f := &flavor{name: FlavorMariaDB, major: tc.major, minor: tc.minor}
		if got := strings.Join(f.readOnlyBypass(), ","); got != tc.want {
			t.Errorf("readOnlyBypass(%d.%d) = %q, want %q", tc.major, tc.minor, got, tc.want)
		}
	}
}

func TestDetectFlavorMissingBinaries(t *testing.T) {
	_, err := detectFlavor(t.Context(), []string{t.TempDir()})
	if !errors.Is(err, ErrNoServer) {
		t.Fatalf("detectFlavor(empty dir) = %v, want ErrNoServer", err)
	}
	for _, want := range []string{"mariadbd", "mariadb-install-db", "apt-get install mariadb-server mariadb-client"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDetectFlavorMySQL(t *testing.T) {
	dir := t.TempDir()
	fake := "#!/bin/sh\necho '/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)'\n"
	for _, name := range []string{"mysqld", "mysql_install_db"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, err := detectFlavor(t.Context(), []string{dir})
	if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), "MySQL 8.0.36") {
		t.Errorf("detectFlavor(fake MySQL) = %v, want ErrNoServer naming MySQL 8.0.36", err)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Replicas != 2 || o.RootPassword != "sandbox" || o.BufferPool != "64M" || o.BaseDir != os.TempDir() ||
		len(o.Users) != 1 || o.Users[0] != (User{Name: "app", Password: "app-secret"}) ||
		o.Monitor != (User{Name: "monitor", Password: "monitor-secret"}) {
		t.Errorf("Options{}.withDefaults() = %+v", o)
	}
	if o, _ := (Options{NoReplicas: true}).withDefaults(); o.Replicas != 0 {
		t.Errorf("NoReplicas: Replicas = %d, want 0", o.Replicas)
	}
}

func TestOptionsInvalid(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Replicas: -1}, "replicas: -1 is negative"},
		{Options{Replicas: 1, NoReplicas: true}, "replicas: 1 conflicts with NoReplicas"},
		{Options{Replicas: 17}, "replicas: 17 is more than 16"},
		{Options{Users: []User{{Name: "root"}}}, `users[0]: user "root" is already RootPassword`},
		{Options{Users: []User{{Name: "a"}, {Name: "a"}}}, `users[1]: user "a" is already users[0]`},
		{Options{Users: []User{{Password: "x"}}}, "users[0]: empty user name"},
		{Options{Monitor: User{Name: "repl"}}, `monitor: user "repl" is already the replication user`},
		{Options{ExtraConfig: []string{"[client]"}}, `extra config[0]: "[client]" must be one option line`},
	} {
		_, err := tc.opts.withDefaults()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("withDefaults(%+v) = %v, want error containing %q", tc.opts, err, tc.want)
		}
	}
}

func TestOwnerPID(t *testing.T) {
	for name, want := range map[string]int{
		"switchyard-sandbox-4242-123": 4242,
		"switchyard-sandbox-x-123":    0,
		"switchyard-sandbox-4242":     0,
		"other-4242-1":                0,
	} {
		if got, _ := ownerPID(name); got != want {
			t.Errorf("ownerPID(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestLineWriter(t *testing.T) {
	var out bytes.Buffer
	sink := &logSink{w: &out}
	a, b := sink.prefixed("primary"), sink.prefixed("replica1")
	a.Write([]byte("one\ntw"))
	b.Write([]byte("x\n"))
	a.Write([]byte("o\n"))
	sink.printf("done %d", 1)
	want := "[primary] one\n[replica1] x\n[primary] two\nsandbox: done 1\n"
	if out.String() != want {
		t.Errorf("log = %q, want %q", out.String(), want)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{`a`: `'a'`, `it's`: `'it\'s'`, `back\slash`: `'back\\slash'`} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestConcurrentInstalls runs several template installs at once, as parallel test
// packages do. Sharing /tmp, about one bootstrap in three failed on another's
// temporary tables; each now has its own tmpdir.
func TestConcurrentInstalls(t *testing.T) {
	fl, err := detectFlavor(t.Context(), searchDirs())
	if errors.Is(err, ErrNoServer) && os.Getenv(RequireEnv) != "1" {
		t.Skipf("no MariaDB server (set %s=1 to fail instead): %v", RequireEnv, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			sb := &Sandbox{Dir: t.TempDir(), flavor: fl}
			errs <- sb.installTemplate(t.Context(), filepath.Join(sb.Dir, "template"))
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestInstallErrorQuotesServer(t *testing.T) {
	out := "Installing MariaDB/MySQL system tables in '/x' ...\nERROR: 1051  Unknown table 'mysql.tmp_user_sys'\n" +
		"\nInstallation of system tables failed!  Examine the logs in\n/x for more information.\n\nThe problem could be...\n"
	got := installError([]byte(out))
	if !strings.Contains(got, "Unknown table") || strings.Contains(got, "The problem could be") {
		t.Errorf("installError = %q, want the server's error without the script's advice", got)
	}
}
