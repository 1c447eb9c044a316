package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWritesOnPrimary: a write through either framework is answered by the
// primary (the app reports @@server_id from inside the write's transaction),
// the row is on the primary, and replication copies it to both replicas.
func TestWritesOnPrimary(t *testing.T) {
	requireStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newSiteClient(10 * time.Second)
	for _, w := range []struct{ path, framework string }{{"/visits", "flask"}, {"/django/visits", "django"}} {
		path := w.path
		r, err := siteDo(ctx, c, http.MethodPost, path, http.StatusCreated)
		if err != nil {
			t.Fatal(err)
		}
		if r.Write == nil {
			t.Fatalf("POST %s: no write server in %+v", path, r)
		}
		if want := serverIDs["db-primary"]; r.Write.ServerID != want {
			t.Errorf("POST %s: write answered by server_id %d (%s), want the primary's %d", path, r.Write.ServerID, r.Write.Hostname, want)
		}
		query := fmt.Sprintf("SELECT framework FROM app.visits WHERE id = %d", r.ID)
		got, err := dbQuery(ctx, "db-primary", query)
		if err != nil {
			t.Fatal(err)
		}
		if got = strings.TrimSpace(got); got != w.framework {
			t.Errorf("POST %s: row %d on the primary has framework %q, want %q", path, r.ID, got, w.framework)
		}
		for _, replica := range []string{"db-replica1", "db-replica2"} {
			err := eventually(10*time.Second, 100*time.Millisecond, func() error {
				out, err := dbQuery(ctx, replica, query)
				if err != nil {
					return err
				}
				if strings.TrimSpace(out) == "" {
					return fmt.Errorf("row %d not replicated to %s", r.ID, replica)
				}
				return nil
			})
			if err != nil {
				t.Errorf("POST %s: %v", path, err)
			}
		}
	}
}

// TestReadsOnReplicas: reads (autocommit SELECTs) through Switchyard are
// answered by the replicas, not the primary.
func TestReadsOnReplicas(t *testing.T) {
	requireStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newSiteClient(10 * time.Second)
	byServer := map[string]int{}
	for i := 0; i < 20; i++ {
		for _, path := range []string{"/", "/django/"} {
			r, err := siteDo(ctx, c, http.MethodGet, path, http.StatusOK)
			if err != nil {
				t.Fatal(err)
			}
			byServer[r.Read.Hostname]++
			if r.Read.ServerID == serverIDs["db-primary"] {
				continue
			}
			if r.Read.ServerID != serverIDs["db-replica1"] && r.Read.ServerID != serverIDs["db-replica2"] {
				t.Errorf("GET %s: read answered by unknown server_id %d (%s)", path, r.Read.ServerID, r.Read.Hostname)
			}
		}
	}
	t.Logf("40 reads answered by %v", byServer)
	if n := byServer["db-primary"]; n > 0 {
		t.Errorf("%d of 40 reads answered by the primary, want all on the replicas (%v)", n, byServer)
	}
}

// TestReplicaStopNoFailedRequests: stopping a replica under a steady mix of
// reads and writes fails no request, and the replica catches up when it
// comes back.
func TestReplicaStopNoFailedRequests(t *testing.T) {
	requireStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	defer ensureRunning(t, "db-replica1")

	l := startLoad(2, 20*time.Millisecond, 10*time.Second, mixedRequests)
	if err := l.waitRequests(20, 30*time.Second); err != nil {
		l.stop()
		t.Fatal(err)
	}
	stopStart := time.Now()
	if out, err := compose(ctx, "stop", "db-replica1"); err != nil {
		l.stop()
		t.Fatalf("docker compose stop db-replica1: %v\n%s", err, out)
	}
	t.Logf("db-replica1 stopped in %s", time.Since(stopStart).Round(time.Millisecond))
	// Traffic while the replica is down.
	if err := l.waitRequests(100, time.Minute); err != nil {
		l.stop()
		t.Fatal(err)
	}
	if out, err := compose(ctx, "start", "db-replica1"); err != nil {
		l.stop()
		t.Fatalf("docker compose start db-replica1: %v\n%s", err, out)
	}
	waitHealthy(t, 2*time.Minute, "db-replica1")
	if err := l.waitRequests(40, time.Minute); err != nil {
		l.stop()
		t.Fatal(err)
	}
	outs := l.stop()
	s := summarize(outs)
	t.Logf("replica stop and start: %s", s)
	if s.failed > 0 {
		t.Errorf("%d of %d requests failed while db-replica1 stopped and started; first: %s", s.failed, s.total, strings.Join(s.firstErrors, "; "))
	}
	readers := map[string]int{}
	for _, o := range outs {
		if o.err == nil && o.resp.Read != nil {
			readers[o.resp.Read.Hostname]++
		}
	}
	t.Logf("reads answered by %v", readers)

	// The replica catches up with every write made while it was down.
	err := eventually(30*time.Second, 200*time.Millisecond, func() error {
		p, err := dbQuery(ctx, "db-primary", "SELECT @@gtid_binlog_pos")
		if err != nil {
			return err
		}
		r, err := dbQuery(ctx, "db-replica1", "SELECT @@gtid_slave_pos")
		if err != nil {
			return err
		}
		if strings.TrimSpace(p) != strings.TrimSpace(r) {
			return fmt.Errorf("db-replica1 at GTID %q, primary at %q", strings.TrimSpace(r), strings.TrimSpace(p))
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
