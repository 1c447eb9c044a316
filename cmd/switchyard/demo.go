package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// runDemo starts a replication sandbox with Switchyard in front of it, prints
// how to connect, and tears everything down when ctx ends (Ctrl-C).
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchyard demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:6033", "SQL listen address")
	admin := fs.String("admin", "127.0.0.1:6034", "admin listen address")
	replicas := fs.Int("replicas", 2, "number of replicas")
	engine := fs.String("engine", sandbox.FlavorMariaDB, "database engine: mariadb (Debian's packages) or mysql (9.7, from the root filesystem scripts/mysql-rootfs.sh builds)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	name := map[string]string{sandbox.FlavorMariaDB: "MariaDB", sandbox.FlavorMySQL: "MySQL"}[*engine]
	if name == "" {
		fmt.Fprintf(stderr, "switchyard demo: -engine %q: want mariadb or mysql\n", *engine)
		return 2
	}
	fmt.Fprintf(stdout, "starting a %s primary and %d replicas...\n", name, *replicas)
	progress := &progressLines{w: stdout} // a line per step of the start
	sb, err := sandbox.Start(ctx, sandbox.Options{Engine: *engine, Replicas: *replicas, Log: progress})
	if err != nil {
		fmt.Fprintf(stderr, "switchyard demo: %v\n", err)
		return 1
	}
	defer sb.Close()

	cfg := config.Default()
	cfg.Listen = *listen
	cfg.Admin.Listen = *admin
	u := sb.Opts.Users[0]
	cfg.Users = []config.User{{Name: u.Name, Password: u.Password}}
	cfg.Monitor.User, cfg.Monitor.Password = sb.Opts.Monitor.Name, sb.Opts.Monitor.Password
	// Roles are left to the monitor, which elects the writable server: a
	// switchover can then move the primary.
	for _, srv := range sb.Servers() {
		cfg.Backends = append(cfg.Backends, config.Backend{Name: srv.Name, Address: srv.Addr(), Weight: 1})
	}
	cfg.Failover.User, cfg.Failover.Password = "root", sb.Opts.RootPassword
	cfg.Failover.ReplicationUser, cfg.Failover.ReplicationPassword = sandbox.ReplicationUser, sandbox.ReplicationPassword
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "switchyard demo: %v\n", err)
		return 1
	}
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	log := newLogger(cfg.Log, stderr)
	go func() { done <- serve(ctx, cfg, log, ready) }()
	select {
	case addr := <-ready:
		host, port, _ := net.SplitHostPort(addr.String())
		// --comments: the mariadb client strips comments, routing hints
		// included, unless told to keep them.
		fmt.Fprintf(stdout, "\nSwitchyard is listening on %s. Connect with:\n\n", addr)
		fmt.Fprintf(stdout, "  mariadb --comments -h%s -P%s -u%s -p%s\n\n", host, port, u.Name, u.Password)
		fmt.Fprintln(stdout, "Backends:")
		for _, srv := range sb.Servers() {
			fmt.Fprintf(stdout, "  %-8s %-8s %s  (server_id %d)  mariadb -h127.0.0.1 -P%d -u%s -p%s\n",
				srv.Name, srv.Role, srv.Addr(), srv.ServerID, srv.Port, u.Name, u.Password)
		}
		if cfg.Admin.Listen != "" {
			fmt.Fprintf(stdout, "\nMove the primary to a replica and back (writes wait a moment, nothing is lost):\n\n")
			fmt.Fprintf(stdout, "  switchyard switchover -admin %s [-to replica2]\n", dialable(cfg.Admin.Listen))
		}
		fmt.Fprintln(stdout, "\nPress Ctrl-C to stop and remove everything.")
	case err := <-done:
		fmt.Fprintf(stderr, "switchyard demo: %v\n", err)
		return 1
	}
	if err := <-done; err != nil {
		fmt.Fprintf(stderr, "switchyard demo: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "stopped; sandbox removed")
	return 0
}

// progressLines passes the sandbox's progress lines ("sandbox: ...") on to
// w, indented, and drops the servers' own logs, which stay in their data
// directories.
type progressLines struct {
	w       io.Writer
	partial []byte // a line without its newline yet
}

func (p *progressLines) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		line, rest, ok := bytes.Cut(p.partial, []byte("\n"))
		if !ok {
			break
		}
		if bytes.HasPrefix(line, []byte("sandbox: ")) {
			fmt.Fprintf(p.w, "  %s\n", line)
		}
		p.partial = rest
	}
	p.partial = append(p.partial[:0:0], p.partial...) // let the consumed bytes go
	return len(b), nil
}
