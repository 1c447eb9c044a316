package proxy

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/router"
)

// causalRounds is how many write-then-read rounds the causal test runs
// (SWITCHYARD_CAUSAL_ROUNDS overrides it).
func causalRounds() int {
	if n, err := strconv.Atoi(os.Getenv("SWITCHYARD_CAUSAL_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 10000
}

// TestCausalReads writes a row and reads it back at once, many times, in
// one session: with causal consistency no read is stale and most still run
// on replicas; with eventual consistency the stale reads are counted. The
// eventual and session runs, there for comparison, take a tenth of the
// rounds.
func TestCausalReads(t *testing.T) {
	run := func(t *testing.T, c router.Consistency, rounds int) (p *testProxy, stale, onReplica int, d time.Duration) {
		p = startProxy(t, func(o *Options) {
			o.Routing.Consistency = c
			o.Routing.CausalWait = time.Second
		})
		s := p.session(t, "")
		exec(t, s, "CREATE DATABASE IF NOT EXISTS causal")
		exec(t, s, "CREATE TABLE IF NOT EXISTS causal.t (id INT PRIMARY KEY, v INT)")
		exec(t, s, "REPLACE INTO causal.t VALUES (1, -1)")
		waitReplicated(t, p.sb) // eventual reads must find the table, whichever subtest runs first
		start := time.Now()
		for i := range rounds {
			exec(t, s, "UPDATE causal.t SET v = ? WHERE id = 1", i)
			var v, id int
			if err := s.QueryRowContext(context.Background(), "SELECT v, @@server_id FROM causal.t WHERE id = 1").Scan(&v, &id); err != nil {
				t.Fatal(err)
			}
			if v != i {
				stale++
			}
			if id != p.sb.Primary.ServerID {
				onReplica++
			}
		}
		return p, stale, onReplica, time.Since(start)
	}
	rounds := causalRounds()
	t.Run("causal", func(t *testing.T) {
		p, stale, onReplica, d := run(t, router.ConsistencyCausal, rounds)
		t.Logf("causal on %s: %d rounds in %s, %d stale, %.1f%% of reads on replicas (%d)",
			p.sb.Engine(), rounds, d.Round(time.Millisecond), stale, 100*float64(onReplica)/float64(rounds), onReplica)
		if stale != 0 {
			t.Errorf("%d stale reads with causal consistency", stale)
		}
		if onReplica < rounds/2 {
			t.Errorf("only %d of %d causal reads ran on replicas", onReplica, rounds)
		}
	})
	rounds = max(rounds/10, 1)
	t.Run("eventual", func(t *testing.T) {
		_, stale, onReplica, d := run(t, router.ConsistencyEventual, rounds)
		t.Logf("eventual: %d rounds in %s, %d stale reads, %d of %d reads on replicas", rounds, d.Round(time.Millisecond), stale, onReplica, rounds)
	})
	t.Run("session", func(t *testing.T) {
		_, stale, onReplica, d := run(t, router.ConsistencySession, rounds)
		t.Logf("session: %d rounds in %s, %d stale reads, %d of %d reads on replicas", rounds, d.Round(time.Millisecond), stale, onReplica, rounds)
		if stale != 0 {
			t.Errorf("%d stale reads with session consistency", stale)
		}
	})
}

// TestGlobalReads: a write committed by one session is seen by another
// session's read that starts after it, on a replica.
func TestGlobalReads(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.Routing.Consistency = router.ConsistencyGlobal
		o.Routing.CausalWait = time.Second
	})
	writer, reader := p.session(t, ""), p.session(t, "")
	exec(t, writer, "CREATE DATABASE IF NOT EXISTS global")
	exec(t, writer, "CREATE TABLE IF NOT EXISTS global.t (id INT PRIMARY KEY, v INT)")
	exec(t, writer, "REPLACE INTO global.t VALUES (1, -1)")
	onReplica := 0
	const rounds = 500
	for i := range rounds {
		exec(t, writer, "UPDATE global.t SET v = ? WHERE id = 1", i)
		var v, id int
		if err := reader.QueryRowContext(context.Background(), "SELECT v, @@server_id FROM global.t WHERE id = 1").Scan(&v, &id); err != nil {
			t.Fatal(err)
		}
		if v != i {
			t.Fatalf("round %d: another session's committed write not seen (v=%d on server %d)", i, v, id)
		}
		if id != p.sb.Primary.ServerID {
			onReplica++
		}
	}
	t.Logf("global: %d of %d reads on replicas, none stale", onReplica, rounds)
	if onReplica < rounds/2 {
		t.Errorf("only %d of %d reads on replicas", onReplica, rounds)
	}
}

// TestCausalAfterReturning reads rows right after INSERT ... RETURNING, whose
// answer is a result set: with classic EOF packets it carries no GTID, which
// Switchyard must learn otherwise.
func TestCausalAfterReturning(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		o.Routing.Consistency = router.ConsistencyCausal
		o.Routing.CausalWait = time.Second
	})
	skipUnlessMariaDB(t, p.sb, "INSERT ... RETURNING")
	for _, caps := range []uint32{0, mysql.CLIENT_DEPRECATE_EOF} {
		r := loginRaw(t, p.addr, appUser, appPass, "", caps)
		r.query("CREATE DATABASE IF NOT EXISTS ret")
		r.query("CREATE TABLE IF NOT EXISTS ret.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
		for i := range 200 {
			res := r.query(fmt.Sprintf("INSERT INTO ret.t (v) VALUES (%d) RETURNING id", i))
			if res[0][0] == 0xff {
				t.Fatalf("insert: %v", parseErr(res[0]))
			}
			res = r.query(fmt.Sprintf("SELECT COUNT(*) FROM ret.t WHERE v = %d", i))
			if row := res[len(res)-2]; string(row[1:]) == "0" {
				t.Fatalf("deprecate_eof=%v round %d: the row written just before is missing", caps != 0, i)
			}
		}
	}
}
