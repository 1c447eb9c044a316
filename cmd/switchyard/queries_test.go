package main

import (
	"net/http"
	"testing"
)

func TestAdminQueries(t *testing.T) {
	f := newAdminFixture(t, "admin:\n  token: \""+testToken+"\"\n", nil)
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/queries", "", http.StatusUnauthorized},
		{"POST", "/api/queries/reset", "wrong", http.StatusUnauthorized},
		{"GET", "/api/queries", testToken, http.StatusOK},
		{"GET", "/api/queries?sort=count&limit=5", testToken, http.StatusOK},
		{"GET", "/api/queries?sort=last_seen&limit=0", testToken, http.StatusOK},
		{"GET", "/api/queries?sort=text", testToken, http.StatusBadRequest},
		{"GET", "/api/queries?limit=-1", testToken, http.StatusBadRequest},
		{"GET", "/api/queries?limit=many", testToken, http.StatusBadRequest},
		{"POST", "/api/queries", testToken, http.StatusMethodNotAllowed},
		{"POST", "/api/queries/reset", testToken, http.StatusOK},
	} {
		if w := f.do(tc.method, tc.path, tc.token); w.Code != tc.want {
			t.Errorf("%s %s with token %q: status %d, want %d; body %s", tc.method, tc.path, tc.token, w.Code, tc.want, w.Body)
		}
	}
	var rep map[string]any
	decode(t, f.do("GET", "/api/queries", testToken), &rep)
	if d, ok := rep["digests"].([]any); !ok || len(d) != 0 || rep["limit"] != 1000.0 || rep["tracked"] != 0.0 || rep["evicted"] != 0.0 {
		t.Errorf("GET /api/queries = %v, want no digests, limit 1000 (the default digests.max)", rep)
	}
	var e struct{ Error string }
	decode(t, f.do("GET", "/api/queries?sort=text", testToken), &e)
	if e.Error == "" {
		t.Errorf("an unknown sort has no error message")
	}
	// A reload changes the bound.
	f.write("admin:\n  token: \"" + testToken + "\"\ndigests:\n  max: 0\n")
	if w := f.do("POST", "/api/reload", testToken); w.Code != http.StatusOK {
		t.Fatalf("reload: %d %s", w.Code, w.Body)
	}
	decode(t, f.do("GET", "/api/queries", testToken), &rep)
	if rep["limit"] != 0.0 {
		t.Errorf("after digests.max: 0, limit = %v", rep["limit"])
	}
}
