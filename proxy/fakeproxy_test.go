package proxy

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/replication"
)

// fakeProxy is a Server in front of fake backends: a primary and replicas,
// each a fakeServer the test scripts.
type fakeProxy struct {
	*Server
	addr     string
	primary  *fakeServer
	replicas []*fakeServer
}

// startFakeProxy starts fake servers, a primary and n replicas (named
// primary, replica1...), and a proxy in front of them; mod may adjust the
// options first. Everything stops when the test ends: the proxy first.
func startFakeProxy(t *testing.T, n int, mod func(*Options)) *fakeProxy {
	t.Helper()
	fp := &fakeProxy{primary: startFake(t, nil)}
	opts := testOptions(t)
	opts.ServerVersion = fakeVersion // no greeting probe of the primary
	opts.Backends = []*Backend{{Name: "primary", Addr: fp.primary.addr, Role: replication.RolePrimary, Weight: 1}}
	for i := range n {
		f := startFake(t, nil)
		fp.replicas = append(fp.replicas, f)
		opts.Backends = append(opts.Backends, &Backend{Name: fmt.Sprintf("replica%d", i+1), Addr: f.addr, Role: replication.RoleReplica, Weight: 1})
	}
	if mod != nil {
		mod(&opts)
	}
	fp.Server, fp.addr = serveProxy(t, opts)
	return fp
}

// db opens a go-sql-driver pool of at most one connection through the
// proxy as appUser, closed when the test ends.
func (fp *fakeProxy) db(t *testing.T, params string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/?timeout=5s&readTimeout=30s&%s", appUser, appPass, fp.addr, params))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// login logs in through the proxy with rawClient, as appUser without a database.
func (fp *fakeProxy) login(t *testing.T, caps uint32) *rawClient {
	t.Helper()
	return loginRaw(t, fp.addr, appUser, appPass, "", caps)
}

// answer scripts f to answer the query q with r; other commands get the
// defaults.
func answer(q string, r fakeReply) fakeScript {
	return func(_ *fakeConn, cmd fakeCommand) fakeReply {
		if cmd.cmd == mysql.COM_QUERY && cmd.text == q {
			return r
		}
		return nil
	}
}

// rowsOf builds a one-column result set.
func rowsOf(column string, values ...any) fakeRows {
	r := fakeRows{columns: []string{column}, status: fakeIdle}
	for _, v := range values {
		r.rows = append(r.rows, []any{v})
	}
	return r
}

// queryString runs a one-value query through db.
func queryString(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	var v string
	if err := db.QueryRow(q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}
