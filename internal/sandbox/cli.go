package sandbox

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// RunCLI implements `switchyard sandbox`: it parses args, starts a sandbox, prints how to
// reach each server, waits until ctx is cancelled and tears the sandbox down. It also
// stops on SIGINT or SIGTERM itself, so the sandbox goes away even if the caller does
// not cancel. It returns the process exit status: 0 after a clean teardown, 1 if the
// sandbox failed, 2 for bad usage.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchyard sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: switchyard sandbox [flags]\n\n"+
			"Starts a local MariaDB or MySQL primary with GTID replicas for trying Switchyard\nout, "+
			"and removes it again on Ctrl-C.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	engine := fs.String("engine", FlavorMariaDB, "database engine: mariadb (Debian's packages) or mysql (9.7, from the root filesystem scripts/mysql-rootfs.sh builds)")
	replicas := fs.Int("replicas", defaultReplicas, "number of replicas (0 for a lone primary)")
	baseDir := fs.String("base-dir", "", "parent directory of the sandbox's data (default: the system temp dir)")
	bufferPool := fs.String("buffer-pool", defaultBufferPool, "innodb_buffer_pool_size of every server")
	verbose := fs.Bool("v", false, "copy server logs and progress to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "switchyard sandbox: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		fs.Usage()
		return 2
	}
	opts := Options{Engine: *engine, Replicas: *replicas, NoReplicas: *replicas == 0, BaseDir: *baseDir, BufferPool: *bufferPool}
	if *verbose {
		opts.Log = stderr
	}
	if _, err := opts.withDefaults(); err != nil {
		fmt.Fprintf(stderr, "switchyard sandbox: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sb, err := Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "switchyard sandbox: %v\n", err)
		return 1
	}
	printSummary(stdout, sb)
	<-ctx.Done()
	fmt.Fprintln(stdout, "Stopping the sandbox.")
	if err := sb.Close(); err != nil {
		fmt.Fprintf(stderr, "switchyard sandbox: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "Sandbox removed.")
	return 0
}

// printSummary writes the topology and ready-to-paste client commands.
func printSummary(w io.Writer, sb *Sandbox) {
	o := sb.Opts
	fmt.Fprintf(w, "%s %s sandbox ready in %s (data in %s)\n\n", flavorTitle(sb.Flavor), sb.Version,
		sb.StartupTime.Round(time.Millisecond), sb.Dir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tADDRESS\tSERVER_ID")
	for _, srv := range sb.Servers() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", srv.Name, srv.Role, srv.Addr(), srv.ServerID)
	}
	tw.Flush()

	for _, u := range o.Users {
		fmt.Fprintf(w, "\nConnect as %s:\n", u.Name)
		for _, srv := range sb.Servers() {
			fmt.Fprintf(w, "  %-9s %s\n", srv.Name, clientCommand(srv, u.Name, u.Password))
		}
	}
	fmt.Fprintf(w, "\nAs root:     %s\n", clientCommand(sb.Primary, "root", o.RootPassword))
	fmt.Fprintf(w, "Monitor user: %s / %s    replication user: %s / %s\n",
		o.Monitor.Name, o.Monitor.Password, ReplicationUser, ReplicationPassword)
	fmt.Fprintf(w, "\nPress Ctrl-C to stop and remove the sandbox.\n")
}

func clientCommand(srv *Server, user, password string) string {
	return "mariadb -h127.0.0.1 -P" + strconv.Itoa(srv.Port) + " " +
		shellQuote("-u"+user) + " " + shellQuote("-p"+password)
}

// shellQuote quotes s for a POSIX shell unless it is plainly safe.
func shellQuote(s string) string {
	safe := s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.,:/@=+", r))
	}) < 0
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func flavorTitle(name string) string {
	if name == FlavorMariaDB {
		return "MariaDB"
	}
	return "MySQL"
}
