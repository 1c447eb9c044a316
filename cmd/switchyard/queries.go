package main

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/switchyard-db/switchyard/proxy"
)

// defaultQueriesLimit is how many digests GET /api/queries answers without
// a limit parameter.
const defaultQueriesLimit = 100

// queries serves GET /api/queries?sort=total|count|errors|max|last_seen&limit=N:
// the statement digests, most first by sort (default total latency), at
// most N (default 100; 0 means all).
func (a *admin) queries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultQueriesLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "limit: want a number of digests, 0 or more")
			return
		}
		limit = n
	}
	rep, err := a.opts.Proxy.Digests(q.Get("sort"), limit)
	if errors.Is(err, proxy.ErrUnknownSort) {
		writeError(w, http.StatusBadRequest, "sort: "+err.Error())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// resetQueries serves POST /api/queries/reset: every digest is forgotten.
func (a *admin) resetQueries(w http.ResponseWriter, r *http.Request) {
	a.opts.Proxy.ResetDigests()
	a.log.Info("statement digests reset through the admin API", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
}
