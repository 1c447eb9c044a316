package sandbox

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// defaultWaitTimeout bounds WaitReplicated when its context has no deadline.
const defaultWaitTimeout = time.Minute

// queryer is what *sql.DB and *sql.Conn have in common.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// setup creates the users on the primary, then points every replica at it and waits
// until they replicate and have applied the users. It talks to fresh servers as
// passwordless root over the unix socket: a replica's root gets its password only when
// it applies the primary's ALTER USER.
func (sb *Sandbox) setup(ctx context.Context) error {
	primary, err := socketConn(ctx, sb.Primary)
	if err != nil {
		return err
	}
	defer primary.Close()
	if err := sb.createUsers(ctx, primary); err != nil {
		return fmt.Errorf("create users on primary: %w", err)
	}
	var pos string
	if err := primary.QueryRowContext(ctx, sb.flavor.executedGTIDSQL()).Scan(&pos); err != nil {
		return fmt.Errorf("read primary gtid position: %w", err)
	}
	return parallel(sb.Replicas, func(r *Server) error {
		conn, err := socketConn(ctx, r)
		if err != nil {
			return err
		}
		defer conn.Close()
		for _, stmt := range sb.flavor.startReplicationSQL(sb.Primary.Port) {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("start replication on %s: %w", r.Name, err)
			}
		}
		if err := sb.waitReplicating(ctx, conn, r); err != nil {
			return err
		}
		return sb.waitGTID(ctx, conn, r, pos)
	})
}

// socketConn opens a single connection to srv as root without a password.
func socketConn(ctx context.Context, srv *Server) (*sql.DB, error) {
	db, err := sql.Open("mysql", "root@unix("+srv.Socket+")/")
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", srv.Name, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", srv.Name, err)
	}
	return db, nil
}

// createUsers gives root its password, drops the accounts mariadb-install-db made for
// the host name (ignored under skip-name-resolve) and creates the sandbox's users. All
// of it is binlogged, so replicas starting from an empty gtid_slave_pos replay it.
func (sb *Sandbox) createUsers(ctx context.Context, db queryer) error {
	o, fl := sb.Opts, sb.flavor
	var stmts []string
	rows, err := db.QueryContext(ctx, "SELECT User, Host FROM mysql.user "+
		"WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1'))")
	if err != nil {
		return err
	}
	for rows.Next() {
		var user, host string
		if err := rows.Scan(&user, &host); err != nil {
			rows.Close()
			return err
		}
		stmts = append(stmts, "DROP USER "+account(user, host))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		root := account("root", host)
		stmts = append(stmts,
			"CREATE USER IF NOT EXISTS "+root+" "+fl.identifiedBy(o.RootPassword),
			"ALTER USER "+root+" "+fl.identifiedBy(o.RootPassword),
			"GRANT ALL PRIVILEGES ON *.* TO "+root+" WITH GRANT OPTION")
	}
	stmts = append(stmts, createUser(fl, User{ReplicationUser, ReplicationPassword, "REPLICATION SLAVE ON *.*"})...)
	stmts = append(stmts, createUser(fl, User{o.Monitor.Name, o.Monitor.Password, fl.monitorPrivileges()})...)
	for _, u := range o.Users {
		stmts = append(stmts, createUser(fl, u)...)
		acct := account(u.Name, "%")
		for _, priv := range fl.readOnlyBypass() {
			stmts = append(stmts, "REVOKE "+priv+" ON *.* FROM "+acct)
		}
	}
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", redact(stmt), err)
		}
	}
	return nil
}

func createUser(fl *flavor, u User) []string {
	acct := account(u.Name, "%")
	return []string{
		"CREATE USER " + acct + " " + fl.identifiedBy(u.Password),
		"GRANT " + u.grant() + " TO " + acct,
	}
}

func account(user, host string) string { return quote(user) + "@" + quote(host) }

// redact cuts a statement before its password so errors do not print it.
func redact(stmt string) string {
	if i := strings.Index(stmt, "IDENTIFIED"); i >= 0 {
		return stmt[:i] + "IDENTIFIED ..."
	}
	return stmt
}

// waitReplicating polls the replica until both replication threads run. A thread that
// stopped with an error fails at once; a connecting I/O thread is given until ctx ends.
func (sb *Sandbox) waitReplicating(ctx context.Context, db queryer, r *Server) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	c := sb.flavor.replicaStatusColumns()
	for {
		st, err := replicaStatus(ctx, db, sb.flavor)
		if err != nil {
			return fmt.Errorf("replication status of %s: %w", r.Name, err)
		}
		if st[c.io] == "Yes" && st[c.sql] == "Yes" {
			return nil
		}
		if st[c.io] == "No" && st[c.ioErr] != "" || st[c.sql] == "No" && st[c.sqlErr] != "" {
			return fmt.Errorf("replication on %s stopped: %s", r.Name, describeStatus(st, c))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replication on %s not running (%s): %w", r.Name, describeStatus(st, c), context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// replicaStatus returns the replica status row as column name -> value; empty when the
// server is not a replica.
func replicaStatus(ctx context.Context, db queryer, fl *flavor) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, fl.replicaStatusSQL())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	st := map[string]string{}
	if rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		for i, col := range cols {
			st[col] = vals[i].String
		}
	}
	return st, rows.Err()
}

func describeStatus(st map[string]string, c statusColumns) string {
	s := fmt.Sprintf("io=%s sql=%s", st[c.io], st[c.sql])
	if e := st[c.ioErr]; e != "" {
		s += "; io error: " + e
	}
	if e := st[c.sqlErr]; e != "" {
		s += "; sql error: " + e
	}
	return s
}

// WaitReplicated waits until every replica has applied everything the primary had
// binlogged when it was called (MASTER_GTID_WAIT on the primary's gtid_binlog_pos, or
// WAIT_FOR_EXECUTED_GTID_SET on its gtid_executed). If
// ctx has no deadline it gives up after a minute.
func (sb *Sandbox) WaitReplicated(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultWaitTimeout)
		defer cancel()
	}
	pdb, err := sb.RootDB(sb.Primary)
	if err != nil {
		return err
	}
	var pos string
	if err := pdb.QueryRowContext(ctx, sb.flavor.executedGTIDSQL()).Scan(&pos); err != nil {
		return fmt.Errorf("read primary gtid position: %w", err)
	}
	return parallel(sb.Replicas, func(r *Server) error {
		db, err := sb.RootDB(r)
		if err != nil {
			return err
		}
		return sb.waitGTID(ctx, db, r, pos)
	})
}

// waitGTID waits on the replica until it has applied pos. The server-side timeout ends
// with ctx's deadline, so a timed-out wait does not linger on the server.
func (sb *Sandbox) waitGTID(ctx context.Context, db queryer, r *Server, pos string) error {
	timeout := defaultWaitTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), 0)
	}
	var res sql.NullInt64
	err := db.QueryRowContext(ctx, sb.flavor.waitGTIDSQL(), pos, timeout.Seconds()).Scan(&res)
	if err == nil && res.Valid && res.Int64 == 0 {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("timed out after %s", timeout.Round(time.Millisecond))
	}
	// Say where the replica is and why, with a little time of our own.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	var applied string
	db.QueryRowContext(dctx, sb.flavor.appliedGTIDSQL()).Scan(&applied)
	st, _ := replicaStatus(dctx, db, sb.flavor)
	return fmt.Errorf("wait for %s to apply gtid %q (applied %q, %s): %w",
		r.Name, pos, applied, describeStatus(st, sb.flavor.replicaStatusColumns()), err)
}
