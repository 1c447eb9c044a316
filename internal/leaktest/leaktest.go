// Package leaktest finds goroutines of ours that outlive a test: a
// goroutine is ours when a frame of its stack, or the line that says who
// created it, is in a non-test file of this module under a directory. Files,
// not function names, decide: a goroutine a test starts is not a leak of
// ours unless it runs our code. The proxy and cmd tests use it in TestMain
// and around tests that must leave nothing behind.
package leaktest

import (
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// moduleRoot is the module's directory as stack traces spell file paths
// ("/src/switchyard/" or, with -trimpath, "github.com/switchyard-db/switchyard/").
var moduleRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return strings.TrimSuffix(file, filepath.Join("internal", "leaktest", "leaktest.go"))
}()

// Own returns the stacks of our goroutines other than the caller's. Only
// frames in files under the module's directory dir count: "" for the whole
// module, "proxy/" for the goroutines the proxy package runs or starts.
func Own(dir string) []string {
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
		if runsOwnCode(g, moduleRoot+dir) {
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

// Leaked waits up to wait for our goroutines under dir (see Own), other
// than the caller's, to end, and returns the stacks of those still running.
func Leaked(dir string, wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	for {
		left := Own(dir)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}
