package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// workload writes and reads through Switchyard while a test changes the
// topology under it, and keeps a ledger: every id a client was told is
// committed (autocommit inserts and two-row transactions), every error, and
// the times of the acknowledgements, to measure how long writes stopped.
type workload struct {
	t *testing.T
	// autocommit: every write is one autocommit insert (no transactions).
	autocommit bool
	stop       atomic.Bool
	wg         sync.WaitGroup
	ops        atomic.Int64
	mu         sync.Mutex
	acked      []int64
	ackAt      []time.Time // when each write was acknowledged, in order
	wErrs      []string    // write errors: not acknowledged, so allowed to be missing
	rErrs      []string    // read errors
	pErrs      []string    // errors of the reads on the primary
	// primaryReadsMayFail: a read on the primary waits for a new one as
	// long as a write does, and may fail as a write may (see
	// checkLedger).
	primaryReadsMayFail bool
}

// startWorkload creates sw.ledger through p and starts writers writers and
// two readers (the writers share a pool, the readers another).
func startWorkload(t *testing.T, p *proc, sb *sandbox.Sandbox, writers int) *workload {
	t.Helper()
	return startWorkloadOf(t, p, sb, writers, false)
}

// startWorkloadOf is startWorkload, with autocommit inserts only when
// autocommit is set.
func startWorkloadOf(t *testing.T, p *proc, sb *sandbox.Sandbox, writers int, autocommit bool) *workload {
	t.Helper()
	setup := p.conn(appAccount)
	execAll(t, setup, "CREATE DATABASE IF NOT EXISTS sw", "DROP TABLE IF EXISTS sw.ledger",
		"CREATE TABLE sw.ledger (id BIGINT PRIMARY KEY, worker INT)")
	if err := sb.WaitReplicated(t.Context()); err != nil {
		t.Fatal(err)
	}
	w := &workload{t: t, autocommit: autocommit}
	writer, reader := p.db(appAccount), p.db(appAccount)
	for range writers {
		w.wg.Go(func() { w.write(writer) })
	}
	// A statement that hangs on a frozen server fails after a while (the
	// contexts' 20s) rather than hold the test. One reader reads where
	// Switchyard sends reads, the other on the primary (a hint): a read
	// the dying primary was running runs again on the new one.
	for _, q := range []string{"SELECT COUNT(*) FROM sw.ledger", primaryRead} {
		w.wg.Go(func() {
			for !w.stop.Load() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				var n int
				err := reader.QueryRowContext(ctx, q).Scan(&n)
				cancel()
				if err != nil {
					w.mu.Lock()
					if q == primaryRead {
						w.pErrs = append(w.pErrs, err.Error())
					} else {
						w.rErrs = append(w.rErrs, err.Error())
					}
					w.mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	t.Cleanup(w.end)
	return w
}

// primaryRead is the workload's read on the primary.
const primaryRead = "/* switchyard:route=primary */ SELECT COUNT(*) FROM sw.ledger"

var workerSeq atomic.Int64

func (w *workload) write(db *sql.DB) {
	worker := workerSeq.Add(1)
	for i := int64(0); !w.stop.Load(); i += 2 {
		id := worker*1_000_000 + i
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var err error
		ids := []int64{id}
		if i%4 == 0 || w.autocommit {
			_, err = db.ExecContext(ctx, "INSERT INTO sw.ledger VALUES (?, ?)", id, worker)
		} else {
			ids = append(ids, id+1)
			var tx *sql.Tx
			if tx, err = db.BeginTx(ctx, nil); err == nil {
				if _, err = tx.ExecContext(ctx, "INSERT INTO sw.ledger VALUES (?, ?), (?, ?)", id, worker, id+1, worker); err == nil {
					err = tx.Commit()
				} else {
					tx.Rollback()
				}
			}
		}
		cancel()
		w.mu.Lock()
		if err != nil {
			w.wErrs = append(w.wErrs, fmt.Sprintf("ids %v: %v", ids, err))
		} else {
			w.acked = append(w.acked, ids...)
			w.ackAt = append(w.ackAt, time.Now())
		}
		w.mu.Unlock()
		if err == nil {
			w.ops.Add(1)
		} else {
			time.Sleep(10 * time.Millisecond) // a failing primary: do not spin
		}
	}
}

// wait waits for n more acknowledged writes.
func (w *workload) wait(n int64) {
	w.t.Helper()
	target := w.ops.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for w.ops.Load() < target {
		if time.Now().After(deadline) {
			w.t.Fatalf("writes made no progress for 30s: %d acknowledged; errors: %s", w.ops.Load(), w.lastErrors())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readErrors returns the first read errors.
func (w *workload) readErrors() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var e []string
	e = append(e, w.rErrs[:min(3, len(w.rErrs))]...)
	e = append(e, w.pErrs[:min(3, len(w.pErrs))]...)
	return strings.Join(e, "; ")
}

func (w *workload) lastErrors() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.wErrs
	if len(e) > 3 {
		e = e[len(e)-3:]
	}
	return strings.Join(e, "; ")
}

// end stops the clients.
func (w *workload) end() {
	w.stop.Store(true)
	w.wg.Wait()
}

// longestGap returns the longest time between two acknowledged writes
// after from: how long writes stopped.
func (w *workload) longestGap(from time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gap time.Duration
	prev := from
	for _, at := range w.ackAt {
		if at.Before(from) {
			continue
		}
		gap = max(gap, at.Sub(prev))
		prev = at
	}
	return gap
}

// checkLedger ends the clients and checks that every acknowledged id is on
// the server behind db, once. It returns the numbers for the note.
func (w *workload) checkLedger(db *sql.DB, where string) (acked, writeErrors, readErrors int) {
	w.t.Helper()
	if missing, acked := w.missing(db); missing > 0 {
		w.t.Errorf("%d of %d acknowledged ids missing on %s", missing, acked, where)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	readErrors = len(w.rErrs)
	if !w.primaryReadsMayFail {
		readErrors += len(w.pErrs)
	}
	return len(w.acked), len(w.wErrs), readErrors
}

// missing ends the clients and counts the acknowledged ids that are not on
// the server behind db.
func (w *workload) missing(db *sql.DB) (missing, acked int) {
	w.t.Helper()
	w.end()
	present := map[int64]bool{}
	rows, err := db.Query("SELECT id FROM sw.ledger")
	if err != nil {
		w.t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			w.t.Fatal(err)
		}
		present[id] = true
	}
	if err := rows.Err(); err != nil {
		w.t.Fatal(err)
	}
	rows.Close()
	for _, id := range w.acked {
		if !present[id] {
			missing++
		}
	}
	return missing, len(w.acked)
}
