package oracle

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFindSuite(t *testing.T) {
	if _, err := FindSuite([]string{t.TempDir()}); !errors.Is(err, ErrNoSuite) {
		t.Errorf("FindSuite of an empty directory: %v, want ErrNoSuite", err)
	}
	dir := t.TempDir()
	for _, f := range []string{"main/a.test", "main/a.result", "suite/x/t/b.test"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := FindSuite([]string{filepath.Join(dir, "missing"), dir})
	if err != nil || got != dir {
		t.Fatalf("FindSuite = %q, %v; want %q", got, err, dir)
	}
	files, err := SuiteFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"main/a.test", "suite/x/t/b.test"}; !slices.Equal(files, want) {
		t.Errorf("SuiteFiles = %q, want %q", files, want)
	}
}

// TestSample checks that the sample is stable: a file's membership depends on
// its name alone.
func TestSample(t *testing.T) {
	var files []string
	for _, d := range []string{"main", "suite/innodb/t", "suite/rpl/t"} {
		for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
			files = append(files, d+"/"+n+".test")
		}
	}
	all := Sample(files, 1000)
	if len(all) != len(files) {
		t.Errorf("Sample(files, 1000) has %d files, want all %d", len(all), len(files))
	}
	half := Sample(files, 500)
	if len(half) == 0 || len(half) == len(files) {
		t.Errorf("Sample(files, 500) has %d of %d files", len(half), len(files))
	}
	fewer := Sample(files[:len(files)/2], 500)
	for _, f := range fewer {
		if !slices.Contains(half, f) {
			t.Errorf("%s is sampled from a part of the files but not from all of them", f)
		}
	}
}
