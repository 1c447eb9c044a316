package sandbox

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// defaultStartTimeout bounds Start when its context has no deadline.
const defaultStartTimeout = 2 * time.Minute

// portAttempts is how often a server start is retried on a port taken by someone else.
const portAttempts = 3

// Sandbox is a running primary with its replicas. Close it when done.
type Sandbox struct {
	Primary     *Server
	Replicas    []*Server
	Flavor      string        // FlavorMariaDB or FlavorMySQL (Options.Engine)
	Version     string        // server version, "10.11.19"
	Opts        Options       // the options with defaults applied
	Dir         string        // the temporary directory holding every server's datadir
	StartupTime time.Duration // how long Start took, from call to replicated users

	flavor *flavor
	log    *logSink

	mu     sync.Mutex
	dbs    map[*Server]*sql.DB
	closed bool
	errCl  error
}

// Start starts a primary and its replicas, creates the users, sets up GTID replication
// and returns once every replica replicates and has caught up. If ctx has no deadline,
// Start gives up after two minutes. On error nothing is left running or on disk.
// errors.Is(err, ErrNoServer) reports missing server binaries.
func Start(ctx context.Context, opts Options) (*Sandbox, error) {
	began := time.Now()
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, done, err := beginStart(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	fl, err := detectEngine(ctx, opts.Engine)
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	sink := &logSink{w: opts.Log}
	removeStale(opts.BaseDir, sink)

	dir, err := os.MkdirTemp(opts.BaseDir, dirPrefix+fmt.Sprint(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	sb := &Sandbox{
		Flavor:  fl.name,
		Version: fl.version,
		Opts:    opts,
		Dir:     dir,
		flavor:  fl,
		log:     sink,
		dbs:     map[*Server]*sql.DB{},
	}
	if err := sb.start(ctx); err != nil {
		sb.Close()
		return nil, fmt.Errorf("start sandbox: %w", err)
	}
	register(sb)
	sb.StartupTime = time.Since(began)
	sink.printf("%s %s: primary and %d replicas ready in %s", fl.name, fl.version,
		len(sb.Replicas), sb.StartupTime.Round(time.Millisecond))
	return sb, nil
}

func (sb *Sandbox) start(ctx context.Context) error {
	o := sb.Opts
	ports, err := freePorts(o.Replicas + 1)
	if err != nil {
		return err
	}
	for i := range o.Replicas + 1 {
		srv := &Server{Name: RolePrimary, Role: RolePrimary, Port: ports[i], ServerID: i + 1, fl: sb.flavor, sb: sb}
		if i > 0 {
			srv.Name, srv.Role = fmt.Sprintf("replica%d", i), RoleReplica
		}
		srv.DataDir = filepath.Join(sb.Dir, srv.Name)
		srv.Socket = filepath.Join(srv.DataDir, "mysql.sock")
		if len(srv.Socket) > maxSocketPath {
			return fmt.Errorf("socket path %s is longer than %d bytes: use a shorter BaseDir", srv.Socket, maxSocketPath)
		}
		if o.Log != io.Discard {
			srv.log = sb.log.prefixed(srv.Name)
		}
		if i == 0 {
			sb.Primary = srv
		} else {
			sb.Replicas = append(sb.Replicas, srv)
		}
	}

	t := time.Now()
	template := filepath.Join(sb.Dir, "template")
	if err := sb.installTemplate(ctx, template); err != nil {
		return err
	}
	sb.log.printf("initialised template datadir in %s", time.Since(t).Round(time.Millisecond))

	t = time.Now()
	err = parallel(sb.Servers(), func(srv *Server) error {
		if err := copyDir(template, srv.DataDir); err != nil {
			return fmt.Errorf("copy datadir for %s: %w", srv.Name, err)
		}
		// MySQL keeps its server_uuid in auto.cnf and makes a new one when it is
		// missing; copies sharing one would refuse to replicate from each other.
		if err := os.Remove(filepath.Join(srv.DataDir, "auto.cnf")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return sb.startNew(ctx, srv)
	})
	if err != nil {
		return err
	}
	os.RemoveAll(template)
	sb.log.printf("started %d servers in %s", len(sb.Servers()), time.Since(t).Round(time.Millisecond))

	t = time.Now()
	if err := sb.setup(ctx); err != nil {
		return err
	}
	sb.log.printf("users and replication set up in %s", time.Since(t).Round(time.Millisecond))
	return nil
}

// installTemplate creates an initialised datadir that every server starts from a copy
// of: one mariadb-install-db (or mysqld --initialize-insecure) run instead of one per
// server.
func (sb *Sandbox) installTemplate(ctx context.Context, dir string) error {
	tmp := filepath.Join(sb.Dir, "install.tmp")
	for _, d := range []string{dir, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("install datadir: %w", err)
		}
	}
	defer os.RemoveAll(tmp)
	cnf := filepath.Join(sb.Dir, "install.cnf")
	if err := os.WriteFile(cnf, []byte(installConfig(sb.flavor, dir, tmp)), 0o644); err != nil {
		return fmt.Errorf("install datadir: %w", err)
	}
	// mariadb-install-db is a shell script running mariadbd --bootstrap: give it its own
	// process group and kill the whole group on cancellation, or the bootstrap server
	// would outlive the script and keep writing into a directory Close removes.
	cmd := sb.flavor.installCommand(ctx, cnf)
	cmd.Dir = sb.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput() // only quoted on failure: it is mostly advice to humans
	if err != nil {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			waitGroupGone(cmd.Process.Pid, 5*time.Second)
		}
		return fmt.Errorf("install datadir: %s: %w\n%s", cmd.Path, err, installError(out))
	}
	return nil
}

// installError picks the server's own words out of mariadb-install-db's output: what
// comes before the script's generic advice, which starts after this line.
func installError(out []byte) string {
	before, _, found := bytes.Cut(out, []byte("Installation of system tables failed"))
	if !found {
		return bytesTail(out, 20)
	}
	return bytesTail(before, 20)
}

// startNew writes srv's config and starts it, moving to a fresh port if the chosen one
// was taken meanwhile.
func (sb *Sandbox) startNew(ctx context.Context, srv *Server) error {
	for attempt := 1; ; attempt++ {
		cfg := serverConfig(sb.flavor, sb.Opts, srv)
		if err := os.WriteFile(srv.configFile(), []byte(cfg), 0o644); err != nil {
			return fmt.Errorf("write config for %s: %w", srv.Name, err)
		}
		err := srv.start(ctx)
		if err == nil || !errors.Is(err, errPortInUse) || attempt == portAttempts {
			return err
		}
		ports, perr := freePorts(1)
		if perr != nil {
			return errors.Join(err, perr)
		}
		sb.log.printf("%s: port %d taken, retrying on %d", srv.Name, srv.Port, ports[0])
		srv.Port = ports[0]
	}
}

// Servers returns the primary followed by the replicas.
func (sb *Sandbox) Servers() []*Server {
	return append([]*Server{sb.Primary}, sb.Replicas...)
}

// otherWritable reports whether a server of the sandbox other than srv is
// running and says it is writable.
func (sb *Sandbox) otherWritable(ctx context.Context, srv *Server) bool {
	for _, o := range sb.Servers() {
		if o == srv || o.Pid() == 0 {
			continue
		}
		db, err := sb.RootDB(o)
		if err != nil {
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		var ro int
		err = db.QueryRowContext(qctx, "SELECT @@GLOBAL.read_only").Scan(&ro)
		cancel()
		if err == nil && ro == 0 {
			return true
		}
	}
	return false
}

// RootDB returns a pool connected to srv as root over TCP, with the password from
// Options. Pools are cached per server and closed by Close; callers must not close them.
func (sb *Sandbox) RootDB(srv *Server) (*sql.DB, error) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.closed {
		return nil, fmt.Errorf("root db for %s: %w", srv.Name, ErrClosed)
	}
	if db, ok := sb.dbs[srv]; ok {
		return db, nil
	}
	cfg := srv.driverConfig("root", sb.Opts.RootPassword, "")
	// Servers are killed and restarted on purpose; the driver need not log each idle
	// connection it finds dead afterwards.
	cfg.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("root db for %s: %w", srv.Name, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxIdleConns(2)
	sb.dbs[srv] = db
	return db, nil
}

// Close kills every server, closes the RootDB pools and removes the sandbox directory.
// The data is thrown away, so there is no clean shutdown. Close is idempotent and safe
// to call concurrently; later calls return the first call's result.
func (sb *Sandbox) Close() error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.closed {
		return sb.errCl
	}
	sb.closed = true
	// Unregister only when done, so closeAll, racing with this Close, blocks on sb.mu
	// instead of letting the process exit halfway through.
	defer unregister(sb)
	var errs []error
	for _, db := range sb.dbs {
		db.Close()
	}
	for _, srv := range sb.Servers() {
		if srv != nil {
			errs = append(errs, srv.close())
		}
	}
	if sb.Dir != "" {
		if err := os.RemoveAll(sb.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", sb.Dir, err))
		}
	}
	sb.errCl = errors.Join(errs...)
	return sb.errCl
}

// parallel runs fn for every server concurrently and joins their errors.
func parallel(servers []*Server, fn func(*Server) error) error {
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() { errs[i] = fn(srv) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// copyDir copies the regular files and directories under src into dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		}
		return nil // sockets and the like are not part of a datadir
	})
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// waitGroupGone polls until no process is left in process group pgid, or d passes.
func waitGroupGone(pgid int, d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
	}
}
