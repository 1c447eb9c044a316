package config

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Every testdata/*.good.yaml must load. Every testdata/*.bad.yaml must fail,
// and lists the exact lines of the error it must produce in "# want: " comment
// lines, in order. Files are loaded with Load("testdata/NAME"), so relative
// key paths resolve against testdata/ and appear that way in messages.
func TestTestdata(t *testing.T) {
	setTestEnv(t)
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var good, bad int
	for _, file := range files {
		switch {
		case strings.HasSuffix(file, ".good.yaml"):
			good++
			t.Run(filepath.Base(file), func(t *testing.T) {
				if _, err := Load(file); err != nil {
					t.Errorf("Load(%q) = %v, want no error", file, err)
				}
			})
		case strings.HasSuffix(file, ".bad.yaml"):
			bad++
			t.Run(filepath.Base(file), func(t *testing.T) { testBad(t, file) })
		default:
			t.Errorf("%s: name must end in .good.yaml or .bad.yaml", file)
		}
	}
	if good < 5 || bad < 15 {
		t.Errorf("found %d good and %d bad files, want at least 5 and 15", good, bad)
	}
}

func testBad(t *testing.T, file string) {
	want := wantLines(t, file)
	cfg, err := Load(file)
	if err == nil {
		t.Fatalf("Load(%q) = %+v, want errors:\n%s", file, cfg, strings.Join(want, "\n"))
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load(%q) error is %T, want Errors: %v", file, err, err)
	}
	if cfg != nil {
		t.Errorf("Load(%q) returned a config with its error", file)
	}
	got := strings.Split(err.Error(), "\n")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(%q) errors (-want +got):\n%s", file, diff)
	}
}

// wantLines returns the messages of the "# want: " lines of file.
func wantLines(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if msg, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
			want = append(want, msg)
		}
	}
	if len(want) == 0 {
		t.Fatalf("%s has no \"# want: \" lines", file)
	}
	return want
}

// setTestEnv gives the SWITCHYARD_TEST_* variables the testdata files use a
// known state for the duration of the test.
func setTestEnv(t *testing.T) {
	t.Helper()
	t.Setenv("SWITCHYARD_TEST_SET", "from-env")
	for _, name := range []string{"UNSET", "USER", "HOST", "PORT", "WEIGHT", "SIZE"} {
		unsetEnv(t, "SWITCHYARD_TEST_"+name)
	}
}

// unsetEnv removes name from the environment until the test ends.
func unsetEnv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // restores the old value at cleanup
	os.Unsetenv(name)
}
