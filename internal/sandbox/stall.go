package sandbox

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// StallApplier makes the replica srv stop applying what it receives while both of its
// replication threads keep running, as a long query holding locks there would: it
// takes the global read lock (FLUSH TABLES WITH READ LOCK) on a connection of its own.
// The replica falls behind but, unlike one whose SQL thread was stopped, still reports
// itself replicating. Reads on srv go on. The returned function releases the lock and
// may be called more than once; call it before the test ends, since nothing else does
// while the sandbox lives.
func (sb *Sandbox) StallApplier(ctx context.Context, srv *Server) (release func() error, err error) {
	cfg := srv.driverConfig("root", sb.Opts.RootPassword, "")
	cfg.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("stall %s: %w", srv.Name, err)
	}
	// A pool of its own, not RootDB's: the lock belongs to one session, which must not
	// go back to a pool others draw from.
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	// The lock waits behind any long statement: not forever.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWaitTimeout)
		defer cancel()
	}
	if _, err := db.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil {
		db.Close()
		return nil, fmt.Errorf("stall %s: %w", srv.Name, err)
	}
	return sync.OnceValue(func() error {
		// Unlocked explicitly, so that the applier resumes before release returns;
		// closing the session would release the lock too, but at the server's pace.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := db.ExecContext(ctx, "UNLOCK TABLES")
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("release stall of %s: %w", srv.Name, err)
		}
		return nil
	}), nil
}
