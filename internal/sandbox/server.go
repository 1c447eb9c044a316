package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Server roles.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
)

// ErrClosed is returned by Server methods after the sandbox has been closed.
var ErrClosed = errors.New("sandbox closed")

// errPortInUse marks a start that failed because another process took the port.
var errPortInUse = errors.New("port in use")

// Server is one mariadbd process of a sandbox. Its methods are safe for concurrent use.
type Server struct {
	Name     string // "primary", "replica1", ...
	Role     string // RolePrimary or RoleReplica
	Port     int    // TCP port on 127.0.0.1
	ServerID int    // server_id: 1 for the primary, 2..N+1 for replicas
	DataDir  string // datadir; also holds my.cnf, the socket and error.log
	Socket   string // unix socket path

	fl  *flavor   // the server's binaries
	log io.Writer // Options.Log prefixed with Name, or nil
	sb  *Sandbox  // the servers it restarts among

	mu     sync.Mutex
	proc   *process // nil before the first start
	closed bool
}

// process is one run of mariadbd.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // cmd.Wait's result, set before done is closed
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (s *Server) configFile() string   { return filepath.Join(s.DataDir, "my.cnf") }
func (s *Server) errorLogFile() string { return filepath.Join(s.DataDir, "error.log") }
func (s *Server) pidFile() string      { return filepath.Join(s.DataDir, "mariadbd.pid") }

// tmpDir is the server's own tmpdir, beside its datadir (inside, it would show up as a
// database). Servers sharing /tmp can collide on temporary table file names.
func (s *Server) tmpDir() string { return s.DataDir + ".tmp" }

// Addr returns the server's TCP address, "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// DSN returns a go-sql-driver/mysql DSN for user on this server over TCP, with database
// db (may be empty) and a 10 s dial timeout.
func (s *Server) DSN(user, password, db string) string {
	return s.driverConfig(user, password, db).FormatDSN()
}

func (s *Server) driverConfig(user, password, db string) *mysql.Config {
	c := mysql.NewConfig()
	c.User, c.Passwd = user, password
	c.Net, c.Addr, c.DBName = "tcp", s.Addr(), db
	c.Timeout = 10 * time.Second
	return c
}

// Pid returns the process id of the running server, or 0 when it is not running.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Start starts the server again after Stop or Kill, with the same datadir and port, and
// returns once it accepts connections. A replica resumes replicating by itself. If ctx
// has no deadline, Start gives up after two minutes.
//
// A server that finds another server of the sandbox writable (a replica was promoted
// while it was down) starts read-only, whatever its my.cnf says, as a careful init
// script does: never two primaries, not even for the moment it would take Switchyard
// to fence it.
func (s *Server) Start(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}
	var args []string
	if s.sb != nil && s.sb.otherWritable(ctx, s) {
		args = s.fl.readOnlyArgs()
	}
	return s.start(ctx, args...)
}

// start launches mariadbd with args after its defaults file and waits until it
// answers on its socket. On failure the process is killed and the error quotes the
// tail of this run's error log.
func (s *Server) start(ctx context.Context, args ...string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.Name, ErrClosed)
	}
	if s.proc != nil && !s.proc.exited() {
		s.mu.Unlock()
		return fmt.Errorf("start %s: already running (pid %d)", s.Name, s.proc.cmd.Process.Pid)
	}
	if err := os.MkdirAll(s.tmpDir(), 0o755); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	logFile, err := os.OpenFile(s.errorLogFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	logStart, _ := logFile.Seek(0, io.SeekEnd)

	// --defaults-file must come first. Setpgid keeps a terminal's Ctrl-C away from the
	// server, so teardown stays ours; Pdeathsig kills it if this process dies first. (The
	// signal follows the forking OS thread, and the Go runtime does not retire threads
	// unless a goroutine exits while locked to one, which this package never does.)
	cmd := s.fl.command(context.Background(), s.fl.server, append([]string{"--defaults-file=" + s.configFile()}, args...)...)
	cmd.Dir = s.DataDir
	cmd.Stdout = io.Writer(logFile) // an *os.File is handed to the child as is
	if s.log != nil {
		cmd.Stdout = io.MultiWriter(logFile, s.log)
	}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		logFile.Close()
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	s.proc = p
	s.mu.Unlock()

	if err := s.waitReady(ctx, p); err != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		tail := s.logTail(logStart, 20)
		if strings.Contains(tail, "Address already in use") {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		if strings.TrimSpace(tail) != "" {
			err = fmt.Errorf("%w\n--- %s (last lines) ---\n%s", err, s.errorLogFile(), tail)
		}
		return fmt.Errorf("start %s on %s: %w", s.Name, s.Addr(), err)
	}
	return nil
}

// waitReady polls the unix socket until the server sends its handshake. It probes the
// socket rather than TCP because aborted TCP handshakes count against
// max_connect_errors for 127.0.0.1, and it reads only the greeting so it needs no
// credentials.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if greeted(s.Socket) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("server exited: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("wait for connections: %w", context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// greeted reports whether a server on socket sends a protocol 10 handshake packet.
func greeted(socket string) bool {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	var hdr [5]byte // 3-byte length, sequence id, protocol version
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return false
	}
	return hdr[4] == 10
}

// current returns the running process, or nil.
func (s *Server) current() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return nil
	}
	return s.proc
}

// Stop shuts the server down cleanly (SIGTERM) and waits for it to exit. If ctx ends
// first, the server is killed and Stop returns ctx's error. Stopping a stopped server
// does nothing.
func (s *Server) Stop(ctx context.Context) error {
	p := s.current()
	if p == nil {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Process.Signal(syscall.SIGCONT) // a paused server must run to shut down
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("stop %s: %w", s.Name, context.Cause(ctx))
	}
}

// Kill kills the server with SIGKILL, as a crash would, and waits for it to exit.
// Killing a stopped server does nothing.
func (s *Server) Kill() error {
	p := s.current()
	if p == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", s.Name, err)
	}
	<-p.done
	return nil
}

// Pause freezes the server with SIGSTOP: connections stay open but nothing answers,
// like a hung host. Resume undoes it.
func (s *Server) Pause() error { return s.signal("pause", syscall.SIGSTOP) }

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() error { return s.signal("resume", syscall.SIGCONT) }

func (s *Server) signal(op string, sig syscall.Signal) error {
	p := s.current()
	if p == nil {
		return fmt.Errorf("%s %s: not running", op, s.Name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s %s: %w", op, s.Name, err)
	}
	return nil
}

// close kills the server and forbids restarts.
func (s *Server) close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.Kill()
}

// logTail returns the last n lines of the error log written since offset.
func (s *Server) logTail(offset int64, n int) string {
	b, err := os.ReadFile(s.errorLogFile())
	if err != nil {
		return fmt.Sprintf("(no error log: %v)", err)
	}
	if offset > 0 && offset <= int64(len(b)) {
		b = b[offset:]
	}
	return bytesTail(b, n)
}

// bytesTail returns the last n lines of b.
func bytesTail(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
