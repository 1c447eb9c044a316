package sandbox

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dirPrefix starts every sandbox directory name, followed by the owner's PID and a
// random suffix: "switchyard-sandbox-4242-123456".
const dirPrefix = "switchyard-sandbox-"

// removeStale deletes sandbox directories under base whose owning process is gone,
// left by a process that was killed before it could Close. Any server still running
// from such a directory is killed first.
func removeStale(base string, log *logSink) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := ownerPID(e.Name())
		if !ok || !e.IsDir() || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		killServersIn(dir)
		if err := os.RemoveAll(dir); err != nil {
			log.printf("remove stale %s: %v", dir, err)
			continue
		}
		log.printf("removed stale %s (owner pid %d is gone)", dir, pid)
	}
}

// ownerPID parses the owner PID from a sandbox directory name.
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, dirPrefix)
	if !ok {
		return 0, false
	}
	pidText, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidText)
	return pid, err == nil && pid > 0
}

// processAlive reports whether pid exists (EPERM: it exists but belongs to someone else).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// killServersIn kills servers whose pid file is in dir's server directories, checking
// /proc first so a recycled PID of an unrelated process is left alone.
func killServersIn(dir string) {
	pidFiles, _ := filepath.Glob(filepath.Join(dir, "*", "mariadbd.pid"))
	for _, f := range pidFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(filepath.Dir(f))) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
