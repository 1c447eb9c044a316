package config

import (
	"strings"
	"testing"
)

func TestCheckFile(t *testing.T) {
	setTestEnv(t)
	tests := []struct {
		path string
		code int
		out  string
	}{
		{"testdata/minimal.good.yaml", 0, "testdata/minimal.good.yaml: ok\n"},
		{"testdata/pool.bad.yaml", 1, "testdata/pool.bad.yaml: pool.max_open: must be at least 1, got 0\n" +
			"testdata/pool.bad.yaml: pool.max_idle: must not exceed pool.max_open (16 > 0)\n"},
		{"testdata/syntax.bad.yaml", 1, "testdata/syntax.bad.yaml: yaml: line 5: found a tab character that violates indentation\n"},
		{"testdata/absent.yaml", 1, "testdata/absent.yaml: read config: open testdata/absent.yaml: no such file or directory\n"},
	}
	for _, tt := range tests {
		var out strings.Builder
		code := CheckFile(tt.path, &out)
		if code != tt.code || out.String() != tt.out {
			t.Errorf("CheckFile(%q) = %d, %q; want %d, %q", tt.path, code, out.String(), tt.code, tt.out)
		}
	}
}
