package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/router"
)

// TestPoolTimeoutWrapsSentinel checks that a session that finds no free
// connection gets an ERR packet's error that errors.Is still matches to
// errPoolTimeout. No server is needed: the pool's only slot is taken.
func TestPoolTimeoutWrapsSentinel(t *testing.T) {
	b := &Backend{Name: "db1", Addr: "127.0.0.1:1", backendState: &backendState{}}
	p := b.pool("app", PoolOptions{MaxOpen: 1, WaitTimeout: 10 * time.Millisecond}.withDefaults())
	p.slots <- struct{}{}
	_, err := p.acquire(context.Background(), poolKey{user: "app"}, &credential{user: "app"}, "", nil)
	if !errors.Is(err, errPoolTimeout) {
		t.Errorf("acquire from a full pool: %v, want an error matching errPoolTimeout", err)
	}
	var se *sqlError
	if !errors.As(err, &se) || se.code != mysql.ER_CON_COUNT_ERROR || !strings.Contains(se.message, errPoolTimeout.Error()) {
		t.Errorf("acquire from a full pool: %#v, want ER_CON_COUNT_ERROR naming %q", err, errPoolTimeout)
	}
}

// TestNoReplicaWrapsSentinel checks the same for a read that cannot go to
// any replica when routing.no_replica is error.
func TestNoReplicaWrapsSentinel(t *testing.T) {
	srv, err := New(Options{
		Backends:       []*Backend{{Name: "db1", Addr: "127.0.0.1:1", Role: replication.RolePrimary, Weight: 1}},
		NoReplicaError: true,
		RSAKey:         testKey(),
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &session{srv: srv, log: srv.log}
	_, _, err = s.connFor(router.Decision{Target: router.TargetReplica, Reason: "read"})
	if !errors.Is(err, errNoReplica) {
		t.Errorf("connFor(replica) without replicas: %v, want an error matching errNoReplica", err)
	}
	var se *sqlError
	if !errors.As(err, &se) || se.code != mysql.ER_UNKNOWN_ERROR {
		t.Errorf("connFor(replica) without replicas: %#v, want ER_UNKNOWN_ERROR", err)
	}
}

// TestServerErrorWrapsNothing checks that a server's answer, passed through
// as it came, wraps nothing.
func TestServerErrorWrapsNothing(t *testing.T) {
	e := parseErr(appendErr(nil, newSQLError(mysql.ER_NO_SUCH_TABLE, "Table 't' doesn't exist")))
	if e.code != mysql.ER_NO_SUCH_TABLE || errors.Unwrap(e) != nil {
		t.Errorf("parsed ERR packet: %#v, want code %d wrapping nothing", e, mysql.ER_NO_SUCH_TABLE)
	}
}
