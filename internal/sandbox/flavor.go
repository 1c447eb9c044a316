package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrNoServer means no usable server binaries were found. Require and New skip the test
// on it unless SWITCHYARD_REQUIRE_SANDBOX=1.
var ErrNoServer = errors.New("no usable MariaDB server binaries")

// Flavor names reported in Sandbox.Flavor.
const (
	FlavorMariaDB = "mariadb"
	FlavorMySQL   = "mysql"
)

// Binary names searched for, in order of preference.
var (
	serverBinaries  = []string{"mariadbd", "mysqld"}
	installBinaries = []string{"mariadb-install-db", "mysql_install_db"}
	// sbinDirs are searched after $PATH, which often lacks them for non-root users.
	sbinDirs = []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin"}
)

// minMariaDB is the oldest MariaDB the sandbox drives: it needs the SLAVE MONITOR and
// READ ONLY ADMIN privileges (10.5) and is tested on 10.11.
var minMariaDB = [2]int{10, 6}

// flavor is a detected server installation. Everything that differs between MariaDB and
// MySQL lives in its methods, so the rest of the package is flavour-blind. Only MariaDB is
// implemented: Debian packages no MySQL 8 server. Adding MySQL means filling in each
// method's MySQL branch (mysqld --initialize-insecure, gtid_mode=ON, CHANGE REPLICATION
// SOURCE TO ... SOURCE_AUTO_POSITION=1, WAIT_FOR_EXECUTED_GTID_SET, super_read_only).
type flavor struct {
	name    string // FlavorMariaDB or FlavorMySQL
	version string // "10.11.19"
	major   int
	minor   int
	server  string // path of mariadbd
	install string // path of mariadb-install-db
}

// searchDirs returns $PATH followed by the sbin directories.
func searchDirs() []string {
	return append(filepath.SplitList(os.Getenv("PATH")), sbinDirs...)
}

// detectFlavor finds the server binaries in dirs and asks the server for its version.
func detectFlavor(ctx context.Context, dirs []string) (*flavor, error) {
	server := findExecutable(serverBinaries, dirs)
	install := findExecutable(installBinaries, dirs)
	if server == "" || install == "" {
		return nil, fmt.Errorf("%w: found %s and %s; searched for %s and %s in $PATH and %s; "+
			"install them with: apt-get install mariadb-server mariadb-client",
			ErrNoServer, describe(serverBinaries, server), describe(installBinaries, install),
			strings.Join(serverBinaries, "/"), strings.Join(installBinaries, "/"),
			strings.Join(sbinDirs, ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, server, "--version").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%w: %s --version: %v: %s", ErrNoServer, server, err, bytesTail(out, 5))
	}
	f, err := parseVersion(string(out))
	if err != nil {
		return nil, fmt.Errorf("%w: %s --version: %v", ErrNoServer, server, err)
	}
	f.server, f.install = server, install
	if f.name != FlavorMariaDB {
		return nil, fmt.Errorf("%w: %s is MySQL %s; the sandbox supports only MariaDB so far: "+
			"install mariadb-server mariadb-client", ErrNoServer, server, f.version)
	}
	if f.major < minMariaDB[0] || f.major == minMariaDB[0] && f.minor < minMariaDB[1] {
		return nil, fmt.Errorf("%w: %s is MariaDB %s; the sandbox needs %d.%d or newer",
			ErrNoServer, server, f.version, minMariaDB[0], minMariaDB[1])
	}
	return f, nil
}

var versionRE = regexp.MustCompile(`Ver\s+(\d+)\.(\d+)\.(\d+)(\S*)`)

// parseVersion reads `mariadbd --version` output, such as
// "mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)".
func parseVersion(out string) (*flavor, error) {
	m := versionRE.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("no version in %q", strings.TrimSpace(out))
	}
	f := &flavor{name: FlavorMySQL, version: m[1] + "." + m[2] + "." + m[3]}
	f.major, _ = strconv.Atoi(m[1])
	f.minor, _ = strconv.Atoi(m[2])
	if strings.Contains(m[4], "MariaDB") || strings.Contains(out, "MariaDB") {
		f.name = FlavorMariaDB
	}
	return f, nil
}

// findExecutable returns the first of names found as an executable file in dirs, or "".
func findExecutable(names, dirs []string) string {
	for _, name := range names {
		for _, dir := range dirs {
			if dir == "" {
				continue
			}
			p := filepath.Join(dir, name)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	return ""
}

func describe(names []string, found string) string {
	if found == "" {
		return "no " + strings.Join(names, "/")
	}
	return found
}

// installCommand initialises an empty data directory described by the config file cnf.
func (f *flavor) installCommand(ctx context.Context, cnf string) *exec.Cmd {
	return exec.CommandContext(ctx, f.install, "--defaults-file="+cnf,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve")
}

// replicationConfig returns the flavour's GTID and promotion-readiness settings.
func (f *flavor) replicationConfig() []string {
	return []string{"gtid_strict_mode=1", "log_slave_updates=1"}
}

// identifiedBy is the authentication clause for CREATE/ALTER USER.
func (f *flavor) identifiedBy(password string) string {
	return "IDENTIFIED VIA mysql_native_password USING PASSWORD(" + quote(password) + ")"
}

// monitorPrivileges are what replication health checks need: SHOW SLAVE STATUS, binlog
// positions, the process list and SELECT for probes.
func (f *flavor) monitorPrivileges() string {
	return "REPLICATION CLIENT, PROCESS, SLAVE MONITOR, SELECT ON *.*"
}

// readOnlyBypass lists the privileges that let a user write on a read_only server.
// MariaDB 10.11 split READ ONLY ADMIN out of SUPER; before that SUPER implied it.
func (f *flavor) readOnlyBypass() []string {
	if f.major > 10 || f.minor >= 11 {
		return []string{"READ ONLY ADMIN"}
	}
	return []string{"SUPER", "READ ONLY ADMIN"}
}

// startReplicationSQL points a fresh replica at the primary and starts both threads.
// MASTER_CONNECT_RETRY=1 makes replicas reconnect within a second of a primary restart.
func (f *flavor) startReplicationSQL(primaryPort int) []string {
	return []string{
		"SET GLOBAL gtid_slave_pos = ''",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER=%s, "+
			"MASTER_PASSWORD=%s, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
			primaryPort, quote(ReplicationUser), quote(ReplicationPassword)),
		"START SLAVE",
	}
}

// Replica status: the statement and the column names it reports.
func (f *flavor) replicaStatusSQL() string { return "SHOW SLAVE STATUS" }

var replicaStatusColumns = struct{ io, sql, ioErr, sqlErr string }{
	"Slave_IO_Running", "Slave_SQL_Running", "Last_IO_Error", "Last_SQL_Error",
}

// executedGTIDSQL returns the set of transactions a server has written to its binlog.
func (f *flavor) executedGTIDSQL() string { return "SELECT @@GLOBAL.gtid_binlog_pos" }

// appliedGTIDSQL returns what a replica has applied.
func (f *flavor) appliedGTIDSQL() string { return "SELECT @@GLOBAL.gtid_slave_pos" }

// waitGTIDSQL blocks until the position (first argument) is applied or the timeout in
// seconds (second argument) passes; it returns 0 on success and -1 on timeout.
func (f *flavor) waitGTIDSQL() string { return "SELECT MASTER_GTID_WAIT(?, ?)" }

// quote returns s as a single-quoted SQL string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
