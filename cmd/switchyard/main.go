// Command switchyard is a MySQL-aware read/write-split proxy.
//
//	switchyard -config switchyard.yaml   run the proxy until SIGINT/SIGTERM
//	switchyard check-config FILE         validate a config file
//	switchyard sandbox [flags]           run a local MariaDB replication sandbox
//	switchyard demo                      run a sandbox with Switchyard in front of it
//	switchyard switchover [-to BACKEND]  move the primary role (asks the running switchyard)
//	switchyard -version                  print the version
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "check-config":
			if len(args) != 2 {
				fmt.Fprintln(stderr, "usage: switchyard check-config FILE")
				return 2
			}
			return config.CheckFile(args[1], stdout)
		case "sandbox":
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return sandbox.RunCLI(ctx, args[1:], stdout, stderr)
		case "switchover":
			return runSwitchover(args[1:], stdout, stderr)
		case "demo":
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("switchyard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "switchyard.yaml", "configuration file")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "switchyard %s\n", version)
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		for _, p := range configProblems(err) {
			fmt.Fprintf(stderr, "switchyard: %s: %s\n", *cfgPath, p)
		}
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serveFile(ctx, *cfgPath, cfg, log, nil); err != nil {
		log.Error("switchyard stopped", "err", err)
		return 1
	}
	return 0
}

// newLogger builds the process logger from the log section.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
