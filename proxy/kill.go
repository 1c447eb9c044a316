package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/router"
)

// KILL names Switchyard's connection ids, the ones clients saw in the
// greeting. The router recognises the statement (router.KindKill);
// Switchyard finds the session, checks that it belongs to the same user,
// and kills the backend thread serving it.

// errKillForm reports a KILL form Switchyard does not translate.
var errKillForm = errors.New("only KILL [HARD|SOFT] [CONNECTION|QUERY] <id> is supported through switchyard")

// killArgs returns the connection id and the form of the KILL the router
// classified as c (router.KindKill). err is errKillForm for a form
// Switchyard does not serve (no Name), or an id beyond its 32-bit
// connection ids.
func killArgs(c router.Class) (id uint32, query bool, err error) {
	query = c.Flags&router.FlagKillQuery != 0
	n, perr := strconv.ParseUint(c.Name, 10, 32)
	if perr != nil {
		return 0, query, errKillForm
	}
	return uint32(n), query, nil
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
	target.clientConn().Close()
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
	kc, err := dialBackend(context.Background(), bc.backend, key, s.cred, "", s.srv.opts().Pool.Connect)
	if err != nil {
		return err
	}
	defer kc.Close()
	kc.timeout = s.srv.opts().BackendTimeout // roundTrip's deadline
	verb := "KILL CONNECTION "
	if query {
		verb = "KILL QUERY "
	}
	res, err := kc.roundTrip(append([]byte{mysql.COM_QUERY}, fmt.Sprintf("%s%d", verb, bc.threadID)...))
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
