package test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// TestMisroute's evidence: the traces a write leaves on the replica that ran
// it, what plain reads say about where reads go, and what the admin API
// says about writable replicas.

// replicaWrite is one trace of a write that ran on a replica. key stays
// the same while the trace does, so that each is reported once.
type replicaWrite struct{ key, msg string }

// replicaWrites lists the evidence of writes that ran on a replica:
//   - mr.audit rows a replica wrote itself, with its own server_id (rows
//     replicated from the primary carry the primary's);
//   - transactions a replica binlogged as its own (ownGTIDs);
//   - open transactions on a replica that changed rows, other than the
//     replication applier's: a write not committed (yet) leaves no other
//     trace.
func (m *misroute) replicaWrites(t testing.TB) []replicaWrite {
	t.Helper()
	var out []replicaWrite
	primaryID := strconv.Itoa(m.sb.Primary.ServerID)
	for _, r := range m.sb.Replicas {
		db := m.root(t, r)
		res, err := runSQL(db, stmtTimeout, "SELECT id, server_id, tbl, op, at FROM mr.audit WHERE server_id <> ? ORDER BY at, id", primaryID)
		if err != nil {
			t.Fatalf("read mr.audit on %s: %v", r.Name, err)
		}
		for _, row := range res.Rows {
			out = append(out, replicaWrite{
				key: r.Name + " audit " + row[0] + "-" + row[1],
				msg: fmt.Sprintf("%s wrote it itself: mr.audit row (id, server_id, tbl, op, at) = (%s)", r.Name, strings.Join(row, ", ")),
			})
		}
		own, state := m.ownGTIDs(t, r)
		for _, g := range own {
			out = append(out, replicaWrite{
				key: r.Name + " gtid " + g,
				msg: fmt.Sprintf("%s binlogged transactions of its own: %s (GTID state %s)", r.Name, g, state),
			})
		}
		res, err = runSQL(db, stmtTimeout, `SELECT x.trx_mysql_thread_id, x.trx_rows_modified, x.trx_started,
		    IFNULL(p.user, ''), IFNULL(x.trx_query, '')
		  FROM information_schema.innodb_trx x LEFT JOIN information_schema.processlist p ON p.id = x.trx_mysql_thread_id
		  WHERE x.trx_rows_modified > 0 AND IFNULL(p.user, '') <> 'system user'`)
		if err != nil {
			t.Fatalf("read open transactions on %s: %v", r.Name, err)
		}
		for _, row := range res.Rows {
			out = append(out, replicaWrite{
				key: r.Name + " trx " + row[0] + "-" + row[1],
				msg: fmt.Sprintf("%s has an open transaction that changed %s rows, not committed: thread %s of user %q, started %s, running %q",
					r.Name, row[1], row[0], row[3], row[2], row[4]),
			})
		}
	}
	return out
}

// noReplicaWrites fails t for every replica write not reported before.
func (m *misroute) noReplicaWrites(t testing.TB) {
	t.Helper()
	for _, w := range m.replicaWrites(t) {
		if !m.reported[w.key] {
			m.reported[w.key] = true
			t.Errorf("a write ran on a replica: %s", w.msg)
		}
	}
}

// plainRead runs an ordinary read in a fresh session and checks that a
// replica answered it: the suite must not pass by sending everything to the
// primary.
func (m *misroute) plainRead(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stmtTimeout)
	defer cancel()
	c, err := m.reads.Conn(ctx)
	if err != nil {
		t.Fatalf("connect through switchyard: %v", err)
	}
	defer c.Close()
	res, err := runSQL(c, stmtTimeout, "SELECT @@server_id, COUNT(*) FROM mr.t")
	if err != nil {
		t.Fatalf("plain read through switchyard: %v", err)
	}
	id, _ := strconv.Atoi(res.first())
	m.plainReads[id]++
	if !slices.ContainsFunc(m.sb.Replicas, func(r *sandbox.Server) bool { return r.ServerID == id }) {
		t.Errorf("a plain read (SELECT @@server_id, COUNT(*) FROM mr.t, in a fresh session) ran on server_id %d, want a replica", id)
	}
}

// dumpTable returns every row of mr.tbl on srv, ordered, as text.
func (m *misroute) dumpTable(t testing.TB, srv *sandbox.Server, tbl string) string {
	t.Helper()
	res, err := runSQL(m.root(t, srv), stmtTimeout, "SELECT * FROM mr.`"+tbl+"` ORDER BY 1, 2")
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, row := range res.Rows {
		b.WriteString(strings.Join(row, "\t"))
		b.WriteByte('\n')
	}
	return b.String()
}

// tables lists the tables, sequences and views of mr on srv, each as
// "name type".
func (m *misroute) tables(t testing.TB, srv *sandbox.Server) []string {
	t.Helper()
	res, err := runSQL(m.root(t, srv), stmtTimeout,
		"SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'mr' ORDER BY table_name")
	if err != nil {
		t.Fatalf("list tables on %s: %v", srv.Name, err)
	}
	var out []string
	for _, row := range res.Rows {
		out = append(out, row[0]+" "+row[1])
	}
	return out
}

// adminProblems lists what the admin API does not yet say about the
// writable replicas.
func (m *misroute) adminProblems() []string {
	var problems []string
	body, err := m.sy.adminGet("/api/backends")
	if err != nil {
		return []string{err.Error()}
	}
	var doc struct {
		Backends []map[string]json.RawMessage `json:"backends"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return []string{fmt.Sprintf("GET /api/backends: %v: %s", err, body)}
	}
	for _, r := range m.sb.Replicas {
		var entry map[string]json.RawMessage
		for _, b := range doc.Backends {
			var name string
			if json.Unmarshal(b["name"], &name) == nil && name == r.Name {
				entry = b
			}
		}
		if entry == nil {
			problems = append(problems, fmt.Sprintf("GET /api/backends has no entry for %s: %s", r.Name, body))
			continue
		}
		// proxy.BackendStatus.WritableBy, omitted when empty.
		raw, ok := entry["writable_by"]
		if !ok {
			raw = json.RawMessage("absent")
		}
		var users []string
		if ok {
			if err := json.Unmarshal(raw, &users); err != nil {
				problems = append(problems, fmt.Sprintf("GET /api/backends: %s's writable_by is %s, want a list of user names", r.Name, raw))
				continue
			}
		}
		if !slices.Contains(users, appUser.Name) {
			e, _ := json.Marshal(entry)
			problems = append(problems, fmt.Sprintf("GET /api/backends: %s's writable_by = %s, want it to list %q (the replica is writable); entry: %s",
				r.Name, raw, appUser.Name, e))
		}
	}
	metrics, err := m.sy.adminGet("/metrics")
	if err != nil {
		return append(problems, err.Error())
	}
	for _, r := range m.sb.Replicas {
		want := fmt.Sprintf(`switchyard_replica_writable{backend=%q,user=%q}`, r.Name, appUser.Name)
		value := ""
		for _, line := range strings.Split(string(metrics), "\n") {
			if name, rest, ok := strings.Cut(line, " "); ok && name == want {
				value = strings.TrimSpace(rest)
			}
		}
		if value != "1" {
			problems = append(problems, fmt.Sprintf("GET /metrics: %s is %q, want 1", want, value))
		}
	}
	return problems
}

// lineDiff returns the lines only in a and those only in b.
func lineDiff(a, b string) (onlyA, onlyB string) {
	count := map[string]int{}
	for _, l := range strings.SplitAfter(a, "\n") {
		count[l]++
	}
	for _, l := range strings.SplitAfter(b, "\n") {
		count[l]--
	}
	var x, y strings.Builder
	for _, l := range strings.SplitAfter(a, "\n") {
		if count[l] > 0 {
			x.WriteString("  " + l)
			count[l]--
		}
	}
	for _, l := range strings.SplitAfter(b, "\n") {
		if count[l] < 0 {
			y.WriteString("  " + l)
			count[l]++
		}
	}
	return x.String(), y.String()
}
