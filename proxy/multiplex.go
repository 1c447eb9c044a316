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
// server connections. It only does so when nothing lives on those
// connections alone: no transaction, no pins (temporary tables, locks, SQL
// prepared statements), no user variables, autocommit on, no open cursor,
// and no warnings left from the last statement. Session variables and the
// database follow the session to whatever connection serves it next (see
// sync); so does LAST_INSERT_ID(). Binary prepared statements are closed on
// the connection and prepared again where they next run.

// releaseWhenIdle waits up to Pool.ReleaseIdle for the client's next
// command; if none comes and the session can let go of its connections, it
// releases them. It returns only client errors.
func (s *session) releaseWhenIdle() error {
	wait := s.srv.o().Pool.ReleaseIdle
	if wait < 0 || !s.holdsConns() || !s.canRelease() {
		return nil
	}
	_ = s.client.nc.SetReadDeadline(time.Now().Add(wait))
	_, err := s.client.br.Peek(1)
	if err == nil {
		return nil // the next command is here
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	s.releaseIdle()
	return nil
}

func (s *session) holdsConns() bool { return s.primary != nil || len(s.replicas) > 0 }

// canRelease reports whether every piece of the session's state can follow
// it to other connections.
func (s *session) canRelease() bool {
	if s.inTransaction() || s.route.Pins != 0 || s.route.UserVars || !s.route.Autocommit || s.cursor || s.warnings != 0 {
		return false
	}
	for _, st := range s.stmts {
		if st.pendingLong {
			return false
		}
	}
	return true
}

// releaseIdle hands the session's connections back to their pools, keeping
// what is needed to bring another connection to the same state.
func (s *session) releaseIdle() {
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
			if !bc.broken {
				bc.seq = 0
				p := binary.LittleEndian.AppendUint32([]byte{mysql.COM_STMT_CLOSE}, ss.id)
				if bc.writePacket(p) != nil || bc.flush() != nil {
					bc.broken = true
				}
			}
		}
		bc.backend.pool(s.cred.user, s.srv.o().Pool).put(bc)
	}
	s.primary, s.last, s.txConn = nil, nil, nil
	clear(s.replicas)
	s.srv.m.released.Inc()
}
