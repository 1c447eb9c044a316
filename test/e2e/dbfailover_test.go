package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDatabaseFailover kills db-primary (`docker compose kill`) while the
// Flask and Django apps take writes and reads through both Switchyards:
// one of them promotes a replica (the other follows), writes resume through
// it, every write the apps acknowledged (a ledger of the ids they answered
// with) is on the new primary, and no read fails. Then db-primary starts
// again and rejoins as a replica of the new primary; a planned switchover
// puts it back in charge, under load, without a failed request, so the
// tests after this one find the stack as it was.
func TestDatabaseFailover(t *testing.T) {
	requireStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	defer ensureRunning(t, "db-primary")
	oldID := serverIDs["db-primary"]
	serviceOf := map[int]string{}
	for svc, id := range serverIDs {
		serviceOf[id] = svc
	}

	l := startLoad(4, 20*time.Millisecond, 20*time.Second, mixedRequests)
	if err := l.waitRequests(40, time.Minute); err != nil {
		l.stop()
		t.Fatal(err)
	}
	killed := time.Now()
	if out, err := compose(ctx, "kill", "db-primary"); err != nil {
		l.stop()
		t.Fatalf("docker compose kill db-primary: %v\n%s", err, out)
	}
	var primary string
	err := eventually(90*time.Second, 100*time.Millisecond, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, o := range l.outcomes {
			if o.err == nil && o.at.After(killed) && o.resp.Write != nil && o.resp.Write.ServerID != oldID {
				primary = serviceOf[o.resp.Write.ServerID]
				return nil
			}
		}
		return errors.New("no write answered by another server since the kill")
	})
	if err == nil {
		err = l.waitRequests(80, time.Minute)
	}
	outs := l.stop()
	if err != nil {
		t.Fatalf("after docker compose kill db-primary: %v (%s)", err, summarize(outs))
	}
	if primary == "" || primary == "db-primary" {
		t.Fatalf("writes resumed on %q", primary)
	}

	// The ledger, and what the clients saw.
	var ids []string
	var readFails, writeFails []string
	var lastWrite time.Time
	var writeGap time.Duration
	for _, o := range outs {
		write := o.req.method == http.MethodPost
		switch {
		case o.err != nil && write:
			writeFails = append(writeFails, o.at.Format("15:04:05.000")+" "+o.err.Error())
		case o.err != nil:
			readFails = append(readFails, o.at.Format("15:04:05.000")+" "+o.req.path+": "+o.err.Error())
		case write:
			ids = append(ids, fmt.Sprint(o.resp.ID))
			end := o.at.Add(o.latency)
			if !lastWrite.IsZero() && end.After(killed) && end.Sub(lastWrite) > writeGap {
				writeGap = end.Sub(lastWrite)
			}
			if end.After(lastWrite) {
				lastWrite = end
			}
		}
	}
	got, err := dbQuery(ctx, primary, "SELECT COUNT(*) FROM app.visits WHERE id IN ("+strings.Join(ids, ",")+")")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(got) != fmt.Sprint(len(ids)) {
		t.Errorf("%s of %d acknowledged writes are on the new primary %s", strings.TrimSpace(got), len(ids), primary)
	}
	if len(readFails) > 0 {
		t.Errorf("%d reads failed during the failover: %s", len(readFails), strings.Join(readFails[:min(5, len(readFails))], "; "))
	}
	t.Logf("DB FAILOVER (docker compose kill db-primary): %s promoted; writes stopped for %s; %d acknowledged writes all on %s; %d writes failed (in flight at the kill) %v; %d reads failed",
		primary, writeGap.Round(time.Millisecond), len(ids), primary, len(writeFails), writeFails[:min(3, len(writeFails))], len(readFails))
	for _, sy := range []string{"switchyard1", "switchyard2"} {
		if n := strings.Count(switchyardLog(ctx, sy), "failover done"); n > 0 {
			t.Logf("%s made the failover", sy)
		}
	}

	// db-primary comes back as a replica of the new primary.
	if out, err := compose(ctx, "start", "db-primary"); err != nil {
		t.Fatalf("docker compose start db-primary: %v\n%s", err, out)
	}
	err = eventually(2*time.Minute, 250*time.Millisecond, func() error {
		ro, err := dbQuery(ctx, "db-primary", "SELECT @@read_only")
		if err != nil {
			return err
		}
		status, err := composeOutput(ctx, "exec", "-T", "db-primary", "mariadb", "-e", "SHOW REPLICA STATUS\\G")
		if err != nil {
			return err
		}
		if strings.TrimSpace(ro) != "1" || !strings.Contains(status, "Master_Host: "+dbAddrs[primary]) ||
			!strings.Contains(status, "Slave_IO_Running: Yes") || !strings.Contains(status, "Slave_SQL_Running: Yes") {
			return fmt.Errorf("db-primary: read_only %s, replica status:\n%s", strings.TrimSpace(ro), status)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("db-primary did not rejoin as a replica of %s: %v", primary, err)
	}
	waitHealthy(t, 2*time.Minute, "db-primary")

	// Back to db-primary with a planned switchover, under load.
	if err := waitUsable(ctx, "switchyard1", "db-primary"); err != nil {
		t.Fatal(err)
	}
	l = startLoad(4, 20*time.Millisecond, 20*time.Second, mixedRequests)
	if err := l.waitRequests(20, time.Minute); err != nil {
		l.stop()
		t.Fatal(err)
	}
	var out string
	for deadline := time.Now().Add(time.Minute); ; {
		out, err = composeOutput(ctx, "exec", "-T", "switchyard1", "switchyard", "switchover",
			"-config", "/etc/switchyard/switchyard.yaml", "-to", "db-primary")
		// A replica lagging for a moment (a busy machine) is refused: ask again.
		if err == nil || !strings.Contains(err.Error()+out, "lagging") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err == nil {
		err = l.waitRequests(40, time.Minute)
	}
	outs = l.stop()
	if err != nil {
		t.Fatalf("switchover back to db-primary: %v\n%s", err, out)
	}
	t.Logf("switchover back to db-primary:\n%s", out)
	if !strings.Contains(out, "in 1 other Switchyards") {
		t.Errorf("switchyard2 did not hold its writes during the switchover:\n%s", out)
	}
	// switchyard1 held its writes, and switchyard2 on its word: nothing
	// may fail, not even a transaction through switchyard2.
	failed := 0
	for _, o := range outs {
		if o.err != nil {
			failed++
			t.Errorf("%s %s failed during the switchover back: %v", o.req.method, o.req.path, o.err)
		}
	}
	t.Logf("switchover back under load: %d requests, %d failed", len(outs), failed)
	if id, err := dbQuery(ctx, "db-primary", "SELECT @@read_only"); err != nil || strings.TrimSpace(id) != "0" {
		t.Errorf("db-primary after the switchover back: read_only %q (%v), want 0", id, err)
	}
	waitHealthy(t, 2*time.Minute, dbServices...)
}

// dbAddrs are the database servers' addresses in compose.yaml, which
// replication and Switchyard use.
var dbAddrs = map[string]string{"db-primary": "172.30.2.51", "db-replica1": "172.30.2.52", "db-replica2": "172.30.2.53"}

// switchyardLog returns the logs of a Switchyard container.
func switchyardLog(ctx context.Context, service string) string {
	out, _ := compose(ctx, "logs", "--no-log-prefix", service)
	return out
}

// waitUsable waits until the Switchyard service sees the backend usable.
func waitUsable(ctx context.Context, service, backend string) error {
	const token = "admin-secret" // compose.yaml's default SWITCHYARD_ADMIN_TOKEN
	return eventually(2*time.Minute, 250*time.Millisecond, func() error {
		out, err := composeOutput(ctx, "exec", "-T", service, "curl", "-fsS", "--max-time", "5",
			"-H", "Authorization: Bearer "+token, "http://127.0.0.1:6034/api/backends")
		if err != nil {
			return err
		}
		var bs struct {
			Backends []struct {
				Name  string `json:"name"`
				State string `json:"state"`
			} `json:"backends"`
		}
		if err := json.Unmarshal([]byte(out), &bs); err != nil {
			return err
		}
		for _, b := range bs.Backends {
			if b.Name == backend && b.State == "usable" {
				return nil
			}
		}
		return fmt.Errorf("%s: %s not usable: %s", service, backend, truncate(out, 400))
	})
}
