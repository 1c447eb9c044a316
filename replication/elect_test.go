package replication

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestElect(t *testing.T) {
	w := func(name string) candidate { return candidate{name: name, known: true} }
	ro := func(name string) candidate { return candidate{name: name, known: true, readOnly: true} }
	gone := func(name string) candidate { return candidate{name: name} } // unreachable
	hint := func(c candidate, r Role) candidate { c.hint = r; return c }
	tests := []struct {
		name     string
		prev     string
		conflict bool // the previous election saw a conflict
		cs       []candidate
		want     election
	}{
		{"one writable", "", false, []candidate{w("a"), ro("b"), ro("c")}, election{primary: "a", writable: []string{"a"}}},
		{"steady", "a", false, []candidate{w("a"), ro("b")}, election{primary: "a", writable: []string{"a"}}},
		{"switchover followed", "a", false, []candidate{ro("a"), w("b"), ro("c")}, election{primary: "b", writable: []string{"b"}}},
		{"old primary demoted first: no primary", "a", false, []candidate{ro("a"), ro("b")}, election{}},
		{"primary unreachable: kept", "a", false, []candidate{gone("a"), ro("b")}, election{primary: "a"}},
		{"failover after primary died", "a", false, []candidate{gone("a"), w("b"), ro("c")}, election{primary: "b", writable: []string{"b"}}},
		{"new replica promoted first: conflict, old kept", "a", false, []candidate{w("a"), w("b")},
			election{primary: "a", conflict: true, writable: []string{"a", "b"}}},
		{"dead primary restarted writable after failover: new kept", "b", false, []candidate{w("a"), w("b")},
			election{primary: "b", conflict: true, writable: []string{"a", "b"}}},
		{"conflict without a writable last primary: none", "a", false, []candidate{ro("a"), w("b"), w("c")},
			election{conflict: true, writable: []string{"b", "c"}}},
		{"conflict at start: none", "", false, []candidate{w("a"), w("b")}, election{conflict: true, writable: []string{"a", "b"}}},
		{"nothing known", "", false, []candidate{gone("a"), gone("b")}, election{}},
		{"replica hint never primary", "", false, []candidate{hint(w("a"), RoleReplica), ro("b")}, election{}},
		{"replica hint is no conflict", "b", false, []candidate{hint(w("a"), RoleReplica), w("b")}, election{primary: "b", writable: []string{"b"}}},
		{"pinned primary even read-only", "", false, []candidate{hint(ro("a"), RolePrimary), w("b")}, election{primary: "a", writable: []string{"b"}}},
		{"pinned primary even unreachable", "", false, []candidate{hint(gone("a"), RolePrimary), w("b")}, election{primary: "a", writable: []string{"b"}}},
		{"conflict survives the primary timing out", "a", true, []candidate{gone("a"), w("b")},
			election{primary: "a", conflict: true, writable: []string{"b"}}},
		{"conflict resolved by demoting the other", "a", true, []candidate{w("a"), ro("b")}, election{primary: "a", writable: []string{"a"}}},
		{"conflict resolved by demoting the primary", "a", true, []candidate{ro("a"), w("b")}, election{primary: "b", writable: []string{"b"}}},
	}
	for _, tt := range tests {
		got := elect(tt.prev, tt.conflict, tt.cs)
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(election{})); diff != "" {
			t.Errorf("%s: elect(%q) mismatch (-want +got):\n%s", tt.name, tt.prev, diff)
		}
	}
}
