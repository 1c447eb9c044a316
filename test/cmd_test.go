package test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exitCode returns the exit status in err (0 for nil, -1 if it did not exit).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestVersionFlag(t *testing.T) {
	out, stderr, err := run(t, 10*time.Second, nil, switchyardBin, "-version")
	if err != nil || string(out) != "switchyard "+version+"\n" {
		t.Errorf("switchyard -version: %v, output %q, want %q\n%s", err, out, "switchyard "+version+"\n", stderr)
	}
}

func TestCheckConfig(t *testing.T) {
	good := filepath.Join("testdata", "check.good.yaml")
	bad := filepath.Join("testdata", "check.bad.yaml")
	missing := filepath.Join("testdata", "no-such-file.yaml")

	out, stderr, err := run(t, 10*time.Second, nil, switchyardBin, "check-config", good)
	if exitCode(err) != 0 || string(out) != good+": ok\n" {
		t.Errorf("check-config %s: exit %d, output %q, want 0 and %q\n%s", good, exitCode(err), out, good+": ok\n", stderr)
	}

	out, _, err = run(t, 10*time.Second, nil, switchyardBin, "check-config", bad)
	if exitCode(err) != 1 {
		t.Errorf("check-config %s: exit %d, want 1", bad, exitCode(err))
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	for _, path := range []string{"listen", "tls.mode", "users[0]", "users[1].name", "backends[0].address", "backends[1].role", "pool.max_open"} {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, bad+": "+path+": ")
		}
		if !found {
			t.Errorf("check-config %s does not report %s; output:\n%s", bad, path, out)
		}
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, bad+": ") {
			t.Errorf("check-config %s: line %q does not start with the file name", bad, l)
		}
	}

	out, _, err = run(t, 10*time.Second, nil, switchyardBin, "check-config", missing)
	if exitCode(err) != 1 || !strings.HasPrefix(string(out), missing+": ") || !strings.Contains(string(out), "no such file") {
		t.Errorf("check-config %s: exit %d, output %q; want 1 and a message about the missing file", missing, exitCode(err), out)
	}

	_, stderr, err = run(t, 10*time.Second, nil, switchyardBin, "check-config")
	if exitCode(err) != 2 || !strings.Contains(string(stderr), "usage") {
		t.Errorf("check-config without a file: exit %d, stderr %q; want 2 and a usage line", exitCode(err), stderr)
	}

	// Serving with the bad file fails at once and says why.
	_, stderr, err = run(t, 10*time.Second, nil, switchyardBin, "-config", bad)
	if exitCode(err) != 1 || !strings.Contains(string(stderr), "backends[0].address") {
		t.Errorf("switchyard -config %s: exit %d, stderr %q; want 1 naming the problems", bad, exitCode(err), stderr)
	}
}
