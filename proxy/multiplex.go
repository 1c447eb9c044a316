package proxy

import (
	"encoding/binary"
	"errors"
	"os"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Multiplexing: a session whose client has gone quiet gives its backend
// connections back to the pool, so that many mostly idle clients share few
// server connections; while other sessions wait for a connection, a session
// gives its connections back after every statement, so that busy clients
// share them too. It only does so when nothing lives on those connections
// alone: no transaction, no pins (temporary tables, locks, SQL prepared
// statements), no user variables, autocommit on, no open cursor, no
// warnings left from the last statement, and no SQL_CALC_FOUND_ROWS count
// that FOUND_ROWS() may ask for next. Session variables and the database
// follow the session to whatever connection serves it next (see sync); so
// does LAST_INSERT_ID(). Binary prepared statements stay on the connection
// for the next session that runs the same text (see stmtOn); the session
// prepares them again where they next run.

// handBackWhenIdle waits for the client's next command, holding the
// session's connections. If other sessions wait for one of them, or the
// client stays quiet for Pool.ReleaseIdle (Server.wakeParkedLoop watches; a
// negative ReleaseIdle turns that off), and the session can let go of them,
// it hands them back (handBack). It returns the client read error, if any:
// the caller deals with it as with the command's.
func (s *session) handBackWhenIdle(now time.Time) error {
	if !s.holdsConns() || !s.canHandBack() {
		return nil
	}
	if s.contended() {
		s.handBack()
		return nil
	}
	if s.client.br.Buffered() > 0 {
		return nil // the next command is here
	}
	// Wakers set the read deadline under parkMu while parkedAt is set, so
	// none can come after the session stopped waiting.
	s.parkMu.Lock()
	s.woken = false
	s.parkedAt.Store(now.UnixNano())
	s.parkMu.Unlock()
	_, err := s.client.br.Peek(1)
	s.parkMu.Lock()
	woken := s.woken
	s.woken = false
	s.parkedAt.Store(0)
	s.parkMu.Unlock()
	if !woken {
		return err
	}
	// The waker moved the read deadline: put it back.
	s.deadline, s.idleUntil = true, time.Time{}
	s.idleDeadline(time.Now())
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	s.handBack()
	return nil
}

func (s *session) holdsConns() bool { return s.primary != nil || len(s.replicas) > 0 }

// contended reports whether another session waits for a connection to a
// backend this session holds one to.
func (s *session) contended() bool {
	if poolWaiters.Load() == 0 {
		return false // no session waits for any pool
	}
	if s.primary != nil && s.primary.pool.contended() {
		return true
	}
	for _, bc := range s.replicas {
		if bc.pool.contended() {
			return true
		}
	}
	return false
}

// canHandBack reports whether every piece of the session's state can follow
// it to other connections.
func (s *session) canHandBack() bool {
	if s.inTransaction() || s.route.Pins != 0 || s.route.UserVars || !s.route.Autocommit || s.cursor || s.warnings != 0 || s.route.FoundRows {
		return false
	}
	if s.longPending {
		for _, st := range s.stmts {
			if st.pendingLong {
				return false
			}
		}
		s.longPending = false
	}
	return true
}

// handBack gives the session's connections back to their pools as they
// are, without a reset (compare resetAndPut), keeping what is needed to
// bring another connection to the same state.
func (s *session) handBack() {
	for _, bc := range s.conns() {
		for _, st := range s.stmts {
			ss := st.on[bc]
			if ss == nil {
				continue
			}
			delete(st.on, bc)
			if st.last == bc {
				st.last = nil
			}
			if !bc.broken && !ss.shared {
				bc.seq = 0
				p := binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_CLOSE}, ss.id)
				if bc.writePacket(p) != nil || bc.flush() != nil {
					bc.broken = true
				}
			}
		}
		bc.pool.put(bc)
	}
	s.primary, s.last, s.txConn = nil, nil, nil
	clear(s.replicas)
	s.srv.m.released.Inc()
}
