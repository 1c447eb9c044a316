package oracle

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SuiteDirs are where distributions install MariaDB's mysql-test suite: Debian's
// mariadb-test-data package (pulled in by mariadb-test) first.
var SuiteDirs = []string{"/usr/share/mysql/mysql-test", "/usr/share/mariadb/mysql-test", "/usr/share/mysql-test"}

// ErrNoSuite means no mysql-test suite is installed.
var ErrNoSuite = errors.New("no mysql-test suite (install the Debian package mariadb-test)")

// FindSuite returns the first directory of dirs that holds a mysql-test suite.
func FindSuite(dirs []string) (string, error) {
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "main")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: looked in %s", ErrNoSuite, strings.Join(dirs, ", "))
}

// SuiteFiles returns the .test files under dir, as sorted slash-separated paths
// relative to it.
func SuiteFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".test") {
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(out)
	return out, nil
}

// Sample returns the files whose name hashes into the first perMille of 1000
// buckets: a fixed sample that keeps its members when files are added or removed.
func Sample(files []string, perMille uint32) []string {
	var out []string
	for _, f := range files {
		h := fnv.New32a()
		h.Write([]byte(f))
		if h.Sum32()%1000 < perMille {
			out = append(out, f)
		}
	}
	return out
}

// MysqltestLoader loads dir/rel, a mysqltest file. Its session starts in latin1,
// mysqltest's character set.
func MysqltestLoader(dir, rel string) Loader {
	return Loader{Name: rel, Load: func() (Script, error) {
		src, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			return Script{}, err
		}
		x, err := ExtractMysqltest(src)
		if err != nil {
			return Script{}, err
		}
		return Script{Name: rel, Statements: x.Statements, LeftOut: x.LeftOut, Charset: "latin1"}, nil
	}}
}

// GoldenLoader loads a classification golden table (see ExtractGolden); name is
// how reports call it.
func GoldenLoader(path, name string) Loader {
	return Loader{Name: name, Load: func() (Script, error) {
		src, err := os.ReadFile(path)
		if err != nil {
			return Script{}, err
		}
		st, err := ExtractGolden(src)
		if err != nil {
			return Script{}, err
		}
		return Script{Name: name, Statements: st}, nil
	}}
}

// SQLScriptLoader loads a script for the mariadb command-line client (see
// ExtractSQLScript). Every placeholder in it is replaced by the script's database
// name.
func SQLScriptLoader(path, name, placeholder string) Loader {
	return Loader{Name: name, Load: func() (Script, error) {
		src, err := os.ReadFile(path)
		if err != nil {
			return Script{}, err
		}
		st, err := ExtractSQLScript(src)
		if err != nil {
			return Script{}, err
		}
		return Script{Name: name, Statements: st, Placeholder: placeholder}, nil
	}}
}
