package main

import (
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Goroutine-leak checks. A goroutine is ours when a frame of its stack, or
// the line that says who created it, is in a non-test file of this module:
// this command, proxy, replication, config, router, the sandbox. Files, not
// function names, decide: a goroutine the tests start is not a leak of ours
// unless it runs our code.

// moduleRoot is the module's directory as stack traces spell file paths
// ("/src/switchyard/" or, with -trimpath, "github.com/switchyard-db/switchyard/").
var moduleRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return strings.TrimSuffix(file, filepath.Join("cmd", "switchyard", "leak_test.go"))
}()

// ownGoroutines returns the stacks of our goroutines other than the
// caller's. Only frames in files under moduleRoot+under count: "" for the
// whole module, "cmd/switchyard/" for the goroutines this command starts.
func ownGoroutines(under string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := strings.Split(string(buf), "\n\n")
	var out []string
	for _, g := range stacks[1:] { // the first is the caller's
		if runsOwnCode(g, moduleRoot+under) {
			out = append(out, g)
		}
	}
	return out
}

// runsOwnCode reports whether a frame of stack g is in a non-test file
// under dir. Frame file lines look like "\t/dir/file.go:12 +0x1f".
func runsOwnCode(g, dir string) bool {
	for line := range strings.SplitSeq(g, "\n") {
		file, ok := strings.CutPrefix(line, "\t"+dir)
		if !ok {
			continue
		}
		if i := strings.LastIndexByte(file, ':'); i >= 0 {
			file = file[:i]
		}
		if !strings.HasSuffix(file, "_test.go") {
			return true
		}
	}
	return false
}

// leakedGoroutines waits up to wait for our goroutines, other than the
// caller's, to end, and returns the stacks of those still running.
func leakedGoroutines(wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		left := ownGoroutines("")
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}
