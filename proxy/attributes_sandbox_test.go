package proxy

import (
	"slices"
	"testing"
)

// TestBackendConnectionAttributes checks, on a server with the performance
// schema (MySQL's default), that the backend connections serving a client
// name Switchyard and not the client: a connection serves many clients one
// after another, so the client's own attributes stay in Switchyard's session
// list (TestSessionsListAttributes) instead.
func TestBackendConnectionAttributes(t *testing.T) {
	p := startProxy(t, nil)
	db := p.db(t, appUser, appPass, "connectionAttributes=app_role:checkout")
	db.SetMaxOpenConns(1)
	var name, ps string
	if err := db.QueryRow("SHOW VARIABLES LIKE 'performance_schema'").Scan(&name, &ps); err != nil {
		t.Fatal(err)
	}
	if ps != "ON" {
		t.Skipf("performance_schema is %s on %s (MariaDB's default): the server keeps no connection attributes", ps, p.sb.Engine())
	}
	for _, route := range []string{"primary", "replica"} {
		rows, err := db.Query("/* switchyard:route=" + route + " */ SELECT ATTR_NAME, ATTR_VALUE FROM performance_schema.session_connect_attrs WHERE PROCESSLIST_ID = CONNECTION_ID()")
		if err != nil {
			t.Fatal(err)
		}
		attrs := map[string]string{}
		for rows.Next() {
			var n, v string
			if err := rows.Scan(&n, &v); err != nil {
				t.Fatal(err)
			}
			attrs[n] = v
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if attrs["_client_name"] != "switchyard" || attrs["program_name"] != "switchyard" || attrs["_pid"] == "" {
			t.Errorf("%s connection attributes %v, want _client_name and program_name switchyard, and _pid", route, attrs)
		}
		if _, ok := attrs["app_role"]; ok {
			t.Errorf("%s connection carries the client's own attribute: %v", route, attrs)
		}
	}
	if s := p.Sessions(); len(s) != 1 || !slices.Contains(s[0].Attributes, Attribute{"app_role", "checkout"}) {
		t.Errorf("Sessions() = %+v, want the client's app_role attribute", s)
	}
}
