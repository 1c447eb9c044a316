package apps

import (
	"testing"

	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// TestFlask runs the Flask + SQLAlchemy inventory service (flask_app/) with
// Flask's test client through Switchyard under each routing configuration:
// schema setup, then one session of requests that write and read back, then a
// fresh session of requests that only read. PyMySQL runs with autocommit off,
// so implicit_transactions decides whether its reads may use replicas.
func TestFlask(t *testing.T) {
	sb := sandboxtest.Require(t)
	requirePython(t, []string{"flask", "sqlalchemy", "pymysql"},
		[]string{"python3-flask", "python3-sqlalchemy", "python3-pymysql"})
	for _, r := range routings {
		t.Run(r.Name, func(t *testing.T) {
			db := "flask_" + r.Name
			createDatabase(t, sb, db)
			sy := startSwitchyard(t, sb, r)
			env := appEnv{Proxy: sy, DB: db, Run: r.Name}

			mark := markLogs(t, sb)
			rep := runApp(t, "flask_app", "setup", env)
			checkReads(t, sb, r, rep)
			checkLogs(t, sb, mark, `(?is)^\s*CREATE TABLE items`, `(?is)^CREATE TRIGGER IF NOT EXISTS counters_bu `)
			waitReplicated(t, sb)
			checkSchema(t, sb, db, []string{"items", "counters"}, 4)
			if t.Failed() {
				return
			}

			var resume func()
			if r.Stalled {
				resume = stallReplicas(t, sb)
			}
			mark = markLogs(t, sb)
			rep = runApp(t, "flask_app", "app", env)
			checkReads(t, sb, r, rep)
			checkLogs(t, sb, mark,
				`(?is)^SELECT .* FOR UPDATE$`, `(?is)^SAVEPOINT sa_savepoint_\d+$`,
				`(?is)^ROLLBACK TO SAVEPOINT sa_savepoint_\d+$`, `(?is)^RELEASE SAVEPOINT sa_savepoint_\d+$`,
				`(?is)^INSERT INTO items \(name, qty, written_by\) VALUES \(.*\),\(`, `(?is)^COMMIT$`)
			if r.Stalled {
				for _, rp := range sb.Replicas {
					if n := queryInt(t, root(t, sb, rp), "SELECT COUNT(*) FROM "+db+".items"); n != 0 {
						t.Errorf("%s applied %d of the session's rows while stalled: the test proves nothing", rp.Name, n)
					}
				}
				resume()
			}
			waitReplicated(t, sb)
			checkWrittenBy(t, sb, db, "items", "counters")
			if r.Stalled {
				return // reads of a fresh session do not depend on the replicas' delay
			}

			before := comSelect(t, sb)
			rep = runApp(t, "flask_app", "reads", env)
			after := comSelect(t, sb)
			checkSelectCounters(t, sb, checkReads(t, sb, r, rep), before, after)
			prefix := r.Name + "-%"
			checkInfo(t, sb, rep, "items", "SELECT COUNT(*) FROM "+db+".items WHERE name LIKE ?", prefix)
			checkInfo(t, sb, rep, "qty", "SELECT SUM(qty) FROM "+db+".items WHERE name LIKE ?", prefix)
			checkInfo(t, sb, rep, "counter", "SELECT value FROM "+db+".counters WHERE name = ?", r.Name+"-hits")
		})
	}
}
