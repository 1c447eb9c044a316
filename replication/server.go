package replication

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// Server flavours reported in BackendStatus.Flavor.
const (
	FlavorMariaDB = "mariadb"
	FlavorMySQL   = "mysql"
)

// serverInfo is a server's flavour and version, which decide the probe's statements.
type serverInfo struct {
	flavor              string
	version             string // "10.11.19"
	major, minor, patch int
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)`)

// parseServerInfo reads @@version and @@version_comment, such as
// "10.11.19-MariaDB-0+deb12u1" or "8.0.36" with "MySQL Community Server - GPL".
func parseServerInfo(version, comment string) (serverInfo, error) {
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return serverInfo{}, fmt.Errorf("unrecognised server version %q", version)
	}
	si := serverInfo{flavor: FlavorMySQL, version: m[1] + "." + m[2] + "." + m[3]}
	si.major, _ = strconv.Atoi(m[1])
	si.minor, _ = strconv.Atoi(m[2])
	si.patch, _ = strconv.Atoi(m[3])
	if strings.Contains(version, "MariaDB") || strings.Contains(comment, "MariaDB") {
		si.flavor = FlavorMariaDB
	}
	return si, nil
}

func (si serverInfo) atLeast(major, minor, patch int) bool {
	if si.major != major {
		return si.major > major
	}
	if si.minor != minor {
		return si.minor > minor
	}
	return si.patch >= patch
}

// replicaStatusSQL is SHOW REPLICA STATUS where the server has it (MariaDB 10.5.1,
// MySQL 8.0.22) and SHOW SLAVE STATUS before.
func (si serverInfo) replicaStatusSQL() string {
	if si.flavor == FlavorMariaDB && si.atLeast(10, 5, 1) || si.flavor == FlavorMySQL && si.atLeast(8, 0, 22) {
		return "SHOW REPLICA STATUS"
	}
	return "SHOW SLAVE STATUS"
}

// gtidSQL reads the GTID positions: MariaDB's three, or MySQL's gtid_executed.
func (si serverInfo) gtidSQL() string {
	if si.flavor == FlavorMariaDB {
		return "SELECT @@GLOBAL.gtid_binlog_pos, @@GLOBAL.gtid_current_pos, @@GLOBAL.gtid_slave_pos"
	}
	return "SELECT @@GLOBAL.gtid_executed"
}

// gtidPositions are a server's GTID positions; which fields are set depends on the flavour.
type gtidPositions struct {
	binlogPos, currentPos, slavePos string // MariaDB
	executed                        string // MySQL
}

// replicaStatus is the part of SHOW REPLICA STATUS the monitor uses.
type replicaStatus struct {
	ioRunning, sqlRunning string // "Yes", "No", "Connecting", "Preparing"
	ioErrno, sqlErrno     int
	ioError, sqlError     string
	secondsBehind         int64
	secondsBehindKnown    bool // false when the column is NULL
	source                string
	sourceLogFile         string // binlog file the I/O thread reads
	readPos               uint64
	relaySourceLogFile    string // binlog file of the last event the SQL thread applied
	execPos               uint64
	sqlState              string // Slave_SQL_Running_State: what the applier is doing
	received              string // GTIDs received: MariaDB Gtid_IO_Pos, MySQL Retrieved_Gtid_Set
}

// Column names: MySQL 8.0.22 renamed Master to Source and Slave to Replica in SHOW
// REPLICA STATUS; MariaDB and older MySQL use the old names.
var (
	colIORunning     = []string{"Replica_IO_Running", "Slave_IO_Running"}
	colSQLRunning    = []string{"Replica_SQL_Running", "Slave_SQL_Running"}
	colSecondsBehind = []string{"Seconds_Behind_Source", "Seconds_Behind_Master"}
	colSourceHost    = []string{"Source_Host", "Master_Host"}
	colSourcePort    = []string{"Source_Port", "Master_Port"}
	colSourceLogFile = []string{"Source_Log_File", "Master_Log_File"}
	colReadPos       = []string{"Read_Source_Log_Pos", "Read_Master_Log_Pos"}
	colRelaySource   = []string{"Relay_Source_Log_File", "Relay_Master_Log_File"}
	colExecPos       = []string{"Exec_Source_Log_Pos", "Exec_Master_Log_Pos"}
	colSQLState      = []string{"Replica_SQL_Running_State", "Slave_SQL_Running_State"}
)

// parseReplicaStatus reads one row of SHOW REPLICA/SLAVE STATUS, given as column name to
// value with NULL absent from the map.
func parseReplicaStatus(row map[string]string) replicaStatus {
	pick := func(names []string) (string, bool) {
		for _, n := range names {
			if v, ok := row[n]; ok {
				return v, true
			}
		}
		return "", false
	}
	str := func(names ...string) string { v, _ := pick(names); return v }
	num := func(names ...string) uint64 { n, _ := strconv.ParseUint(str(names...), 10, 64); return n }

	rs := replicaStatus{
		ioRunning:          str(colIORunning...),
		sqlRunning:         str(colSQLRunning...),
		ioError:            str("Last_IO_Error"),
		sqlError:           str("Last_SQL_Error"),
		sourceLogFile:      str(colSourceLogFile...),
		readPos:            num(colReadPos...),
		relaySourceLogFile: str(colRelaySource...),
		execPos:            num(colExecPos...),
		sqlState:           str(colSQLState...),
		received:           str("Gtid_IO_Pos", "Retrieved_Gtid_Set"),
	}
	rs.ioErrno, _ = strconv.Atoi(str("Last_IO_Errno"))
	rs.sqlErrno, _ = strconv.Atoi(str("Last_SQL_Errno"))
	if v, ok := pick(colSecondsBehind); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			rs.secondsBehind, rs.secondsBehindKnown = n, true
		}
	}
	if host := str(colSourceHost...); host != "" {
		rs.source = net.JoinHostPort(host, str(colSourcePort...))
	}
	return rs
}

// caughtUp reports whether the SQL thread has applied everything the I/O thread wrote
// to the relay log: the positions match, or the applier says it has read all the relay
// log and waits for more. A source that died in the middle of sending a transaction
// leaves its first events in the relay log, never to be applied: the positions then
// never match, though every complete transaction is applied.
func (rs replicaStatus) caughtUp() bool {
	if rs.sourceLogFile != "" && rs.relaySourceLogFile == rs.sourceLogFile && rs.execPos == rs.readPos {
		return true
	}
	return rs.applierIdle()
}

// applierIdle reports whether the SQL thread says it has applied all its
// relay log and waits for more.
func (rs replicaStatus) applierIdle() bool {
	return strings.Contains(rs.sqlState, "has read all relay log")
}

// threadError formats a thread's last error, or "" when it has none.
func threadError(errno int, msg string) string {
	if errno == 0 && msg == "" {
		return ""
	}
	return fmt.Sprintf("error %d: %s", errno, msg)
}

// parseReadOnly reads @@read_only: 0/1 on most servers, OFF/ON/NO_LOCK/... on newer
// MariaDB where it became an enum. Anything but off, even unreadable, is read-only:
// the safe side, since a read-only server never becomes the primary.
func parseReadOnly(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "0", "OFF":
		return false
	}
	return true
}
