package apps

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// root returns a root pool on srv.
func root(t *testing.T, sb *sandbox.Sandbox, srv *sandbox.Server) *sql.DB {
	t.Helper()
	db, err := sb.RootDB(srv)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// waitReplicated waits until the replicas have applied everything the
// primary has; it also works in a cleanup, after t's context is done.
func waitReplicated(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
	defer cancel()
	if err := sb.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
}

// createDatabase creates an empty database on the primary and waits until
// every replica has it.
func createDatabase(t *testing.T, sb *sandbox.Sandbox, name string) {
	t.Helper()
	db := root(t, sb, sb.Primary)
	for _, stmt := range []string{"DROP DATABASE IF EXISTS " + name, "CREATE DATABASE " + name} {
		if _, err := db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	waitReplicated(t, sb)
}

// queryInt runs a query that returns one integer.
func queryInt(t *testing.T, db *sql.DB, query string, args ...any) int64 {
	t.Helper()
	var n sql.NullInt64
	if err := db.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n.Int64
}

// stallReplicas makes every replica stop applying the primary's changes
// while both replication threads keep running (a global read lock held on
// it), so Switchyard keeps reading from them, and returns a function that
// lets them go on and waits until they have caught up. The test's cleanup
// lets them go too.
func stallReplicas(t *testing.T, sb *sandbox.Sandbox) (resume func()) {
	t.Helper()
	var releases []func() error
	for _, r := range sb.Replicas {
		release, err := sb.StallApplier(t.Context(), r)
		if err != nil {
			for _, rel := range releases {
				rel()
			}
			t.Fatalf("stall %s: %v", r.Name, err)
		}
		releases = append(releases, release)
	}
	resumed := false
	resume = func() {
		if resumed {
			return
		}
		resumed = true
		for _, release := range releases {
			if err := release(); err != nil {
				t.Errorf("%v", err)
			}
		}
		waitReplicated(t, sb)
	}
	t.Cleanup(resume)
	return resume
}

// comSelect reads every server's Com_select: the SELECT statements it has
// run, from any client (SHOW statements are not counted).
func comSelect(t *testing.T, sb *sandbox.Sandbox) map[*sandbox.Server]int64 {
	t.Helper()
	out := map[*sandbox.Server]int64{}
	for _, srv := range sb.Servers() {
		var name string
		var v int64
		err := root(t, sb, srv).QueryRowContext(t.Context(), "SHOW GLOBAL STATUS LIKE 'Com_select'").Scan(&name, &v)
		if err != nil {
			t.Fatalf("Com_select of %s: %v", srv.Name, err)
		}
		out[srv] = v
	}
	return out
}

// checkSelectCounters compares what the servers counted during a phase of
// reads with where the application says its reads ran. A server no read was
// expected on must have run no SELECT at all; the others at least as many as
// the reads reported there (the drivers add SELECTs of their own when they
// connect); and when several reads went to replicas, every replica took some.
func checkSelectCounters(t *testing.T, sb *sandbox.Sandbox, p placement, before, after map[*sandbox.Server]int64) {
	t.Helper()
	if p.want[onAny] != 0 {
		t.Errorf("%d reads of a phase of reads have no determined place; the phase cannot be checked", p.want[onAny])
	}
	delta := func(srv *sandbox.Server) int64 { return after[srv] - before[srv] }
	var deltas []string
	for _, srv := range sb.Servers() {
		deltas = append(deltas, fmt.Sprintf("%s %+d", srv.Name, delta(srv)))
	}
	t.Logf("Com_select during the phase: %s", strings.Join(deltas, ", "))

	if d := delta(sb.Primary); p.want[onPrimary] == 0 && d != 0 {
		t.Errorf("the primary ran %d SELECTs during a phase whose reads all belong on replicas", d)
	} else if d < int64(p.want[onPrimary]) {
		t.Errorf("the primary ran %d SELECTs, fewer than the %d reads reported there", d, p.want[onPrimary])
	}
	var sum int64
	for _, r := range sb.Replicas {
		d := delta(r)
		sum += d
		switch {
		case p.want[onReplica] == 0 && d != 0:
			t.Errorf("%s ran %d SELECTs during a phase whose reads all belong on the primary", r.Name, d)
		case p.want[onReplica] >= len(sb.Replicas) && d == 0:
			t.Errorf("%s ran no SELECT while %d reads went to replicas", r.Name, p.want[onReplica])
		case p.want[onReplica] >= len(sb.Replicas) && p.servers[r.ServerID] == 0:
			t.Errorf("no read reported %s's server_id %d while %d reads went to replicas", r.Name, r.ServerID, p.want[onReplica])
		}
	}
	if sum < int64(p.want[onReplica]) {
		t.Errorf("the replicas ran %d SELECTs, fewer than the %d reads reported there", sum, p.want[onReplica])
	}
}

// checkWrittenBy checks that every row of the tables, on every server, was
// written by the primary, and that every server has the same rows.
func checkWrittenBy(t *testing.T, sb *sandbox.Sandbox, db string, tables ...string) {
	t.Helper()
	for _, table := range tables {
		var want int64 = -1
		for _, srv := range sb.Servers() {
			rdb := root(t, sb, srv)
			total := queryInt(t, rdb, fmt.Sprintf("SELECT COUNT(*) FROM %s.%s", db, table))
			other := queryInt(t, rdb, fmt.Sprintf("SELECT COUNT(*) FROM %s.%s WHERE written_by <> ?", db, table),
				sb.Primary.ServerID)
			if other != 0 {
				t.Errorf("%s.%s on %s: %d of %d rows were not written by the primary (server_id %d)",
					db, table, srv.Name, other, total, sb.Primary.ServerID)
			}
			switch {
			case want < 0:
				want = total
				if total == 0 {
					t.Errorf("%s.%s on %s: no rows", db, table, srv.Name)
				}
			case total != want:
				t.Errorf("%s.%s: %s has %d rows, the primary %d", db, table, srv.Name, total, want)
			}
		}
	}
}

// checkSchema checks that every server has the tables and count triggers in db.
func checkSchema(t *testing.T, sb *sandbox.Sandbox, db string, tables []string, triggers int64) {
	t.Helper()
	for _, srv := range sb.Servers() {
		rdb := root(t, sb, srv)
		for _, table := range tables {
			n := queryInt(t, rdb, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
				db, table)
			if n != 1 {
				t.Errorf("%s: table %s.%s missing", srv.Name, db, table)
			}
		}
		if n := queryInt(t, rdb, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?", db); n != triggers {
			t.Errorf("%s: %d triggers in %s, want %d", srv.Name, n, db, triggers)
		}
	}
}

// checkInfo compares what an application reported (key) with what the
// primary holds (query).
func checkInfo(t *testing.T, sb *sandbox.Sandbox, rep *report, key, query string, args ...any) {
	t.Helper()
	want := queryInt(t, root(t, sb, sb.Primary), query, args...)
	got, ok := rep.Info[key]
	if !ok || got != want {
		t.Errorf("%s %s reported %s = %d (present %v), the primary has %d", rep.App, rep.Phase, key, got, ok, want)
	}
}
