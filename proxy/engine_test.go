package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// Helpers for sandbox tests that run on either engine (SWITCHYARD_ENGINE).

// skipUnlessMariaDB skips a test, or a subtest, of a feature only MariaDB
// has, naming it.
func skipUnlessMariaDB(t *testing.T, sb *sandbox.Sandbox, feature string) {
	t.Helper()
	if sb.Flavor != sandbox.FlavorMariaDB {
		t.Skipf("%s is MariaDB's; the sandbox runs %s", feature, sb.Engine())
	}
}

// numbersTable makes table (db.name) hold the numbers 1 to n in its BIGINT
// column seq, as MariaDB's seq_1_to_n does, on the primary, and waits until
// the replicas have it.
func numbersTable(t *testing.T, sb *sandbox.Sandbox, table string, n int) {
	t.Helper()
	db, _, _ := strings.Cut(table, ".")
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("(%d)", i+1)
	}
	rootExec(t, sb, sb.Primary,
		"CREATE DATABASE IF NOT EXISTS "+db,
		"CREATE TABLE IF NOT EXISTS "+table+" (seq BIGINT PRIMARY KEY)",
		"INSERT IGNORE INTO "+table+" VALUES "+strings.Join(values, ", "))
	waitReplicated(t, sb)
}
