package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Credentials the sandbox creates besides those in Options. Replicas replicate as
// ReplicationUser; tests that repoint a replica after a promotion need them too.
const (
	// RequireEnv names the environment variable that, set to 1, makes tests
	// fail rather than skip when no server can be started.
	RequireEnv = "SWITCHYARD_REQUIRE_SANDBOX"

	ReplicationUser     = "repl"
	ReplicationPassword = "repl-secret"
)

// User is an account created on the primary (and so, by replication, on every server).
// All sandbox accounts authenticate with mysql_native_password, which both MariaDB and
// Switchyard's backend side speak.
type User struct {
	Name     string
	Password string
	// Grant is the privilege clause of the GRANT statement, for example
	// "SELECT ON shop.*". Empty means "ALL PRIVILEGES ON *.*".
	//
	// Whatever the grant, application users never get the privilege that bypasses
	// read_only (READ ONLY ADMIN on MariaDB), so a write misrouted to a replica fails as it
	// would in production.
	Grant string
}

// Options configure Start. The zero value gives a primary with two replicas and the
// default users; each field documents its default.
type Options struct {
	// Engine is FlavorMariaDB (the default, "") or FlavorMySQL. MariaDB runs from the
	// host's packages; MySQL from the root filesystem scripts/mysql-rootfs.sh builds
	// (MySQLRootEnv).
	Engine string
	// Replicas is the number of replicas. Zero means the default, 2, unless NoReplicas
	// is set.
	Replicas int
	// NoReplicas starts a lone primary. Replicas must then be zero.
	NoReplicas bool
	// BaseDir is the parent of the sandbox's temporary directory. Empty means
	// os.TempDir(). Unix socket paths must stay under 108 bytes, so keep it short.
	BaseDir string
	// RootPassword is root's password, for root@localhost and root@127.0.0.1.
	// Empty means "sandbox".
	RootPassword string
	// Users are the application users. Nil means one user "app" / "app-secret" with
	// ALL PRIVILEGES ON *.*. The proxy logs into backends as the client's own user,
	// so every user a test connects with through the proxy must be listed here.
	Users []User
	// Monitor is the user Switchyard's health checks use; it gets REPLICATION CLIENT,
	// PROCESS, SLAVE MONITOR and SELECT. Empty Name means "monitor" / "monitor-secret".
	Monitor User
	// BufferPool is innodb_buffer_pool_size for every server. Empty means "64M";
	// benchmarks use "512M" to stay CPU-bound.
	BufferPool string
	// Async turns semi-synchronous replication off. It is on by default, on every
	// server (any of them may be promoted): the primary acknowledges a commit once a
	// replica has it in its relay log (wait point AFTER_SYNC), waiting up to
	// SemiSyncTimeout for one, then goes on asynchronously until a replica catches up.
	Async bool
	// ExtraConfig holds my.cnf lines ("key=value") appended to every server's [mysqld]
	// section, after the sandbox's own lines so they override them. They do not apply
	// to mariadb-install-db.
	ExtraConfig []string
	// Log receives progress messages and every server's stderr (its error log), each
	// line prefixed with the server name. Nil discards them. Each server's log is also
	// kept in its data directory as error.log, and a failed start quotes its tail.
	Log io.Writer
}

// Defaults applied by withDefaults.
const (
	defaultReplicas     = 2
	defaultRootPassword = "sandbox"
	defaultBufferPool   = "64M"
	maxReplicas         = 16
)

// withDefaults returns a copy of o with defaults filled in, or every problem found.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	switch {
	case o.Replicas < 0:
		errs = append(errs, fmt.Errorf("replicas: %d is negative", o.Replicas))
	case o.NoReplicas && o.Replicas != 0:
		errs = append(errs, fmt.Errorf("replicas: %d conflicts with NoReplicas", o.Replicas))
	case o.Replicas > maxReplicas:
		errs = append(errs, fmt.Errorf("replicas: %d is more than %d", o.Replicas, maxReplicas))
	case o.Replicas == 0 && !o.NoReplicas:
		o.Replicas = defaultReplicas
	}
	switch o.Engine {
	case "":
		o.Engine = FlavorMariaDB
	case FlavorMariaDB, FlavorMySQL:
	default:
		errs = append(errs, fmt.Errorf("engine: %q is not %s or %s", o.Engine, FlavorMariaDB, FlavorMySQL))
	}
	if o.BaseDir == "" {
		o.BaseDir = os.TempDir()
	}
	if o.RootPassword == "" {
		o.RootPassword = defaultRootPassword
	}
	if o.Users == nil {
		o.Users = []User{{Name: "app", Password: "app-secret"}}
	}
	o.Users = append([]User(nil), o.Users...)
	if o.Monitor.Name == "" {
		o.Monitor = User{Name: "monitor", Password: "monitor-secret"}
	}
	if o.BufferPool == "" {
		o.BufferPool = defaultBufferPool
	}
	o.ExtraConfig = append([]string(nil), o.ExtraConfig...)
	if o.Log == nil {
		o.Log = io.Discard
	}

	seen := map[string]string{"root": "RootPassword", ReplicationUser: "the replication user"}
	check := func(field string, u User) {
		if u.Name == "" {
			errs = append(errs, fmt.Errorf("%s: empty user name", field))
			return
		}
		if prev, dup := seen[u.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: user %q is already %s", field, u.Name, prev))
		}
		seen[u.Name] = field
		if strings.ContainsRune(u.Name+u.Password, 0) {
			errs = append(errs, fmt.Errorf("%s: NUL byte in user name or password", field))
		}
	}
	check("monitor", o.Monitor)
	for i, u := range o.Users {
		check(fmt.Sprintf("users[%d]", i), u)
	}
	if strings.ContainsRune(o.RootPassword, 0) {
		errs = append(errs, errors.New("root password: NUL byte"))
	}
	for i, line := range o.ExtraConfig {
		if strings.ContainsAny(line, "\n\r") || strings.HasPrefix(strings.TrimSpace(line), "[") {
			errs = append(errs, fmt.Errorf("extra config[%d]: %q must be one option line", i, line))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Options{}, fmt.Errorf("sandbox options: %w", err)
	}
	return o, nil
}

// grant returns u's privilege clause.
func (u User) grant() string {
	if u.Grant == "" {
		return "ALL PRIVILEGES ON *.*"
	}
	return u.Grant
}
