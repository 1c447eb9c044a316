package proxy

import (
	"strings"
	"time"
)

// Replicas should be read-only on the server (read_only, or super_read_only
// on MySQL) and application users should not hold the privilege that
// bypasses it. Switchyard does not depend on either: every connection it
// reads through is read-only itself (backendConn.setReadOnly). But a
// replica that the application's user can write to is one careless client
// away from diverging, so Switchyard checks and warns.

// writableRecheck is how often a pool's replica is checked again.
const writableRecheck = time.Minute

// checkWritable checks, at most once a writableRecheck per pool, whether
// the server behind bc (a connection taken for reads) is writable by the
// pool's user, and reports it in a log line, the switchyard_replica_writable
// gauge and Backends. It makes one round trip on bc, which the caller holds.
func (s *Server) checkWritable(p *userPool, bc *backendConn) {
	now := time.Now().UnixNano()
	if at := p.writableAt.Load(); at != 0 && now-at < int64(writableRecheck) {
		return
	}
	p.writableAt.Store(now)
	v, err := bc.queryValue(writableQuery(bc.version))
	if err != nil {
		s.log.Debug("replica writability check failed", "backend", p.backend.Name, "user", p.user, "err", err)
		return
	}
	writable := int32(0)
	if v == "1" {
		writable = 1
	}
	if old := p.writable.Swap(writable); old != writable && writable == 1 {
		s.log.Warn("replica is writable by the application's user: read_only is off or the user's privileges bypass it; Switchyard's own connections there are read-only, but other clients of that user could change its data",
			"backend", p.backend.Name, "user", p.user)
	}
	s.m.writable.WithLabelValues(p.backend.Name, p.user).Set(float64(writable))
}

// writableQuery answers 1 when the current user can change data on the
// server: read_only is off, or the user holds what bypasses it (READ ONLY
// ADMIN on MariaDB 10.11 and later, SUPER before; SUPER or CONNECTION_ADMIN
// on MySQL unless super_read_only is on).
func writableQuery(version string) string {
	const has = "EXISTS (SELECT 1 FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE IN (%s))"
	if isMariaDB(version) {
		bypass := "'READ ONLY ADMIN'"
		if mariaDBBefore1011(version) {
			bypass = "'SUPER', 'READ ONLY ADMIN'"
		}
		return "SELECT @@GLOBAL.read_only = 0 OR " + strings.Replace(has, "%s", bypass, 1)
	}
	return "SELECT @@GLOBAL.read_only = 0 OR (@@GLOBAL.super_read_only = 0 AND " +
		strings.Replace(has, "%s", "'SUPER', 'CONNECTION_ADMIN'", 1) + ")"
}

// mariaDBBefore1011 reports a MariaDB version string older than 10.11, where
// SUPER still let a user write on a read_only server.
func mariaDBBefore1011(version string) bool {
	version = strings.TrimPrefix(version, "5.5.5-") // the old replication-compatible prefix
	var major, minor int
	for i, part := range strings.SplitN(version, ".", 3) {
		n := 0
		for _, c := range part {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		switch i {
		case 0:
			major = n
		case 1:
			minor = n
		}
	}
	return major < 10 || major == 10 && minor < 11
}

// writableBy lists the users for whom the backend was last seen writable.
func (b *Backend) writableBy() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for user, p := range b.pools {
		if p.writable.Load() == 1 {
			out = append(out, user)
		}
	}
	return out
}
