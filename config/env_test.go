package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpandString(t *testing.T) {
	env := map[string]string{"A": "alpha", "EMPTY": "", "N": "3"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in       string
		want     string
		problems []string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha"},
		{in: "x${A}y${N}z", want: "xalphay3z"},
		{in: "${EMPTY}", want: ""},
		{in: "${EMPTY:-def}", want: "def"},
		{in: "${MISSING:-def}", want: "def"},
		{in: "${MISSING:-}", want: ""},
		{in: "${A:-def}", want: "alpha"},
		{in: "${MISSING:-a:-b}", want: "a:-b"},
		{in: "$$", want: "$"},
		{in: "$${A}", want: "${A}"},
		{in: "$$$${A}", want: "$${A}"},
		{in: "$", want: "$"},
		{in: "a$b $1 $ ", want: "a$b $1 $ "},
		{in: "${MISSING}", problems: []string{"environment variable MISSING is not set"}},
		{in: "${M1}${M2}", problems: []string{"environment variable M1 is not set", "environment variable M2 is not set"}},
		{in: "${A", problems: []string{"unterminated ${ at byte 0 of the value"}},
		{in: "${a-b}", problems: []string{`invalid environment variable name "a-b" in "${a-b}"`}},
		{in: "${_ok9}", problems: []string{"environment variable _ok9 is not set"}},
	}
	for _, tt := range tests {
		got, problems := expandString(tt.in, lookup)
		if diff := cmp.Diff(tt.problems, problems); diff != "" {
			t.Errorf("expandString(%q) problems (-want +got):\n%s", tt.in, diff)
			continue
		}
		if len(problems) == 0 && got != tt.want {
			t.Errorf("expandString(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A value that expands to YAML syntax stays a plain string, and "$" in keys
// is never expanded (such a key is simply unknown).
func TestExpandIsScalarOnly(t *testing.T) {
	t.Setenv("SWITCHYARD_TEST_YAML", "{a: [1, 2]}\nlisten: x")
	unsetEnv(t, "SWITCHYARD_TEST_UNSET")
	cfg, err := Parse([]byte("users: [{name: app, password: \"${SWITCHYARD_TEST_YAML}\"}]\nbackends: [{address: \"h:1\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Users[0].Password; got != "{a: [1, 2]}\nlisten: x" {
		t.Errorf("password = %q, want the variable's text verbatim", got)
	}
	_, err = Parse([]byte("${SWITCHYARD_TEST_UNSET}: 1\n"))
	want := "${SWITCHYARD_TEST_UNSET}: unknown field (line 1)"
	if err == nil || err.Error() != want {
		t.Errorf("Parse($ key) = %v, want %q", err, want)
	}
}

// Expanded values that look like null or numbers keep their text in string
// fields.
func TestExpandKeepsStrings(t *testing.T) {
	t.Setenv("SWITCHYARD_TEST_P", "null")
	t.Setenv("SWITCHYARD_TEST_N", "007")
	cfg, err := Parse([]byte("users:\n- name: a\n  password: ${SWITCHYARD_TEST_P}\n- name: b\n  password: ${SWITCHYARD_TEST_N}\nbackends: [{address: \"h:1\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Users[0].Password != "null" || cfg.Users[1].Password != "007" {
		t.Errorf("passwords = %q, %q; want \"null\", \"007\"", cfg.Users[0].Password, cfg.Users[1].Password)
	}
}
