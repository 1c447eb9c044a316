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
var ErrNoServer = errors.New("no usable server binaries")

// Flavor names reported in Sandbox.Flavor; also the engines Options.Engine selects.
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

// MySQLRootEnv names the environment variable holding the root filesystem MySQL runs
// from; DefaultMySQLRoot is used when it is empty. scripts/mysql-rootfs.sh builds it.
const (
	MySQLRootEnv     = "SWITCHYARD_MYSQL_ROOT"
	DefaultMySQLRoot = "/var/cache/switchyard/mysql-sid"
)

// minMariaDB is the oldest MariaDB the sandbox drives: it needs the SLAVE MONITOR and
// READ ONLY ADMIN privileges (10.5) and is tested on 10.11. minMySQL is the oldest
// MySQL: SHOW REPLICA STATUS and CHANGE REPLICATION SOURCE TO (8.0.23), tested on 9.7.
var (
	minMariaDB = [2]int{10, 6}
	minMySQL   = [2]int{8, 4}
)

// flavor is a detected server installation. Everything that differs between MariaDB and
// MySQL lives in its methods, so the rest of the package is flavour-blind.
//
// MariaDB is the host's own (Debian's mariadb-server). MySQL runs from a Debian sid root
// filesystem (root): Debian 12 packages no MySQL, and sid's needs a newer libc than the
// host's, so its binaries run through that filesystem's own dynamic loader, which lets
// data directories live anywhere on the host.
type flavor struct {
	name    string // FlavorMariaDB or FlavorMySQL
	version string // "10.11.19"
	major   int
	minor   int
	server  string // path of mariadbd or mysqld
	install string // path of mariadb-install-db; "" for MySQL (mysqld --initialize-insecure)
	root    string // MySQL's root filesystem; "" for binaries that run on the host
}

// searchDirs returns $PATH followed by the sbin directories.
func searchDirs() []string {
	return append(filepath.SplitList(os.Getenv("PATH")), sbinDirs...)
}

// mysqlRoot returns the root filesystem MySQL runs from.
func mysqlRoot() string {
	if r := os.Getenv(MySQLRootEnv); r != "" {
		return r
	}
	return DefaultMySQLRoot
}

// detectEngine finds the binaries of engine (FlavorMariaDB or FlavorMySQL).
func detectEngine(ctx context.Context, engine string) (*flavor, error) {
	switch engine {
	case FlavorMariaDB:
		return detectFlavor(ctx, searchDirs())
	case FlavorMySQL:
		return detectMySQL(ctx, mysqlRoot())
	}
	return nil, fmt.Errorf("engine %q: want %s or %s", engine, FlavorMariaDB, FlavorMySQL)
}

// detectMySQL checks the MySQL root filesystem at root and asks its mysqld for the version.
func detectMySQL(ctx context.Context, root string) (*flavor, error) {
	f := &flavor{root: root, server: filepath.Join(root, "usr/sbin/mysqld")}
	if _, err := os.Stat(f.loader()); err != nil {
		return nil, fmt.Errorf("%w: no MySQL root filesystem at %s (%s=%q): build it with "+
			"scripts/mysql-rootfs.sh (as root; ./scripts/deps.sh does it)", ErrNoServer, root, MySQLRootEnv, os.Getenv(MySQLRootEnv))
	}
	if err := f.checkVersion(ctx); err != nil {
		return nil, err
	}
	if f.name != FlavorMySQL {
		return nil, fmt.Errorf("%w: %s is MariaDB %s, not MySQL", ErrNoServer, f.server, f.version)
	}
	if f.major < minMySQL[0] || f.major == minMySQL[0] && f.minor < minMySQL[1] {
		return nil, fmt.Errorf("%w: %s is MySQL %s; the sandbox needs %d.%d or newer",
			ErrNoServer, f.server, f.version, minMySQL[0], minMySQL[1])
	}
	return f, nil
}

// detectFlavor finds MariaDB's binaries in dirs and asks the server for its version.
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
	f := &flavor{server: server, install: install}
	if err := f.checkVersion(ctx); err != nil {
		return nil, err
	}
	if f.name != FlavorMariaDB {
		return nil, fmt.Errorf("%w: %s is MySQL %s; on the host the sandbox runs MariaDB "+
			"(install mariadb-server mariadb-client), and MySQL with engine mysql", ErrNoServer, server, f.version)
	}
	if f.major < minMariaDB[0] || f.major == minMariaDB[0] && f.minor < minMariaDB[1] {
		return nil, fmt.Errorf("%w: %s is MariaDB %s; the sandbox needs %d.%d or newer",
			ErrNoServer, server, f.version, minMariaDB[0], minMariaDB[1])
	}
	return f, nil
}

// checkVersion runs the server with --version and fills in name and version.
func (f *flavor) checkVersion(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := f.command(ctx, f.server, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s --version: %v: %s", ErrNoServer, f.server, err, bytesTail(out, 5))
	}
	v, err := parseVersion(string(out))
	if err != nil {
		return fmt.Errorf("%w: %s --version: %v", ErrNoServer, f.server, err)
	}
	f.name, f.version, f.major, f.minor = v.name, v.version, v.major, v.minor
	return nil
}

// loader is the root filesystem's dynamic loader.
func (f *flavor) loader() string { return filepath.Join(f.root, "lib64/ld-linux-x86-64.so.2") }

// command runs bin (a path inside the root filesystem, for MySQL) with args.
func (f *flavor) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	if f.root == "" {
		return exec.CommandContext(ctx, bin, args...)
	}
	libs := filepath.Join(f.root, "usr/lib/x86_64-linux-gnu") + ":" + filepath.Join(f.root, "lib/x86_64-linux-gnu")
	return exec.CommandContext(ctx, f.loader(), append([]string{"--library-path", libs, bin}, args...)...)
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
	if f.name == FlavorMySQL {
		// root@localhost without a password, as mariadb-install-db makes it; the server
		// also makes its own TLS certificate and RSA key pair.
		return f.command(ctx, f.server, "--defaults-file="+cnf, "--initialize-insecure")
	}
	return f.command(ctx, f.install, "--defaults-file="+cnf,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve")
}

// readOnlyArgs are the command-line options that start a server read-only.
func (f *flavor) readOnlyArgs() []string {
	if f.name == FlavorMySQL {
		return []string{"--read-only=ON", "--super-read-only=ON"}
	}
	return []string{"--read-only=ON"}
}

// serverConfig returns the flavour's own my.cnf lines.
func (f *flavor) serverConfig(role string) []string {
	if f.name == FlavorMySQL {
		lines := []string{
			"basedir=" + filepath.Join(f.root, "usr"),
			"lc-messages-dir=" + filepath.Join(f.root, "usr/share/mysql"),
			"plugin-dir=" + filepath.Join(f.root, "usr/lib/mysql/plugin"),
			"secure-file-priv=", // mysqld refuses to start without it
			"mysqlx=OFF",
			"gtid_mode=ON",
			"enforce_gtid_consistency=ON",
			"log_replica_updates=ON",
			"innodb_redo_log_capacity=64M",
			// MySQL's ALL PRIVILEGES has no SUPER: without this, application
			// users cannot create triggers and stored functions with the
			// binlog on (error 1419), as they can on MariaDB.
			"log_bin_trust_function_creators=ON",
			// Replicas notice a primary that hangs within two seconds
			// (heartbeats every second), as automatic failover needs.
			"replica_net_timeout=2",
		}
		if role == RoleReplica {
			lines = append(lines, "super_read_only=1")
		}
		return lines
	}
	lines := []string{"gtid_strict_mode=1", "log_slave_updates=1", "innodb_log_file_size=" + innodbLogFileSize,
		"slave_net_timeout=2"}
	if role == RoleReplica {
		lines = append(lines, "read_only=1")
	}
	return lines
}

// SemiSyncTimeout is how long a sandbox primary waits for a replica's
// acknowledgement of a commit before it goes on without one: short, so that a
// test that stops every replica does not stall its writes for MySQL's and
// MariaDB's default ten seconds.
const SemiSyncTimeout = time.Second

// semiSyncConfig returns the my.cnf lines of semi-synchronous replication, for
// every server.
func (f *flavor) semiSyncConfig() []string {
	ms := SemiSyncTimeout.Milliseconds()
	if f.name == FlavorMySQL {
		return []string{
			"plugin-load-add=semisync_source.so",
			"plugin-load-add=semisync_replica.so",
			"loose-rpl_semi_sync_source_enabled=ON",
			"loose-rpl_semi_sync_replica_enabled=ON",
			"loose-rpl_semi_sync_source_wait_point=AFTER_SYNC",
			fmt.Sprintf("loose-rpl_semi_sync_source_timeout=%d", ms),
		}
	}
	return []string{
		"rpl_semi_sync_master_enabled=ON",
		"rpl_semi_sync_slave_enabled=ON",
		"rpl_semi_sync_master_wait_point=AFTER_SYNC",
		fmt.Sprintf("rpl_semi_sync_master_timeout=%d", ms),
	}
}

// installConfig returns the flavour's my.cnf lines for creating the template datadir.
func (f *flavor) installConfig() []string {
	if f.name == FlavorMySQL {
		return []string{
			"basedir=" + filepath.Join(f.root, "usr"),
			"lc-messages-dir=" + filepath.Join(f.root, "usr/share/mysql"),
			"secure-file-priv=",
			"mysqlx=OFF",
			"innodb_redo_log_capacity=64M",
			"disable-log-bin", // the template's history would be every server's
		}
	}
	return []string{"innodb_log_file_size=" + innodbLogFileSize, "skip-log-bin"}
}

// identifiedBy is the authentication clause for CREATE/ALTER USER. MariaDB's accounts use
// mysql_native_password; MySQL 9 has only caching_sha2_password, its default.
func (f *flavor) identifiedBy(password string) string {
	if f.name == FlavorMySQL {
		return "IDENTIFIED BY " + quote(password)
	}
	return "IDENTIFIED VIA mysql_native_password USING PASSWORD(" + quote(password) + ")"
}

// monitorPrivileges are what replication health checks need: the replica status, binlog
// positions, the process list and SELECT for probes.
func (f *flavor) monitorPrivileges() string {
	if f.name == FlavorMySQL {
		return "REPLICATION CLIENT, PROCESS, SELECT ON *.*"
	}
	return "REPLICATION CLIENT, PROCESS, SLAVE MONITOR, SELECT ON *.*"
}

// readOnlyBypass lists the privileges that let a user write on a read_only server.
// MariaDB 10.11 split READ ONLY ADMIN out of SUPER; before that SUPER implied it. On
// MySQL, SUPER and CONNECTION_ADMIN bypass read_only (super_read_only stops them too).
func (f *flavor) readOnlyBypass() []string {
	switch {
	case f.name == FlavorMySQL:
		return []string{"SUPER", "CONNECTION_ADMIN"}
	case f.major > 10 || f.minor >= 11:
		return []string{"READ ONLY ADMIN"}
	}
	return []string{"SUPER", "READ ONLY ADMIN"}
}

// startReplicationSQL points a fresh replica at the primary and starts both threads.
func (f *flavor) startReplicationSQL(primaryPort int) []string {
	if f.name == FlavorMySQL {
		return []string{f.changeSourceSQL(primaryPort, ""), "START REPLICA"}
	}
	return []string{"SET GLOBAL gtid_slave_pos = ''", f.changeSourceSQL(primaryPort, "slave_pos"), "START SLAVE"}
}

// changeSourceSQL points a replica at the server on port of 127.0.0.1. MySQL positions
// itself by its gtid_executed; MariaDB by useGTID, slave_pos or current_pos. A connect
// retry of one second makes replicas reconnect within a second of a primary restart.
// MySQL replicas fetch the primary's RSA key to log in with caching_sha2, and retry for
// a day, as MariaDB's do by default: MySQL's default of ten retries would give up on a
// primary that takes ten seconds to restart on a busy machine.
func (f *flavor) changeSourceSQL(port int, useGTID string) string {
	if f.name == FlavorMySQL {
		return fmt.Sprintf("CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=%d, SOURCE_USER=%s, "+
			"SOURCE_PASSWORD=%s, SOURCE_AUTO_POSITION=1, GET_SOURCE_PUBLIC_KEY=1, SOURCE_CONNECT_RETRY=1, "+
			"SOURCE_RETRY_COUNT=86400",
			port, quote(ReplicationUser), quote(ReplicationPassword))
	}
	return fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER=%s, "+
		"MASTER_PASSWORD=%s, MASTER_USE_GTID=%s, MASTER_CONNECT_RETRY=1",
		port, quote(ReplicationUser), quote(ReplicationPassword), useGTID)
}

// replicaStatusSQL is the statement reporting a replica's threads.
func (f *flavor) replicaStatusSQL() string {
	if f.name == FlavorMySQL {
		return "SHOW REPLICA STATUS"
	}
	return "SHOW SLAVE STATUS"
}

// statusColumns names the replica status columns the sandbox reads.
type statusColumns struct{ io, sql, ioErr, sqlErr string }

func (f *flavor) replicaStatusColumns() statusColumns {
	if f.name == FlavorMySQL {
		return statusColumns{"Replica_IO_Running", "Replica_SQL_Running", "Last_IO_Error", "Last_SQL_Error"}
	}
	return statusColumns{"Slave_IO_Running", "Slave_SQL_Running", "Last_IO_Error", "Last_SQL_Error"}
}

// executedGTIDSQL returns the set of transactions a server has written to its binlog.
func (f *flavor) executedGTIDSQL() string {
	if f.name == FlavorMySQL {
		return "SELECT @@GLOBAL.gtid_executed"
	}
	return "SELECT @@GLOBAL.gtid_binlog_pos"
}

// appliedGTIDSQL returns what a replica has applied.
func (f *flavor) appliedGTIDSQL() string {
	if f.name == FlavorMySQL {
		return "SELECT @@GLOBAL.gtid_executed"
	}
	return "SELECT @@GLOBAL.gtid_slave_pos"
}

// waitGTIDSQL blocks until the position (first argument) is applied or the timeout in
// seconds (second argument) passes; it returns 0 on success (MariaDB: -1 on timeout,
// MySQL: 1).
func (f *flavor) waitGTIDSQL() string {
	if f.name == FlavorMySQL {
		return "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)"
	}
	return "SELECT MASTER_GTID_WAIT(?, ?)"
}

// quote returns s as a single-quoted SQL string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
