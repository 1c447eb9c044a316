package proxy

import (
	"errors"
	"testing"

	"github.com/switchyard-db/switchyard/router"
)

// TestKillArgs checks what the proxy reads from the router's classification
// of KILL: the forms it serves, and ER_NOT_SUPPORTED_YET (errKillForm) for
// the others, never a statement for a backend.
func TestKillArgs(t *testing.T) {
	for _, tc := range []struct {
		sql   string
		id    uint32
		query bool
		err   error
	}{
		{"KILL 42", 42, false, nil},
		{"kill connection 42;", 42, false, nil},
		{"KILL HARD QUERY 7", 7, true, nil},
		{"KILL SOFT 0", 0, false, nil},
		{"/* switchyard:route=replica */ KILL 9", 9, false, nil},
		{"KILL 4294967296", 0, false, errKillForm},
		{"KILL USER app", 0, false, errKillForm},
		{"KILL QUERY ID 42", 0, true, errKillForm},
		{"KILL CONNECTION_ID()", 0, false, errKillForm},
		{"KILL 1; SELECT 1", 0, false, errKillForm},
		{"SELECT 1; KILL 1", 0, false, errKillForm},
	} {
		c := router.Classify(tc.sql)
		if c.Kind != router.KindKill {
			t.Errorf("Classify(%q) = %v, want a KILL", tc.sql, c)
			continue
		}
		id, query, err := killArgs(c)
		if id != tc.id || query != tc.query || !errors.Is(err, tc.err) {
			t.Errorf("killArgs(Classify(%q)) = %d, %v, %v, want %d, %v, %v", tc.sql, id, query, err, tc.id, tc.query, tc.err)
		}
	}
}
