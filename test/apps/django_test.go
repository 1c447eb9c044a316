package apps

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// TestDjango runs the Django shop (django_app/run.py) through Switchyard
// under each routing configuration: migrations, then one session of CRUD,
// transactions with savepoints, row locks, bulk operations and raw SQL, then a
// fresh session that only reads.
func TestDjango(t *testing.T) {
	sb := sandboxtest.Require(t)
	requirePython(t, []string{"django", "MySQLdb"}, []string{"python3-django", "python3-mysqldb"})
	for _, r := range routings {
		t.Run(r.Name, func(t *testing.T) {
			db := "django_" + r.Name
			createDatabase(t, sb, db)
			sy := startSwitchyard(t, sb, r)
			env := appEnv{Proxy: sy, DB: db, Run: r.Name}

			mark := markLogs(t, sb)
			rep := runApp(t, "django_app", "migrate", env)
			checkReads(t, sb, r, rep)
			checkLogs(t, sb, mark, `(?is)^CREATE TABLE .django_migrations.`, `(?is)^CREATE TRIGGER shop_order_bu `,
				`(?is)^ALTER TABLE .shop_order. ADD CONSTRAINT`)
			waitReplicated(t, sb)
			checkSchema(t, sb, db, []string{"django_migrations", "auth_user", "shop_customer", "shop_order"}, 4)
			if t.Failed() {
				return
			}

			var resume func()
			if r.Stalled {
				resume = stallReplicas(t, sb)
			}
			mark = markLogs(t, sb)
			rep = runApp(t, "django_app", "crud", env)
			checkReads(t, sb, r, rep)
			// Django's bulk_create asks MariaDB for the new ids with
			// RETURNING; MySQL has none, and gets one multi-row INSERT.
			bulkInsert := `(?is)^INSERT INTO .shop_order. .* RETURNING `
			if sb.Flavor == sandbox.FlavorMySQL {
				bulkInsert = `(?is)^INSERT INTO .shop_order. \(.*\) VALUES \(.*'bulk-0'.*\), \(.*'bulk-99'`
			}
			checkLogs(t, sb, mark,
				`(?is)^SELECT .* FOR UPDATE$`, `(?is)^SELECT .* FOR UPDATE NOWAIT$`,
				`(?is)^SAVEPOINT `, `(?is)^ROLLBACK TO SAVEPOINT `, `(?is)^RELEASE SAVEPOINT `,
				bulkInsert, `(?is)^UPDATE .shop_order. SET .qty. = CASE WHEN`,
				`(?is)^INSERT INTO shop_customer \(name, balance, written_by\) VALUES`)
			if r.Stalled {
				prefix := r.Name + "-%"
				for _, rp := range sb.Replicas {
					if n := queryInt(t, root(t, sb, rp), "SELECT COUNT(*) FROM "+db+".shop_customer WHERE name LIKE ?", prefix); n != 0 {
						t.Errorf("%s applied %d of the session's rows while stalled: the test proves nothing", rp.Name, n)
					}
				}
				resume()
			}
			waitReplicated(t, sb)
			checkWrittenBy(t, sb, db, "shop_customer", "shop_order")
			if r.Stalled {
				return // reads of a fresh session do not depend on the replicas' delay
			}

			before := comSelect(t, sb)
			rep = runApp(t, "django_app", "reads", env)
			after := comSelect(t, sb)
			checkSelectCounters(t, sb, checkReads(t, sb, r, rep), before, after)
			prefix := r.Name + "-%"
			checkInfo(t, sb, rep, "customers", "SELECT COUNT(*) FROM "+db+".shop_customer WHERE name LIKE ?", prefix)
			checkInfo(t, sb, rep, "balance", "SELECT SUM(balance) FROM "+db+".shop_customer WHERE name LIKE ?", prefix)
			checkInfo(t, sb, rep, "orders", "SELECT COUNT(*) FROM "+db+".shop_order o JOIN "+db+
				".shop_customer c ON c.id = o.customer_id WHERE c.name LIKE ?", prefix)
			checkInfo(t, sb, rep, "qty", "SELECT SUM(qty) FROM "+db+".shop_order o JOIN "+db+
				".shop_customer c ON c.id = o.customer_id WHERE c.name LIKE ?", prefix)
		})
	}
}

// TestDjangoSlowWrite checks read-your-writes after a write that runs longer
// than the session window: Switchyard must keep the session's reads on the
// primary for session_window after the write finished (router.State.LastWrite
// is "when the session's last write finished"), or the read right after a
// long UPDATE, ALTER TABLE or bulk load goes to a replica that has not
// applied it yet. The replicas are stalled so that such a read is stale for
// certain instead of by chance.
func TestDjangoSlowWrite(t *testing.T) {
	sb := sandboxtest.Require(t)
	requirePython(t, []string{"django", "MySQLdb"}, []string{"python3-django", "python3-mysqldb"})
	r := routings[0] // the defaults: causal consistency, 1s window
	db := "django_slow"
	createDatabase(t, sb, db)
	sy := startSwitchyard(t, sb, r)
	env := appEnv{Proxy: sy, DB: db, Run: "slow",
		Extra: []string{fmt.Sprintf("SY_SLOW_SECONDS=%.3f", 1.5*r.SessionWindow.Seconds())}}
	runApp(t, "django_app", "migrate", env)
	waitReplicated(t, sb)
	if t.Failed() {
		return
	}
	resume := stallReplicas(t, sb)
	mark := markLogs(t, sb)
	rep := runApp(t, "django_app", "slowwrite", env)
	checkReads(t, sb, r, rep)
	found := false
	for _, ev := range rep.reads() {
		if !strings.HasPrefix(ev.Name, "slow after slow update") {
			continue
		}
		found = true
		if ev.ServerID == nil || *ev.ServerID != sb.Primary.ServerID {
			t.Errorf("the read right after a %.1fs UPDATE ran on server_id %v, want the primary (%d): "+
				"the session window seems to count from the start of the write, not from its end",
				1.5*r.SessionWindow.Seconds(), deref(ev.ServerID), sb.Primary.ServerID)
		}
	}
	if !found {
		t.Errorf("slowwrite did not report its read after the slow update")
	}
	checkLogs(t, sb, mark, `(?is)^UPDATE shop_customer SET balance = balance \+ 1 WHERE .* SLEEP\(`)
	resume()
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
