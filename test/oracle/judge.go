package oracle

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/switchyard-db/switchyard/router"
)

// Server errors the oracle tells apart.
const (
	errReadOnlyTx = 1792 // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
	errDeadlock   = 1213 // ER_LOCK_DEADLOCK: rolls the whole transaction back
)

// statement classifies one statement and runs it as the oracle's rules say. It
// returns an error only when the script cannot go on.
func (s *session) statement(ctx context.Context, line int, q string) error {
	c := s.o.classify(q, s.mode)
	if c.Kind == router.KindRead {
		return s.read(ctx, line, q, c)
	}
	ok, why := setupAllowed(q, s.db)
	if !ok {
		s.res.setupSkipped++
		s.trace(line, "skip", q, why)
		return nil
	}
	me := s.run(ctx, q)
	s.trace(line, "setup", q, errText(me))
	switch {
	case me != nil && me.Number == 0:
		return fmt.Errorf("%w: %s", errAbort, me.Message)
	case me != nil:
		s.res.setupFailed++
	default:
		s.res.setupRun++
	}
	if toks := tokenize(q); me == nil && len(toks) > 0 && toks[0].word("SET") {
		return s.readMode(ctx) // sql_mode or the character set may have changed
	}
	return nil
}

// read runs a statement classified as a read inside a read-only transaction and
// records what the server made of it.
func (s *session) read(ctx context.Context, line int, q string, c router.Class) error {
	s.res.reads++
	finding := Finding{File: s.name, Line: line, SQL: q, Class: c}
	if why := neverRun(q); why != "" {
		finding.Why = "not sent: " + why
		s.res.held = append(s.res.held, finding)
		s.trace(line, "held", q, why)
		return nil
	}
	if err := s.own(ctx, "START TRANSACTION READ ONLY"); err != nil {
		return err
	}
	me := s.run(ctx, q)
	if me != nil && me.Number == 0 {
		return fmt.Errorf("%w: %s", errAbort, me.Message)
	}
	open, err := s.inTransaction(ctx)
	if err != nil {
		return err
	}
	if err := s.own(ctx, "ROLLBACK AND NO CHAIN NO RELEASE"); err != nil {
		return err
	}
	s.trace(line, "read", q, errText(me))
	switch {
	case me != nil && me.Number == errReadOnlyTx:
		finding.Why = "the server refused it in a read-only transaction: " + me.Error()
		if v, err := s.viewNamed(ctx, q); err != nil {
			return err
		} else if v != "" {
			// What a view does cannot be seen in the statement's text: the
			// proxy's read-only replica sessions refuse it and run it on
			// the primary (switchyard_replica_refusals_total).
			finding.Why += " (it reads view " + v + ")"
			s.res.viewWrites = append(s.res.viewWrites, finding)
			break
		}
		s.res.disagreements = append(s.res.disagreements, finding)
	case !open && (me == nil || me.Number != errDeadlock):
		finding.Why = "it ended the read-only transaction (an implicit commit)"
		if me != nil {
			finding.Why += ", then failed: " + me.Error()
		}
		s.res.disagreements = append(s.res.disagreements, finding)
	case me != nil:
		s.res.readsFailed++
		s.res.readErrors[me.Number]++
	default:
		s.res.readsExecuted++
	}
	return nil
}

// trace writes a line about one statement to Oracle.Trace.
func (s *session) trace(line int, what, q, detail string) {
	if s.o.Trace == nil {
		return
	}
	fmt.Fprintf(s.o.Trace, "%s:%d\t%s\t%s\t%s\n", s.name, line, what, shorten(q, 200), detail)
}

func errText(me *mysql.MySQLError) string {
	if me == nil {
		return "ok"
	}
	return me.Error()
}

// inTransaction reports whether the session's transaction is still open.
func (s *session) inTransaction(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var open int
	if err := s.conn.QueryRowContext(ctx, "SELECT @@in_transaction LIMIT 1").Scan(&open); err != nil {
		return false, fmt.Errorf("%w: read @@in_transaction: %v", errAbort, err)
	}
	return open == 1, nil
}

// viewNamed returns the name of a view of the session's database that the
// statement q names, or "" when it names none.
func (s *session) viewNamed(ctx context.Context, q string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()")
	if err != nil {
		return "", fmt.Errorf("%w: list views: %v", errAbort, err)
	}
	defer rows.Close()
	var views []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return "", fmt.Errorf("%w: list views: %v", errAbort, err)
		}
		views = append(views, v)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("%w: list views: %v", errAbort, err)
	}
	for _, t := range tokenize(q) {
		for _, v := range views {
			if t.word(strings.ToUpper(v)) || strings.EqualFold(strings.Trim(t.text, "`"), v) {
				return v, nil
			}
		}
	}
	return "", nil
}
