package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// relayCommand is the hidden first argument that turns this binary into the bare relay.
const relayCommand = "__relay"

// relayMain is the bare relay: it listens on 127.0.0.1, prints "listening ADDR" on
// stdout, and copies bytes both ways between each client and -target until stdin is
// closed (the parent's way of stopping it). It knows nothing of MySQL, so it measures
// the cost of one extra TCP hop alone. io.Copy between two TCP connections uses
// splice(2) on Linux, the cheapest relay Go offers.
func relayMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(relayCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "", "host:port to relay to")
	if err := fs.Parse(args); err != nil || *target == "" {
		fmt.Fprintln(stderr, "usage: bench __relay -target host:port")
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
	go func() {
		io.Copy(io.Discard, stdin)
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0
			}
			fmt.Fprintf(stderr, "relay: accept: %v\n", err)
			return 1
		}
		wg.Go(func() { relayConn(c, *target, stderr) })
	}
}

// relayConn copies between c and a new connection to target, half-closing each side
// when the other ends. It closes c.
func relayConn(c net.Conn, target string, stderr io.Writer) {
	defer c.Close()
	b, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v\n", err)
		return
	}
	defer b.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done
	<-done
}

// startRelay runs the bare relay to target as a subprocess of this binary.
func startRelay(ctx context.Context, target string, logPath string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	cmd := exec.Command(exe, relayCommand, "-target", target)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	ch, err := startChild(cmd, "relay", logPath)
	if err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-lines:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
		if !ok {
			ch.Stop()
			return nil, fmt.Errorf("start relay: unexpected output %q; log:\n%s", line, ch.LogTail(10))
		}
		ch.Addr = addr
		return ch, nil
	case <-ctx.Done():
		ch.Stop()
		return nil, fmt.Errorf("start relay: %w", ctx.Err())
	case <-time.After(10 * time.Second):
		ch.Stop()
		return nil, errors.New("start relay: no address within 10s")
	}
}
