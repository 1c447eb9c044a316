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
	if bc := aim(target); bc != nil {
		if testHookKillAimed != nil {
			testHookKillAimed(target, bc)
		}
		err := s.killBackendThread(target, bc, query)
		bc.pool.unaim(bc)
		if err != nil {
			s.sendError(newSQLError(codeConnRefused, "switchyard: cannot reach %s to kill thread %d: %v", bc.backend.Addr, bc.threadID, err))
			return nil
		}
	}
	if !query {
		target.cut()
	}
	return s.sendOK()
}

// testHookKillAimed, when set by tests, runs between marking the connection
// a KILL is aimed at and sending the KILL.
var testHookKillAimed func(target *session, bc *backendConn)

// A KILL names a server thread, and a multiplexed session's connection can
// pass to another session at the end of any statement: between the moment
// KILL looks at the connection running the target's command and the moment
// the server gets the KILL, that connection may have started another
// session's statement. So KILL marks the connection first, under its pool's
// lock and only while the target holds it; userPool.put closes a marked
// connection instead of handing it on, and the KILL goes out only if the
// target still holds the connection.

// aim returns the connection running target's command, marked as the aim of
// a KILL until unaim; nil when the target runs nothing, or when the
// connection it ran on is no longer its own.
func aim(target *session) *backendConn {
	bc := target.active.Load()
	if bc == nil {
		return nil
	}
	p := bc.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inUse[bc] != target {
		return nil
	}
	if p.aimed == nil {
		p.aimed = make(map[*backendConn]int)
	}
	p.aimed[bc]++
	return bc
}

// unaim takes away a mark aim made.
func (p *userPool) unaim(bc *backendConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.aimed[bc]--; p.aimed[bc] <= 0 {
		delete(p.aimed, bc)
	}
}

// heldBy reports whether s holds bc.
func (p *userPool) heldBy(bc *backendConn, s *session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse[bc] == s
}

// cut ends the target of KILL CONNECTION from the killer's goroutine: its
// client connection closes, and so does the connection of the command it
// runs now, if any, marked meanwhile so that it is still the target's.
func (target *session) cut() {
	target.client.nc.Close()
	if bc := aim(target); bc != nil {
		bc.nc.Close()
		bc.pool.unaim(bc)
	}
}

// killBackendThread runs KILL [QUERY] on the server thread of bc, which aim
// marked, over a new connection as the session's user (who owns the
// thread). When target no longer holds bc (it let go of it meanwhile, and
// put closed it), nothing of the target's runs there: no KILL goes out.
func (s *session) killBackendThread(target *session, bc *backendConn, query bool) error {
	if !bc.pool.heldBy(bc, target) {
		return nil
	}
	key := poolKey{user: s.cred.user, caps: 0}
	kc, err := dialBackend(context.Background(), bc.backend, key, s.cred, "", s.srv.o().Pool.Connect)
	if err != nil {
		return err
	}
	defer kc.Close()
	kc.timeout = s.srv.o().BackendTimeout // roundTrip's deadline
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
