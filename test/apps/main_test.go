// Package apps runs real applications through Switchyard: a Django project
// (python3-django over mysqlclient) and a Flask + SQLAlchemy service (over
// PyMySQL), with their database settings pointed at a switchyard process in
// front of the replication sandbox.
//
// The applications (django_app/, flask_app/) print a JSON report of what they
// did: every read selects @@server_id in the same statement, triggers stamp
// every written row with the @@server_id of the server that wrote it, and the
// applications check that each session reads back what it wrote. The tests
// add what the servers themselves saw: their general logs (which statements
// reached which server) and their Com_select counters.
//
// Run them with
//
//	go test ./test/apps/ -count=1 -v
//
// They skip when MariaDB or a Python package is missing, unless
// SWITCHYARD_REQUIRE_SANDBOX=1 turns every such skip into a failure.
package apps

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// switchyardBin is the switchyard executable TestMain builds.
var switchyardBin string

// appUser is the account the applications log in with, through Switchyard
// and so on every backend.
var appUser = sandbox.User{Name: "app", Password: "app-secret"}

// generalLog is each server's general log, relative to its data directory.
const generalLog = "general.log"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "switchyard-apps-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "apps: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	switchyardBin = filepath.Join(dir, "switchyard")
	build := exec.Command("go", "build", "-o", switchyardBin, "github.com/switchyard-db/switchyard/cmd/switchyard")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "apps: build switchyard: %v\n%s", err, out)
		return 1
	}
	return sandboxtest.Main(m, sandbox.Options{
		Users: []sandbox.User{appUser},
		// Every statement every server runs, from the start: the tests read
		// which statements reached which server.
		ExtraConfig: []string{"general_log=1", "general_log_file=" + generalLog},
	})
}
