package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// KILL names Switchyard's connection ids, the ones clients saw in the
// greeting. Switchyard finds the session, checks that it belongs to the same
// user, and kills the backend thread serving it.

// errKillForm reports a KILL form Switchyard does not translate.
var errKillForm = errors.New("only KILL [HARD|SOFT] [CONNECTION|QUERY] <id> is supported through switchyard")

// parseKill recognises a KILL statement. ok is false for anything else; err
// is set for KILL forms Switchyard cannot serve.
func parseKill(sql []byte) (id uint32, query, ok bool, err error) {
	toks := killTokens(sql, 5)
	if len(toks) == 0 || !eqFold(toks[0], "kill") {
		return 0, false, false, nil
	}
	toks = toks[1:]
	if len(toks) > 0 && (eqFold(toks[0], "hard") || eqFold(toks[0], "soft")) {
		toks = toks[1:]
	}
	if len(toks) > 0 && eqFold(toks[0], "connection") {
		toks = toks[1:]
	} else if len(toks) > 0 && eqFold(toks[0], "query") {
		query = true
		toks = toks[1:]
	}
	if len(toks) != 1 {
		return 0, query, true, errKillForm
	}
	n, perr := strconv.ParseUint(string(toks[0]), 10, 32)
	if perr != nil {
		return 0, query, true, errKillForm
	}
	return uint32(n), query, true, nil
}

// killTokens splits the start of a statement into at most max words,
// skipping comments and a trailing semicolon.
func killTokens(sql []byte, max int) [][]byte {
	var toks [][]byte
	i := 0
	for i < len(sql) && len(toks) <= max {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ';':
			i++
		case c == '#' || (c == '-' && i+2 < len(sql) && sql[i+1] == '-' && (sql[i+2] == ' ' || sql[i+2] == '\t')):
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			j := i + 2
			for j+1 < len(sql) && !(sql[j] == '*' && sql[j+1] == '/') {
				j++
			}
			i = j + 2
		default:
			j := i
			for j < len(sql) && sql[j] != ' ' && sql[j] != '\t' && sql[j] != '\n' && sql[j] != '\r' && sql[j] != ';' && sql[j] != '/' && sql[j] != '#' {
				j++
			}
			if j == i {
				j++
			}
			toks = append(toks, sql[i:j])
			i = j
		}
		if len(toks) == 1 && !eqFold(toks[0], "kill") {
			return nil
		}
	}
	return toks
}

func eqFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// kill serves KILL [QUERY] id from this session.
func (s *session) kill(id uint32, query bool, perr error) error {
	if perr != nil {
		s.sendError(newSQLError(mysql.ER_NOT_SUPPORTED_YET, "This version of switchyard doesn't yet support this KILL form: %v", perr))
		return nil
	}
	target, owner := s.srv.lookup(id)
	if target == nil || owner == "" {
		s.sendError(newSQLError(mysql.ER_NO_SUCH_THREAD, "Unknown thread id: %d", id))
		return nil
	}
	if owner != s.cred.user {
		s.sendError(newSQLError(mysql.ER_KILL_DENIED_ERROR, "You are not owner of thread %d", id))
		return nil
	}
	if target == s {
		if query {
			return s.sendOK()
		}
		s.sendError(newSQLError(1927, "Connection was killed"))
		s.killed.Store(true)
		return errQuit
	}
	if !query {
		target.killed.Store(true)
	}
	if bc := target.active.Load(); bc != nil {
		if err := s.killBackendThread(bc, query); err != nil {
			s.sendError(newSQLError(codeConnRefused, "switchyard: cannot reach %s to kill thread %d: %v", bc.backend.Addr, bc.threadID, err))
			return nil
		}
	}
	if !query {
		target.abort()
	}
	return s.sendOK()
}

// killBackendThread runs KILL [QUERY] on bc's server over a new connection
// as the session's user (who owns the thread).
func (s *session) killBackendThread(bc *backendConn, query bool) error {
	key := poolKey{user: s.cred.user, caps: 0}
	kc, err := dialBackend(context.Background(), bc.backend, key, s.cred, "", s.srv.o().Pool.Connect)
	if err != nil {
		return err
	}
	defer kc.Close()
	stmt := "KILL CONNECTION "
	if query {
		stmt = "KILL QUERY "
	}
	res, err := kc.roundTrip(append([]byte{mysql.COM_QUERY}, fmt.Sprintf("%s%d", stmt, bc.threadID)...))
	if err != nil {
		return err
	}
	if res[0] == 0xff {
		e := parseErr(res)
		if e.code == mysql.ER_NO_SUCH_THREAD {
			return nil // it finished meanwhile
		}
		return e
	}
	return nil
}
