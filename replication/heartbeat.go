package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// MySQL error numbers the heartbeat writer handles.
const (
	erBadDB        = 1049 // unknown database
	erNoSuchTable  = 1146
	heartbeatRowID = 1
)

// errNotWritten means the primary turned read-only under the writer: its guarded INSERT
// changed nothing.
var errNotWritten = errors.New("heartbeat not written: primary is read-only")

// heartbeatSQL holds the heartbeat statements for one schema and table.
type heartbeatSQL struct {
	createSchema, createTable, insert, selectTS string
}

func newHeartbeatSQL(o HeartbeatOptions) heartbeatSQL {
	// Names are checked against identRE, so backquoting them is enough.
	table := fmt.Sprintf("`%s`.`%s`", o.Schema, o.Table)
	return heartbeatSQL{
		createSchema: fmt.Sprintf("CREATE DATABASE IF NOT EXISTS `%s`", o.Schema),
		createTable: "CREATE TABLE IF NOT EXISTS " + table + " (" +
			"id TINYINT UNSIGNED NOT NULL PRIMARY KEY, " +
			"ts BIGINT NOT NULL COMMENT 'Unix microseconds of the write, by the writer''s clock'" +
			") ENGINE=InnoDB COMMENT 'Switchyard replication heartbeat'",
		// The WHERE clause keeps a write from landing on a server that was just made
		// read-only by an account that could bypass read_only: it would become an errant
		// transaction there. GREATEST keeps the row monotonic when several proxies write.
		insert: "INSERT INTO " + table + " (id, ts) SELECT " + fmt.Sprint(heartbeatRowID) + ", ? FROM DUAL " +
			"WHERE @@GLOBAL.read_only = 0 ON DUPLICATE KEY UPDATE ts = GREATEST(ts, VALUES(ts))",
		selectTS: "SELECT ts FROM " + table + " WHERE id = " + fmt.Sprint(heartbeatRowID),
	}
}

// heartbeatEvent reports one heartbeat attempt to the Run goroutine.
type heartbeatEvent struct {
	ts      time.Time // the timestamp written
	err     error
	skipped bool // no usable, writable primary to write to
	target  string
}

// heartbeatWriter writes the heartbeat row on the current primary, on a connection of
// its own that follows the primary. Only its run goroutine uses it.
type heartbeatWriter struct {
	m      *Monitor
	sql    heartbeatSQL
	target string // backend name the connection is for
	db     *sql.DB
}

// run writes a heartbeat every interval until ctx ends, reporting each attempt to out.
func (w *heartbeatWriter) run(ctx context.Context, out chan<- heartbeatEvent) {
	defer w.close()
	tick := time.NewTicker(w.m.opts.Heartbeat.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ev := w.beat(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// beat writes one heartbeat on the primary named by the latest snapshot, if it is usable
// and was writable at its last probe.
func (w *heartbeatWriter) beat(ctx context.Context) heartbeatEvent {
	snap := w.m.Snapshot()
	st, ok := snap.Backend(snap.Primary)
	if !ok || st.State != Usable || st.ReadOnly {
		w.close()
		return heartbeatEvent{skipped: true}
	}
	if w.target != st.Name {
		w.close()
		w.db, w.target = openSingle(w.m.connectors[snap.index[st.Name]]), st.Name
	}
	ctx, cancel := context.WithTimeout(ctx, w.m.opts.Timeout)
	defer cancel()
	ts := rowTime(time.Now())
	err := w.write(ctx, ts)
	if n := serverErrorNumber(err); n == erNoSuchTable || n == erBadDB {
		if err = w.create(ctx); err == nil {
			ts = rowTime(time.Now())
			err = w.write(ctx, ts)
		}
	}
	if err != nil {
		err = fmt.Errorf("write heartbeat on %s: %w", st.Name, err)
	}
	return heartbeatEvent{ts: ts, err: err, target: st.Name}
}

// rowTime returns t as the heartbeat row holds it, in whole microseconds. The monitor
// keeps the times it wrote at that precision: a replica whose row holds this monitor's
// first write would otherwise seem to hold an older one, its time up to a microsecond
// before the nanosecond one remembered.
func rowTime(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()) }

func (w *heartbeatWriter) write(ctx context.Context, ts time.Time) error {
	res, err := w.db.ExecContext(ctx, w.sql.insert, ts.UnixMicro())
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errNotWritten
	}
	return nil
}

// create makes the heartbeat schema and table, after checking once more that the
// server is writable: DDL cannot carry the INSERT's guard.
func (w *heartbeatWriter) create(ctx context.Context) error {
	var ro string
	if err := w.db.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro); err != nil {
		return err
	}
	if parseReadOnly(ro) {
		return errNotWritten
	}
	for _, stmt := range []string{w.sql.createSchema, w.sql.createTable} {
		if _, err := w.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create heartbeat table: %w", err)
		}
	}
	return nil
}

func (w *heartbeatWriter) close() {
	if w.db != nil {
		w.db.Close()
		w.db, w.target = nil, ""
	}
}
