package replication

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseServerInfo(t *testing.T) {
	tests := []struct {
		version, comment string
		flavor, ver      string
		statusSQL        string
		gtidVar          string
	}{
		{"10.11.19-MariaDB-0+deb12u1", "Debian 12", FlavorMariaDB, "10.11.19", "SHOW REPLICA STATUS", "gtid_slave_pos"},
		{"10.5.1-MariaDB", "mariadb.org binary distribution", FlavorMariaDB, "10.5.1", "SHOW REPLICA STATUS", "gtid_binlog_pos"},
		{"10.4.32-MariaDB-log", "MariaDB Server", FlavorMariaDB, "10.4.32", "SHOW SLAVE STATUS", "gtid_current_pos"},
		{"8.0.36", "MySQL Community Server - GPL", FlavorMySQL, "8.0.36", "SHOW REPLICA STATUS", "gtid_executed"},
		{"8.0.22-log", "MySQL Community Server - GPL", FlavorMySQL, "8.0.22", "SHOW REPLICA STATUS", "gtid_executed"},
		{"8.0.21", "MySQL Community Server - GPL", FlavorMySQL, "8.0.21", "SHOW SLAVE STATUS", "gtid_executed"},
		{"5.7.44-log", "MySQL Community Server (GPL)", FlavorMySQL, "5.7.44", "SHOW SLAVE STATUS", "gtid_executed"},
	}
	for _, tt := range tests {
		si, err := parseServerInfo(tt.version, tt.comment)
		if err != nil {
			t.Errorf("parseServerInfo(%q): %v", tt.version, err)
			continue
		}
		if si.flavor != tt.flavor || si.version != tt.ver {
			t.Errorf("parseServerInfo(%q, %q) = %s %s, want %s %s", tt.version, tt.comment, si.flavor, si.version, tt.flavor, tt.ver)
		}
		if got := si.replicaStatusSQL(); got != tt.statusSQL {
			t.Errorf("%s %s: replicaStatusSQL() = %q, want %q", si.flavor, si.version, got, tt.statusSQL)
		}
		if got := si.gtidSQL(); !strings.Contains(got, tt.gtidVar) {
			t.Errorf("%s %s: gtidSQL() = %q, want it to read %s", si.flavor, si.version, got, tt.gtidVar)
		}
	}
	if _, err := parseServerInfo("garbage", ""); err == nil {
		t.Error(`parseServerInfo("garbage") succeeded`)
	}
}

func TestParseReplicaStatus(t *testing.T) {
	// Abridged rows as each server returns them; NULL columns are absent.
	mariadb := map[string]string{
		"Master_Host": "127.0.0.1", "Master_Port": "3306", "Master_Log_File": "primary-bin.000002",
		"Read_Master_Log_Pos": "2215", "Relay_Master_Log_File": "primary-bin.000002", "Exec_Master_Log_Pos": "2215",
		"Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes", "Seconds_Behind_Master": "0",
		"Last_IO_Errno": "0", "Last_IO_Error": "", "Last_SQL_Errno": "0", "Last_SQL_Error": "",
	}
	mysql8 := map[string]string{
		"Source_Host": "db1", "Source_Port": "3306", "Source_Log_File": "binlog.000007",
		"Read_Source_Log_Pos": "157", "Relay_Source_Log_File": "binlog.000006", "Exec_Source_Log_Pos": "4411",
		"Replica_IO_Running": "Connecting", "Replica_SQL_Running": "No",
		"Last_IO_Errno": "2003", "Last_IO_Error": "error connecting to source", "Last_SQL_Errno": "1062", "Last_SQL_Error": "Duplicate entry",
	}
	tests := []struct {
		name     string
		row      map[string]string
		want     replicaStatus
		caughtUp bool
	}{
		{"mariadb", mariadb, replicaStatus{
			ioRunning: "Yes", sqlRunning: "Yes", secondsBehind: 0, secondsBehindKnown: true, source: "127.0.0.1:3306",
			sourceLogFile: "primary-bin.000002", readPos: 2215, relaySourceLogFile: "primary-bin.000002", execPos: 2215,
		}, true},
		{"mysql 8.0.22 names, NULL lag", mysql8, replicaStatus{
			ioRunning: "Connecting", sqlRunning: "No", ioErrno: 2003, ioError: "error connecting to source",
			sqlErrno: 1062, sqlError: "Duplicate entry", source: "db1:3306",
			sourceLogFile: "binlog.000007", readPos: 157, relaySourceLogFile: "binlog.000006", execPos: 4411,
		}, false},
		// The source died half-way through sending a transaction: its first
		// events stay in the relay log, and the applier waits for the rest.
		{"half a transaction received", map[string]string{
			"Source_Host": "db1", "Source_Port": "3306", "Source_Log_File": "binlog.000001",
			"Read_Source_Log_Pos": "9120", "Relay_Source_Log_File": "binlog.000001", "Exec_Source_Log_Pos": "8873",
			"Replica_IO_Running": "Connecting", "Replica_SQL_Running": "Yes",
			"Replica_SQL_Running_State": "Replica has read all relay log; waiting for more updates",
		}, replicaStatus{
			ioRunning: "Connecting", sqlRunning: "Yes", source: "db1:3306",
			sourceLogFile: "binlog.000001", readPos: 9120, relaySourceLogFile: "binlog.000001", execPos: 8873,
			sqlState: "Replica has read all relay log; waiting for more updates",
		}, true},
	}
	for _, tt := range tests {
		got := parseReplicaStatus(tt.row)
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(replicaStatus{})); diff != "" {
			t.Errorf("%s: parseReplicaStatus mismatch (-want +got):\n%s", tt.name, diff)
		}
		if got.caughtUp() != tt.caughtUp {
			t.Errorf("%s: caughtUp() = %v, want %v", tt.name, got.caughtUp(), tt.caughtUp)
		}
	}
}

func TestParseReadOnly(t *testing.T) {
	for v, want := range map[string]bool{"0": false, "OFF": false, "off": false, "1": true, "ON": true, "NO_LOCK": true, "": true} {
		if got := parseReadOnly(v); got != want {
			t.Errorf("parseReadOnly(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{User: "monitor"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Interval != 250*time.Millisecond || o.Timeout != time.Second || o.MaxLag != time.Second ||
		o.ReadmitAfter != 3 || o.MaxBackoff != 2*time.Second || o.Heartbeat.Interval != 100*time.Millisecond ||
		o.Heartbeat.Schema != "switchyard" || o.Heartbeat.Table != "heartbeat" || o.Logger == nil {
		t.Errorf("defaults = %+v", o)
	}
	o, _ = Options{User: "m", Interval: 5 * time.Second}.withDefaults()
	if o.MaxBackoff != 5*time.Second {
		t.Errorf("MaxBackoff below Interval = %s, want raised to the interval", o.MaxBackoff)
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name     string
		backends []Server
		opts     Options
		want     []string
	}{
		{"everything", []Server{{Name: "a", Addr: "nohost"}, {Name: "a", Addr: "h:1", Role: "boss"}, {Addr: "h:2"}},
			Options{Interval: -1, ReadmitAfter: -2, Heartbeat: HeartbeatOptions{Table: "x; DROP TABLE y"}},
			[]string{"user: required", "interval: -1ns is negative", "readmit after: -2", `heartbeat table: "x; DROP TABLE y"`,
				"backends[0].addr:", `backends[1].name: "a" is already backends[0]`, `backends[1].role: "boss"`, "backends[2].name: required"}},
		{"no backends", nil, Options{User: "m"}, []string{"backends: none"}},
		{"two pinned primaries", []Server{{Name: "a", Addr: "h:1", Role: RolePrimary}, {Name: "b", Addr: "h:2", Role: RolePrimary}},
			Options{User: "m"}, []string{"backends[1].role: backends[0] is already primary"}},
	}
	for _, tt := range tests {
		_, err := New(tt.backends, tt.opts)
		if err == nil {
			t.Errorf("%s: New succeeded", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: New error %q does not mention %q", tt.name, err, w)
			}
		}
	}
}

// TestNewSnapshot checks the snapshot a monitor publishes before Run.
func TestNewSnapshot(t *testing.T) {
	m, err := New([]Server{{Name: "db1", Addr: "127.0.0.1:1", Role: RolePrimary}, {Name: "db2", Addr: "127.0.0.1:2"}},
		Options{User: "monitor"})
	if err != nil {
		t.Fatal(err)
	}
	s := m.Snapshot()
	if s.Primary != "db1" || len(s.Backends) != 2 || m.Usable("db1") || m.Usable("db2") || m.Usable("nope") {
		t.Errorf("initial snapshot = %+v, want pinned primary db1 and nothing usable", s)
	}
	if b, ok := s.Backend("db2"); !ok || b.State != Down || b.LastError != "not checked yet" || b.Role != RoleReplica {
		t.Errorf("Backend(db2) = %+v, %v", b, ok)
	}
	select {
	case <-m.Ready():
		t.Error("Ready closed before Run")
	default:
	}
	m.Recheck("db2") // must not block
	m.Recheck("db2")
	m.Recheck("unknown")
}
