package sandbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandbox.Options{})) }

// open returns a pool for user on srv, closed when the test ends.
func open(t *testing.T, srv *sandbox.Server, user, password, db string) *sql.DB {
	t.Helper()
	conn, err := sql.Open("mysql", srv.DSN(user, password, db))
	if err != nil {
		t.Fatalf("open %s as %s: %v", srv.Name, user, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// errNumber returns the MySQL error number of err, or 0.
func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

func TestTopology(t *testing.T) {
	sb := sandboxtest.Require(t)
	t.Logf("%s started in %s", sb.Engine(), sb.StartupTime)
	if sb.Flavor != sandboxtest.Engine() || sb.Version == "" {
		t.Errorf("Flavor, Version = %q, %q, want %s and a version", sb.Flavor, sb.Version, sandboxtest.Engine())
	}
	servers := sb.Servers()
	if len(servers) != 3 || servers[0] != sb.Primary {
		t.Fatalf("Servers() = %d servers starting with %v, want primary + 2 replicas", len(servers), servers[0].Name)
	}
	ports := map[int]bool{}
	for i, srv := range servers {
		wantRole, wantName := sandbox.RoleReplica, fmt.Sprintf("replica%d", i)
		if i == 0 {
			wantRole, wantName = sandbox.RolePrimary, "primary"
		}
		if srv.Role != wantRole || srv.Name != wantName || srv.ServerID != i+1 {
			t.Errorf("server %d = %s/%s/id %d, want %s/%s/id %d", i, srv.Name, srv.Role, srv.ServerID, wantName, wantRole, i+1)
		}
		if ports[srv.Port] {
			t.Errorf("%s: port %d used twice", srv.Name, srv.Port)
		}
		ports[srv.Port] = true
		if srv.Addr() != fmt.Sprintf("127.0.0.1:%d", srv.Port) {
			t.Errorf("%s: Addr() = %q", srv.Name, srv.Addr())
		}
		if !strings.HasPrefix(srv.DataDir, sb.Dir) || !strings.HasPrefix(srv.Socket, srv.DataDir) {
			t.Errorf("%s: DataDir %q, Socket %q not under %q", srv.Name, srv.DataDir, srv.Socket, sb.Dir)
		}
		// The server itself agrees with the version its binary printed.
		db, err := sb.RootDB(srv)
		if err != nil {
			t.Fatal(err)
		}
		var version string
		if err := db.QueryRowContext(ctxTimeout(t, 10*time.Second), "SELECT @@version").Scan(&version); err != nil {
			t.Fatalf("%s: @@version: %v", srv.Name, err)
		}
		if isMariaDB := strings.Contains(version, "MariaDB"); !strings.HasPrefix(version, sb.Version) ||
			isMariaDB != (sb.Flavor == sandbox.FlavorMariaDB) {
			t.Errorf("%s: @@version = %q, want %s", srv.Name, version, sb.Engine())
		}
	}
}

// TestServerSettings checks the variables the issue asks for on every server: the
// common ones, and each engine's GTID and read-only settings.
func TestServerSettings(t *testing.T) {
	sb := sandboxtest.Require(t)
	ctx := ctxTimeout(t, 30*time.Second)
	for _, srv := range sb.Servers() {
		db, err := sb.RootDB(srv)
		if err != nil {
			t.Fatal(err)
		}
		readOnly := "0"
		if srv.Role == sandbox.RoleReplica {
			readOnly = "1"
		}
		want := map[string]string{
			"server_id":                      fmt.Sprint(srv.ServerID),
			"log_bin":                        "1",
			"binlog_format":                  "ROW",
			"max_allowed_packet":             fmt.Sprint(64 << 20),
			"innodb_buffer_pool_size":        fmt.Sprint(64 << 20),
			"innodb_flush_log_at_trx_commit": "2",
			"sync_binlog":                    "0",
			"skip_name_resolve":              "1",
			"bind_address":                   "127.0.0.1",
			"local_infile":                   "1",
		}
		// Every setting of Dialect.ReadOnly makes a replica read-only, and none is set
		// on the primary.
		for _, name := range sb.Dialect().ReadOnly {
			want[name] = readOnly
		}
		ms := fmt.Sprint(sandbox.SemiSyncTimeout.Milliseconds())
		switch sb.Flavor {
		case sandbox.FlavorMySQL:
			want["gtid_mode"] = "ON"
			want["enforce_gtid_consistency"] = "ON"
			want["log_replica_updates"] = "1"
			want["replica_net_timeout"] = "2"
			want["rpl_semi_sync_source_enabled"] = "1"
			want["rpl_semi_sync_replica_enabled"] = "1"
			want["rpl_semi_sync_source_wait_point"] = "AFTER_SYNC"
			want["rpl_semi_sync_source_timeout"] = ms
		default:
			want["gtid_strict_mode"] = "1"
			want["log_slave_updates"] = "1"
			want["slave_net_timeout"] = "2"
			want["rpl_semi_sync_master_enabled"] = "1"
			want["rpl_semi_sync_slave_enabled"] = "1"
			want["rpl_semi_sync_master_wait_point"] = "AFTER_SYNC"
			want["rpl_semi_sync_master_timeout"] = ms
		}
		for name, wantVal := range want {
			var got string
			if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL."+name).Scan(&got); err != nil {
				t.Fatalf("%s: @@%s: %v", srv.Name, name, err)
			}
			if got != wantVal {
				t.Errorf("%s: @@%s = %q, want %q", srv.Name, name, got, wantVal)
			}
		}
	}
}

// TestSemiSync checks that the primary runs semi-synchronously: every
// replica acknowledges, and a commit has waited for one.
func TestSemiSync(t *testing.T) {
	sb := sandboxtest.Require(t)
	ctx := ctxTimeout(t, 30*time.Second)
	db, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "Rpl_semi_sync_master_"
	if sb.Flavor == sandbox.FlavorMySQL {
		prefix = "Rpl_semi_sync_source_"
	}
	status := func(name string) string {
		var k, v string
		if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE '"+prefix+name+"'").Scan(&k, &v); err != nil {
			t.Fatalf("%s%s: %v", prefix, name, err)
		}
		return v
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS semisync"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for status("status") != "ON" || status("clients") != fmt.Sprint(len(sb.Replicas)) {
		if time.Now().After(deadline) {
			t.Fatalf("%sstatus %s with %s clients, want ON with %d", prefix, status("status"), status("clients"), len(sb.Replicas))
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := status("yes_tx")
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS semisync.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "REPLACE INTO semisync.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if after := status("yes_tx"); after == before {
		t.Errorf("%syes_tx stayed %s across a commit: no replica acknowledged it", prefix, after)
	}
}

func TestWriteOnPrimaryReachesEveryReplica(t *testing.T) {
	sb := sandboxtest.Require(t)
	ctx := ctxTimeout(t, 30*time.Second)
	app := sb.Opts.Users[0]
	primary := open(t, sb.Primary, app.Name, app.Password, "")
	for _, stmt := range []string{
		"CREATE DATABASE IF NOT EXISTS topo",
		"CREATE TABLE IF NOT EXISTS topo.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"REPLACE INTO topo.t VALUES (1, 'from-primary')",
	} {
		if _, err := primary.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("primary: %s: %v", stmt, err)
		}
	}
	if err := sb.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range sb.Replicas {
		db := open(t, r, app.Name, app.Password, "topo")
		var v string
		var serverID, readOnly int
		err := db.QueryRowContext(ctx, "SELECT v, @@server_id, @@read_only FROM t WHERE id = 1").Scan(&v, &serverID, &readOnly)
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		if v != "from-primary" || serverID != r.ServerID || readOnly != 1 {
			t.Errorf("%s: row %q, server_id %d, read_only %d; want from-primary, %d, 1", r.Name, v, serverID, readOnly, r.ServerID)
		}
	}
}

func TestReplicasRefuseApplicationWrites(t *testing.T) {
	sb := sandboxtest.Require(t)
	ctx := ctxTimeout(t, 30*time.Second)
	app := sb.Opts.Users[0]
	primary := open(t, sb.Primary, app.Name, app.Password, "")
	if _, err := primary.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS ro"); err != nil {
		t.Fatal(err)
	}
	if _, err := primary.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS ro.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := sb.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	const errReadOnly = 1290 // ER_OPTION_PREVENTS_STATEMENT
	for _, r := range sb.Replicas {
		db := open(t, r, app.Name, app.Password, "")
		for _, stmt := range []string{"INSERT INTO ro.t VALUES (1)", "CREATE DATABASE ro_" + r.Name} {
			_, err := db.ExecContext(ctx, stmt)
			if errNumber(err) != errReadOnly {
				t.Errorf("%s as %s: %s: err = %v, want error %d", r.Name, app.Name, stmt, err, errReadOnly)
			}
		}
	}
}

func TestUsersExistOnEveryServer(t *testing.T) {
	sb := sandboxtest.Require(t)
	ctx := ctxTimeout(t, 30*time.Second)
	o := sb.Opts
	for _, srv := range sb.Servers() {
		for _, u := range []sandbox.User{{Name: "root", Password: o.RootPassword}, o.Monitor, o.Users[0]} {
			var who string
			if err := open(t, srv, u.Name, u.Password, "").QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&who); err != nil {
				t.Errorf("%s: log in as %s: %v", srv.Name, u.Name, err)
				continue
			}
			if !strings.HasPrefix(who, u.Name+"@") {
				t.Errorf("%s: logged in as %s, CURRENT_USER() = %q", srv.Name, u.Name, who)
			}
		}
		const errAccessDenied = 1045
		err := open(t, srv, o.Users[0].Name, "wrong", "").PingContext(ctx)
		if errNumber(err) != errAccessDenied {
			t.Errorf("%s: wrong password: err = %v, want error %d", srv.Name, err, errAccessDenied)
		}

		// root@localhost over the socket has the password too.
		sock, err := sql.Open("mysql", "root:"+o.RootPassword+"@unix("+srv.Socket+")/")
		if err != nil {
			t.Fatal(err)
		}
		if err := sock.PingContext(ctx); err != nil {
			t.Errorf("%s: root over socket: %v", srv.Name, err)
		}
		sock.Close()
	}
}

// TestMonitorUser checks that the monitor account reads what replication health checks
// need, in each engine's own words, and cannot write.
func TestMonitorUser(t *testing.T) {
	sb := sandboxtest.Require(t)
	ctx := ctxTimeout(t, 30*time.Second)
	m, d := sb.Opts.Monitor, sb.Dialect()
	want := map[string]string{d.IORunning: "Yes", d.SQLRunning: "Yes"}
	switch sb.Flavor {
	case sandbox.FlavorMySQL:
		want["Auto_Position"] = "1"
		want["Source_Port"] = fmt.Sprint(sb.Primary.Port)
		want["Source_User"] = sandbox.ReplicationUser
	default:
		want["Using_Gtid"] = "Slave_Pos"
		want["Master_Port"] = fmt.Sprint(sb.Primary.Port)
		want["Master_User"] = sandbox.ReplicationUser
	}
	for _, r := range sb.Replicas {
		db := open(t, r, m.Name, m.Password, "")
		st := replicaStatus(t, ctx, db, d.ReplicaStatus)
		if len(st) == 0 {
			t.Fatalf("%s: %s as monitor returned no row", r.Name, d.ReplicaStatus)
		}
		for k, v := range want {
			if st[k] != v {
				t.Errorf("%s: %s = %q, want %q", r.Name, k, st[k], v)
			}
		}
		if _, ok := st[d.SecondsBehind]; !ok {
			t.Errorf("%s: %s has no column %s", r.Name, d.ReplicaStatus, d.SecondsBehind)
		}
		var applied string
		if err := db.QueryRowContext(ctx, d.AppliedGTID).Scan(&applied); err != nil || applied == "" {
			t.Errorf("%s: %s as monitor = %q, %v; want the applied GTIDs", r.Name, d.AppliedGTID, applied, err)
		}
		if _, err := db.ExecContext(ctx, "CREATE DATABASE monitor_must_not"); err == nil {
			t.Errorf("%s: monitor could create a database", r.Name)
		}
	}
}

// TestStallApplier stalls a replica's applier: it falls behind while both threads run,
// and catches up once released.
func TestStallApplier(t *testing.T) {
	sb := sandboxtest.Require(t)
	ctx := ctxTimeout(t, 60*time.Second)
	app, d := sb.Opts.Users[0], sb.Dialect()
	primary := open(t, sb.Primary, app.Name, app.Password, "")
	for _, stmt := range []string{"CREATE DATABASE IF NOT EXISTS stall", "CREATE TABLE IF NOT EXISTS stall.t (id INT PRIMARY KEY)"} {
		if _, err := primary.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("primary: %s: %v", stmt, err)
		}
	}
	if err := sb.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	r := sb.Replicas[0]
	release, err := sb.StallApplier(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { release() })
	if _, err := primary.ExecContext(ctx, "INSERT INTO stall.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = sb.WaitReplicated(wctx)
	cancel()
	if err == nil {
		t.Fatalf("WaitReplicated succeeded with %s stalled", r.Name)
	}
	db := open(t, r, app.Name, app.Password, "")
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM stall.t").Scan(&n); err != nil || n != 0 {
		t.Errorf("%s while stalled: %d rows, %v; want 0 rows", r.Name, n, err)
	}
	rdb, err := sb.RootDB(r)
	if err != nil {
		t.Fatal(err)
	}
	st := replicaStatus(t, ctx, rdb, d.ReplicaStatus)
	if st[d.IORunning] != "Yes" || st[d.SQLRunning] != "Yes" {
		t.Errorf("%s while stalled: %s %q, %s %q; want both running",
			r.Name, d.IORunning, st[d.IORunning], d.SQLRunning, st[d.SQLRunning])
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := sb.WaitReplicated(ctx); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// replicaStatus runs query, SHOW REPLICA/SLAVE STATUS, and returns its row as column
// name -> value; empty when the server is not a replica.
func replicaStatus(t *testing.T, ctx context.Context, db *sql.DB, query string) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	st := map[string]string{}
	if rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, c := range cols {
			st[c] = vals[i].String
		}
	}
	return st
}

func TestDSN(t *testing.T) {
	srv := &sandbox.Server{Port: 3307}
	dsn := srv.DSN("us@er", "p:a/ss@w'rd", "shop")
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("ParseDSN(%q): %v", dsn, err)
	}
	if cfg.User != "us@er" || cfg.Passwd != "p:a/ss@w'rd" || cfg.Addr != "127.0.0.1:3307" || cfg.Net != "tcp" || cfg.DBName != "shop" {
		t.Errorf("ParseDSN(%q) = user %q pass %q addr %q net %q db %q", dsn, cfg.User, cfg.Passwd, cfg.Addr, cfg.Net, cfg.DBName)
	}
}

// TestRestartReadOnlyWhenAnotherIsWritable: a server restarted while another
// one of the sandbox takes writes (a replica promoted meanwhile) starts
// read-only; with none writable, it starts as its my.cnf says.
func TestRestartReadOnlyWhenAnotherIsWritable(t *testing.T) {
	sb := sandboxtest.New(t, sandbox.Options{Replicas: 1})
	ctx := ctxTimeout(t, 2*time.Minute)
	d := sb.Dialect()
	readOnly := func(srv *sandbox.Server) int {
		t.Helper()
		db, err := sb.RootDB(srv)
		if err != nil {
			t.Fatal(err)
		}
		var ro int
		if err := db.QueryRowContext(ctx, "SELECT @@GLOBAL.read_only").Scan(&ro); err != nil {
			t.Fatal(err)
		}
		return ro
	}
	restart := func() {
		t.Helper()
		if err := sb.Primary.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := sb.Primary.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	restart()
	if ro := readOnly(sb.Primary); ro != 0 {
		t.Errorf("primary restarted with only read-only replicas: read_only %d, want 0", ro)
	}

	if err := sb.Primary.Kill(); err != nil {
		t.Fatal(err)
	}
	db, err := sb.RootDB(sb.Replicas[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{d.StopReplica, d.SetWritable} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := sb.Primary.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if ro := readOnly(sb.Primary); ro != 1 {
		t.Errorf("primary restarted while %s is writable: read_only %d, want 1", sb.Replicas[0].Name, ro)
	}
	if sb.Flavor == sandbox.FlavorMySQL {
		var sro int
		pdb, _ := sb.RootDB(sb.Primary)
		if err := pdb.QueryRowContext(ctx, "SELECT @@GLOBAL.super_read_only").Scan(&sro); err != nil || sro != 1 {
			t.Errorf("super_read_only %d (%v), want 1", sro, err)
		}
	}
}
