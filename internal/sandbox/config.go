package sandbox

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// innodbLogFileSize is shared by the template and the servers so no server resizes its
// redo log at first start. ExtraConfig may override it (the server then resizes once).
const innodbLogFileSize = "32M"

// maxSocketPath is the usable length of sun_path on Linux.
const maxSocketPath = 107

// serverConfig returns srv's my.cnf. The [mysqld] group is read by MariaDB and MySQL.
func serverConfig(f *flavor, o Options, srv *Server) string {
	lines := []string{
		"[mysqld]",
		"datadir=" + srv.DataDir,
		"socket=" + srv.Socket,
		"pid-file=" + srv.pidFile(),
		"tmpdir=" + srv.tmpDir(),
		fmt.Sprintf("port=%d", srv.Port),
		"bind-address=127.0.0.1",
		"skip-name-resolve",
		fmt.Sprintf("server_id=%d", srv.ServerID),
		"log_bin=binlog",
		"relay_log=relay-bin",
		"binlog_format=ROW",
		"max_allowed_packet=64M",
		"max_connections=500",
		"innodb_buffer_pool_size=" + o.BufferPool,
		"innodb_flush_log_at_trx_commit=2",
		"sync_binlog=0",
		"local_infile=1",
	}
	lines = append(lines, userLine()...)
	lines = append(lines, f.serverConfig(srv.Role)...)
	if !o.Async {
		lines = append(lines, f.semiSyncConfig()...)
	}
	lines = append(lines, o.ExtraConfig...)
	return strings.Join(lines, "\n") + "\n"
}

// installConfig is the my.cnf for creating the template datadir.
// The bootstrap server gets its own tmpdir: concurrent bootstraps sharing /tmp fail
// now and then on each other's temporary tables ("Unknown table 'mysql.tmp_user_sys'").
func installConfig(f *flavor, datadir, tmpdir string) string {
	lines := []string{
		"[mysqld]",
		"datadir=" + datadir,
		"tmpdir=" + tmpdir,
		"innodb_buffer_pool_size=" + defaultBufferPool,
	}
	lines = append(lines, f.installConfig()...)
	lines = append(lines, userLine()...)
	return strings.Join(lines, "\n") + "\n"
}

// userLine returns "user=root" when running as root, which the server otherwise refuses;
// other users run the server as themselves.
func userLine() []string {
	if os.Geteuid() == 0 {
		return []string{"user=root"}
	}
	return nil
}

// freePorts returns n distinct loopback ports that were free a moment ago. Another
// process may take one before mariadbd binds it; startServer retries with a new port.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
