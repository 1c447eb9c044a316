package test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestStreamGiB streams a result of more than 1 GiB through Switchyard to a
// client that discards the rows, and checks that the switchyard process's
// resident memory grows by less than 64 MiB: results are relayed packet by
// packet, never buffered whole.
func TestStreamGiB(t *testing.T) {
	sb := requireFixtures(t)
	sy := startSwitchyard(t, sb, func(c *proxyConfig) { c.TLSMode = "off" })
	// The sequence engine's tables exist in every database, but one must be selected.
	db := goDB(t, sy.endpoint(), goConn{User: appUser.Name, Password: appUser.Password, DB: "compat"})
	db.SetMaxOpenConns(1)

	const rows, rowSize = 1100, 1 << 20
	query := func(n int) string {
		// REPEAT of 16 bytes: MariaDB makes long repeats of one byte slowly.
		return fmt.Sprintf("SELECT REPEAT('0123456789abcdef', %d) FROM seq_1_to_%d", rowSize/16, n)
	}
	var one int
	if err := db.QueryRow("SELECT COUNT(*) FROM seq_1_to_3").Scan(&one); err != nil {
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1146 {
			t.Fatal(err)
		}
		// No sequence engine (MySQL): a recursive CTE makes the same rows.
		// MySQL stops a recursion after cte_max_recursion_depth (1000)
		// iterations; the SET_VAR hint lifts it for this statement.
		query = func(n int) string {
			return fmt.Sprintf("WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %d) "+
				"SELECT /*+ SET_VAR(cte_max_recursion_depth = %d) */ REPEAT('0123456789abcdef', %d) FROM s", n, n+1, rowSize/16)
		}
	}
	// Warm up: one connection, and rows of the same size, so that buffers
	// any session needs are already there before the baseline.
	if n, err := drain(db, query(4)); err != nil || n != 4*rowSize {
		t.Fatalf("warm-up: %d bytes, %v", n, err)
	}
	pid := sy.Pid()
	rssBefore, err := procStatus(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	hwmBefore, _ := procStatus(pid, "VmHWM")

	// Sample RSS while streaming too, in case the peak is missed by VmHWM
	// (it is not, on Linux; the samples show the shape in the log).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak int64
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if rss, err := procStatus(pid, "VmRSS"); err == nil {
					peak = max(peak, rss)
				}
			}
		}
	})
	start := time.Now()
	n, err := drain(db, query(rows))
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if n != rows*rowSize {
		t.Fatalf("streamed %d bytes, want %d", n, rows*rowSize)
	}
	rssAfter, err := procStatus(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	hwmAfter, err := procStatus(pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	growth := hwmAfter - rssBefore
	const mib = 1 << 20
	t.Logf("streamed %d MiB through switchyard in %s (%.0f MiB/s)", n/mib, took.Round(time.Millisecond), float64(n)/mib/took.Seconds())
	t.Logf("switchyard memory: VmRSS before %.1f MiB, after %.1f MiB, sampled peak %.1f MiB; VmHWM before %.1f MiB, after %.1f MiB; growth (VmHWM after - VmRSS before) %.1f MiB",
		float64(rssBefore)/mib, float64(rssAfter)/mib, float64(peak)/mib, float64(hwmBefore)/mib, float64(hwmAfter)/mib, float64(growth)/mib)
	if growth >= 64*mib {
		t.Errorf("switchyard's resident memory grew by %.1f MiB while streaming %d MiB, want less than 64 MiB", float64(growth)/mib, n/mib)
	}
}

// drain runs q and reads every row into the same buffer, discarding it. It
// returns the number of value bytes read.
func drain(db *sql.DB, q string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	var v sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&v); err != nil {
			return n, err
		}
		n += len(v)
	}
	return n, rows.Err()
}
