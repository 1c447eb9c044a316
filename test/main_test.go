// Package test holds Switchyard's end-to-end client compatibility tests: real
// clients (the mariadb CLI, go-sql-driver/mysql, PyMySQL and mysqlclient)
// talk to a real switchyard process in front of the replication sandbox, and
// what they see is compared byte for byte with the same statements run
// directly against the primary.
//
// Run them with
//
//	go test ./test/ -count=1 -v
//
// The tests skip when the MariaDB server or a client is not installed, unless
// SWITCHYARD_REQUIRE_SANDBOX=1, which turns every such skip into a failure.
package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// Accounts on the sandbox (and so on every backend). Switchyard knows app and
// other by cleartext password and hashed only by its mysql_native_password
// hash, which exercises caching_sha2_password full authentication. On MySQL,
// whose accounts are all caching_sha2_password, hashed gets in only when its
// client's login reveals the password (hashed_test.go).
var (
	appUser    = sandbox.User{Name: "app", Password: "app-secret"}
	otherUser  = sandbox.User{Name: "other", Password: "other-secret"}
	hashedUser = sandbox.User{Name: "hashed", Password: "hashed-Secret-7"}
)

// version is stamped into the test binary so that -version can be checked.
const version = "e2e-1.2.3"

// switchyardBin is the switchyard executable TestMain builds.
var switchyardBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "switchyard-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	workDir = dir
	switchyardBin = filepath.Join(dir, "switchyard")
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", switchyardBin,
		"github.com/switchyard-db/switchyard/cmd/switchyard")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build switchyard: %v\n%s", err, out)
		return 1
	}
	return sandboxtest.Main(m, sandbox.Options{
		Replicas: 1,
		Users:    []sandbox.User{appUser, otherUser, hashedUser},
	})
}

// workDir is a directory shared by the whole test binary (certificates, keys).
var workDir string
