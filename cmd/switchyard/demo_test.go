package main

import (
	"strings"
	"testing"
)

// TestDemoProgressLines checks the demo's filter over the sandbox log: its
// progress lines pass, whole and indented, however they are split; the
// servers' logs do not.
func TestDemoProgressLines(t *testing.T) {
	var out strings.Builder
	p := &progressLines{w: &out}
	for _, chunk := range []string{"sandbox: initialised template ", "datadir in 3s\n[primary] 2026-12-06 InnoDB: ",
		"started\nsandbox: started 3 servers in 2s\n", "sandbox: unfinished"} {
		if n, err := p.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v, want %d, nil", chunk, n, err, len(chunk))
		}
	}
	want := "  sandbox: initialised template datadir in 3s\n  sandbox: started 3 servers in 2s\n"
	if got := out.String(); got != want {
		t.Errorf("progress output %q, want %q", got, want)
	}
}
