package proxy

import (
	"cmp"
	"slices"
	"time"
)

// SessionInfo describes a logged-in client session, for the admin API.
//
// Connection attributes stay here, in Switchyard's own session list, rather
// than being forwarded to backends: backend connections are shared by many
// clients one after another, so a server's performance_schema would show one
// client's attributes on statements of others. Backend connections carry
// Switchyard's own attributes instead (program_name=switchyard).
type SessionInfo struct {
	ID         uint32      `json:"id"` // the connection id in Switchyard's greeting, which KILL takes
	User       string      `json:"user"`
	Client     string      `json:"client"` // the client's address
	TLS        bool        `json:"tls"`
	Since      time.Time   `json:"since"`      // login
	Attributes []Attribute `json:"attributes"` // as the client sent them at login or COM_CHANGE_USER
}

// Sessions lists the logged-in client sessions, oldest first.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	out := make([]SessionInfo, 0, len(s.sessions))
	for _, sess := range s.sessions {
		if info := sess.info.Load(); info != nil {
			out = append(out, *info)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b SessionInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
