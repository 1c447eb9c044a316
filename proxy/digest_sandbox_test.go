package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDigestsCountWhatRan runs reads, writes, prepared reads and a failing
// read through the proxy and checks that the digests count them where
// @@server_id says they ran, without their literals.
func TestDigestsCountWhatRan(t *testing.T) {
	p := startProxy(t, func(o *Options) {
		eventual(o)
		o.Digests = 100
	})
	root := p.primaryDB(t)
	for _, q := range []string{"DROP DATABASE IF EXISTS dg", "CREATE DATABASE dg",
		"CREATE TABLE dg.t (id INT PRIMARY KEY, c VARCHAR(64))", "INSERT INTO dg.t VALUES (1, 'a'), (2, 'b'), (3, 'c')"} {
		if _, err := root.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() { _, _ = root.Exec("DROP DATABASE IF EXISTS dg") })
	c := p.session(t, "")
	exec(t, c, "USE dg")
	// The replicas have the rows once every server answers 3.
	for deadline := time.Now().Add(10 * time.Second); ; waitTick() {
		n := 0
		for _, srv := range p.sb.Servers() {
			db, err := p.sb.RootDB(srv)
			if err != nil {
				t.Fatal(err)
			}
			var k int
			if db.QueryRow("SELECT COUNT(*) FROM dg.t").Scan(&k) == nil && k == 3 {
				n++
			}
		}
		if n == len(p.sb.Servers()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replicas never got dg.t")
		}
	}
	p.ResetDigests()

	names := map[int]string{}
	for _, srv := range p.sb.Servers() {
		names[srv.ServerID] = srv.Name
	}
	ran := func(id int) string { return names[id] }
	selBackends, prepBackends := map[string]uint64{}, map[string]uint64{}
	for i := range 10 {
		var id int
		var v string
		q := fmt.Sprintf("SELECT @@server_id, c FROM t WHERE id = %d /* n=%d */", i%3+1, i)
		if err := c.QueryRowContext(context.Background(), q).Scan(&id, &v); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		selBackends[ran(id)]++
	}
	var affected int64
	for i := range 4 {
		res := exec(t, c, fmt.Sprintf("UPDATE t SET c = 'secret-%d-xyz' WHERE id = %d", i, i%3+1))
		n, _ := res.RowsAffected()
		affected += n
	}
	for i := range 5 {
		prepBackends[ran(serverID(t, c, "SELECT @@server_id FROM t WHERE id = ?", i%3+1))]++
	}
	if _, err := c.ExecContext(context.Background(), "SELECT nosuchcolumn FROM t WHERE c = 'hidden-value'"); err == nil {
		t.Fatal("a query of a missing column succeeded")
	}

	rep, err := p.Digests("count", 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.MarshalIndent(rep, "", "  ")
	t.Logf("digests: %s", raw)
	for _, secret := range []string{"secret", "xyz", "hidden", "n="} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the digests hold %q", secret)
		}
	}
	byText := map[string]DigestStats{}
	for _, d := range rep.Digests {
		if d.User != appUser || d.Schema != "dg" {
			t.Errorf("digest %q: user %q schema %q, want %s and dg", d.Text, d.User, d.Schema, appUser)
		}
		byText[d.Text] = d
	}
	check := func(text string, count, errs, rows, affected uint64, backends map[string]uint64, reason string) {
		t.Helper()
		d, ok := byText[text]
		if !ok {
			t.Errorf("no digest %q", text)
			return
		}
		if d.Count != count || d.Errors != errs || d.RowsSent != rows || d.RowsAffected != affected {
			t.Errorf("%q: count %d errors %d rows %d affected %d, want %d %d %d %d", text, d.Count, d.Errors, d.RowsSent,
				d.RowsAffected, count, errs, rows, affected)
		}
		if backends != nil && fmt.Sprint(d.Backends) != fmt.Sprint(backends) {
			t.Errorf("%q: backends %v, want %v (by @@server_id)", text, d.Backends, backends)
		}
		var onReplica uint64
		for name, n := range d.Backends {
			if name != p.sb.Primary.Name {
				onReplica += n
			}
		}
		if d.Routes["replica"] != onReplica || d.Routes["primary"]+d.Routes["replica"] != count {
			t.Errorf("%q: routes %v, backends %v", text, d.Routes, d.Backends)
		}
		if d.Reasons[reason] != count {
			t.Errorf("%q: reasons %v, want %d %s", text, d.Reasons, count, reason)
		}
		if d.MinUS == 0 || d.MinUS > d.MaxUS || d.P95US < d.MinUS || d.P95US > d.MaxUS || d.TotalUS < d.MaxUS ||
			d.FirstSeen.After(d.LastSeen) || len(d.ID) != 16 {
			t.Errorf("%q: inconsistent %+v", text, d)
		}
	}
	check("SELECT @@server_id, c FROM t WHERE id = ?", 10, 0, 10, 0, selBackends, "read")
	check("UPDATE t SET c = ? WHERE id = ?", 4, 0, 0, uint64(affected), map[string]uint64{p.sb.Primary.Name: 4}, "write")
	check("SELECT @@server_id FROM t WHERE id = ?", 5, 0, 5, 0, prepBackends, "read")
	check("SELECT nosuchcolumn FROM t WHERE c = ?", 1, 1, 0, 0, nil, "read")
	if len(rep.Digests) != 4 || rep.Tracked != 4 {
		t.Errorf("%d digests, want 4", len(rep.Digests))
	}
}
