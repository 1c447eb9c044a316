package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestBinaryLinksNoTestCode checks that the shipped binary links neither the
// testing package nor test helpers: the sandbox it runs for `sandbox` and
// `demo` is a library (internal/sandbox), and test harnesses live apart.
func TestBinaryLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if slices.Contains(deps, "testing") {
		t.Errorf("cmd/switchyard links the testing package")
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/switchyard-db/switchyard/test") {
			t.Errorf("cmd/switchyard links test code: %s", d)
		}
	}
}
