package test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// What TestMisroute does differently on MariaDB and MySQL: how replicas are
// made writable for the app user, and how a replica's own transactions show
// in its GTID state. The attacks themselves are the same on both engines
// unless the syntax exists on one only (the subtests say so where they skip).

// mysql reports whether the sandbox runs MySQL.
func (m *misroute) mysql() bool { return m.sb.Flavor == sandbox.FlavorMySQL }

// makeReplicasWritable clears every read-only setting on the replicas
// (read_only on MariaDB; read_only and super_read_only on MySQL, whose
// replicas the sandbox starts with super_read_only=1), and gives the app user
// back the privileges that bypass read_only, which the sandbox revokes from
// application users: READ ONLY ADMIN on MariaDB, CONNECTION_ADMIN and SUPER on
// MySQL. Then not even read_only could stop a misrouted write.
func (m *misroute) makeReplicasWritable(t *testing.T) {
	d := m.sb.Dialect()
	for _, r := range m.sb.Replicas {
		if _, err := runSQL(m.root(t, r), stmtTimeout, d.SetWritable); err != nil {
			t.Fatalf("%s on %s: %v", d.SetWritable, r.Name, err)
		}
	}
	privs := []string{d.ReadOnlyBypass}
	if m.mysql() {
		// Deprecated, and gone in some MySQL releases: a failure is logged.
		privs = append(privs, "SUPER")
	}
	for _, p := range privs {
		// On the primary: the grant replicates.
		if _, err := runSQL(m.root(t, m.sb.Primary), stmtTimeout, "GRANT "+p+" ON *.* TO 'app'@'%'"); err != nil {
			t.Logf("GRANT %s: %v (the replicas are writable all the same: %s)", p, err, d.SetWritable)
		}
	}
	if m.mysql() {
		// A replica's own transactions carry its own server_uuid and do not
		// disturb auto-positioned replication of the primary's.
		return
	}
	// Local transactions of a MariaDB replica get a domain of their own: a
	// misrouted write then leaves its GTID as evidence without breaking
	// gtid_strict_mode replication of the primary's domain 0, so later
	// subtests still run against replicating replicas.
	for _, r := range m.sb.Replicas {
		if _, err := runSQL(m.root(t, r), stmtTimeout, fmt.Sprintf("SET GLOBAL gtid_domain_id = %d", r.ServerID)); err != nil {
			t.Fatalf("gtid_domain_id on %s: %v", r.Name, err)
		}
	}
}

// ownGTIDs returns the GTIDs (or GTID ranges) of transactions srv binlogged
// as its own, not replicated from the primary. MariaDB keeps the last GTID
// of every domain and server in gtid_binlog_state; a replicated transaction
// keeps the primary's server_id. MySQL's gtid_executed holds every
// transaction as source_uuid:intervals; a replicated one keeps the primary's
// server_uuid. It also returns the state it read, for messages.
func (m *misroute) ownGTIDs(t testing.TB, srv *sandbox.Server) (own []string, state string) {
	t.Helper()
	if m.mysql() {
		state = m.rootValue(t, srv, "SELECT @@GLOBAL.gtid_executed")
		for _, g := range strings.Split(state, ",") {
			g = strings.TrimSpace(g)
			if uuid, _, ok := strings.Cut(g, ":"); ok && uuid != m.primaryUUID {
				own = append(own, g)
			}
		}
		return own, state
	}
	state = m.rootValue(t, srv, "SELECT @@GLOBAL.gtid_binlog_state")
	primaryID := fmt.Sprint(m.sb.Primary.ServerID)
	for _, g := range strings.Split(state, ",") {
		g = strings.TrimSpace(g)
		if parts := strings.Split(g, "-"); len(parts) == 3 && parts[1] != primaryID {
			own = append(own, g)
		}
	}
	return own, state
}

// txReadOnlyVar is the session variable that makes transactions read-only:
// MariaDB 10.11 knows it as tx_read_only, MySQL 8.0 renamed it
// transaction_read_only and 8.0.3 dropped the old name.
func (m *misroute) txReadOnlyVar() string {
	if m.mysql() {
		return "transaction_read_only"
	}
	return "tx_read_only"
}
