package oracle

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/switchyard-db/switchyard/router"
)

// scriptResult is what one script did; Report.add sums them.
type scriptResult struct {
	statements, leftOut, notReached     int
	reads, readsExecuted, readsFailed   int
	setupRun, setupFailed, setupSkipped int
	readErrors                          map[uint16]int
	disagreements, held, viewWrites     []Finding
	skip, abort                         string // why the script was skipped or cut short
}

// session runs one script on its own connection. It is used by one goroutine.
type session struct {
	o       *Oracle
	conn    *sql.Conn
	name    string // the script's Name
	db      string // the script's database
	mode    router.Mode
	res     *scriptResult
	timeout time.Duration // client-side deadline of one statement
}

// errAbort wraps errors after which the script's connection cannot go on.
var errAbort = errors.New("connection lost")

// runScript loads script i and runs it in database oracle_<i>.
func (o *Oracle) runScript(ctx context.Context, i int, l Loader) *scriptResult {
	res := &scriptResult{readErrors: map[uint16]int{}}
	script, err := loadScript(l)
	if err != nil {
		res.skip = fmt.Sprintf("%s: %v", l.Name, err)
		return res
	}
	res.statements, res.leftOut = len(script.Statements), script.LeftOut
	db := fmt.Sprintf("%s%d", dbPrefix, i)
	s, err := o.openSession(ctx, script.Name, db, script.Charset, res)
	if err != nil {
		res.abort = fmt.Sprintf("%s: %v", script.Name, err)
		res.notReached = len(script.Statements)
		return res
	}
	began := time.Now()
	defer func() {
		if err := s.close(); err != nil && res.abort == "" {
			res.abort = fmt.Sprintf("%s: %v", script.Name, err)
		}
		s.trace(0, "done", "", time.Since(began).Round(time.Millisecond).String())
	}()
	for n, st := range script.Statements {
		if ctx.Err() != nil {
			res.notReached += len(script.Statements) - n
			break
		}
		text := st.SQL
		if script.Placeholder != "" {
			text = strings.ReplaceAll(text, script.Placeholder, db)
		}
		if err := s.statement(ctx, st.Line, text); err != nil {
			res.abort = fmt.Sprintf("%s:%d: %v", script.Name, st.Line, err)
			res.notReached += len(script.Statements) - n - 1
			break
		}
	}
	return res
}

// openSession creates database db (character set charset, utf8mb4 if empty) and
// a connection that uses it, for the script called name; its counts go to res.
// The caller must close the session.
func (o *Oracle) openSession(ctx context.Context, name, db, charset string, res *scriptResult) (*session, error) {
	dbCharset := charset
	if dbCharset == "" {
		dbCharset = "utf8mb4"
	}
	if err := o.admin(ctx, "CREATE DATABASE "+db+" CHARACTER SET "+dbCharset); err != nil {
		return nil, err
	}
	s := &session{o: o, name: name, db: db, res: res, timeout: o.statementTimeout()}
	var err error
	if s.conn, err = o.DB.Conn(ctx); err != nil {
		err = fmt.Errorf("connect: %w", err)
	} else if err = s.start(ctx, charset); err != nil {
		err = fmt.Errorf("start session: %w", err)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// close discards the session's connection, rather than pooling it, so that its
// state (user variables, sql_mode, temporary tables, named locks) dies with it;
// then it drops the database.
func (s *session) close() error {
	if s.conn != nil {
		s.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	// A fresh context: the database goes even when the run was interrupted.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.o.admin(ctx, "DROP DATABASE IF EXISTS "+s.db)
}

// loadScript calls l.Load, turning a panic of an extractor into an error: one bad
// file must not stop a run over thousands.
func loadScript(l Loader) (s Script, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("extractor panic: %v", p)
		}
	}()
	return l.Load()
}

func (o *Oracle) admin(ctx context.Context, q string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := o.DB.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	return nil
}

// start prepares the session: the script's database, the limits, the character
// set, and the mode the classifier needs.
func (s *session) start(ctx context.Context, charset string) error {
	secs := s.o.serverTimeout().Seconds()
	qs := []string{
		"USE " + s.db,
		fmt.Sprintf("SET SESSION max_statement_time = %g, lock_wait_timeout = %d, innodb_lock_wait_timeout = %d",
			secs, max(1, int(secs)), max(1, int(secs))),
	}
	if charset != "" {
		qs = append(qs, "SET NAMES "+charset)
	}
	for _, q := range qs {
		if err := s.own(ctx, q); err != nil {
			return err
		}
	}
	return s.readMode(ctx)
}

// own runs one of the oracle's own statements; any error is fatal to the script.
func (s *session) own(ctx context.Context, q string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("%w: %s: %v", errAbort, q, err)
	}
	return nil
}

// run runs one of the script's statements. A server error is returned as such;
// anything else (a broken connection, the client-side deadline) wraps errAbort.
func (s *session) run(ctx context.Context, q string) *mysql.MySQLError {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var err error
	if placeholders(q) {
		err = s.prepared(ctx, q)
	} else {
		_, err = s.conn.ExecContext(ctx, q)
	}
	if err == nil {
		return nil
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me
	}
	return &mysql.MySQLError{Number: 0, Message: err.Error()}
}

// prepared runs q, a statement with ? placeholders (as a client sends it to be
// prepared), with every parameter NULL, and reads all its rows. It queries
// rather than executes: go-sql-driver/mysql 1.10.1's prepared Exec waits forever
// for column definitions that MariaDB's metadata cache does not send again.
func (s *session) prepared(ctx context.Context, q string) error {
	return s.conn.Raw(func(dc any) error {
		st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer st.Close()
		args := make([]driver.NamedValue, st.NumInput())
		for i := range args {
			args[i].Ordinal = i + 1
		}
		rows, err := st.(driver.StmtQueryContext).QueryContext(ctx, args)
		if err != nil {
			return err
		}
		defer rows.Close()
		dest := make([]driver.Value, len(rows.Columns()))
		for {
			if err := rows.Next(dest); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
		}
	})
}

// placeholders reports whether q has a ? placeholder outside quotes and comments.
func placeholders(q string) bool {
	if !strings.Contains(q, "?") {
		return false
	}
	for _, t := range tokenize(q) {
		if t.kind == tokPunct && t.text == "?" {
			return true
		}
	}
	return false
}

// readMode sets s.mode from the session's sql_mode and character set, the way the
// proxy tells the classifier about them.
func (s *session) readMode(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var sqlMode, charset string
	// LIMIT 1: a script may have set sql_select_limit.
	err := s.conn.QueryRowContext(ctx, "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client LIMIT 1").
		Scan(&sqlMode, &charset)
	if err != nil {
		return fmt.Errorf("%w: read sql_mode: %v", errAbort, err)
	}
	s.mode = sessionMode(sqlMode, charset)
	return nil
}
