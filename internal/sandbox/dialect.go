package sandbox

import "fmt"

// Dialect holds the replication statements and names that differ between the
// engines, for tests and tools that drive a sandbox's servers by hand. MySQL 8.4
// and 9 dropped the SLAVE/MASTER spellings that MariaDB still uses.
type Dialect struct {
	StopReplica    string // both replication threads
	StartReplica   string
	StopSQLThread  string // the applier only
	StartSQLThread string
	StopIOThread   string // the receiver only
	StartIOThread  string
	ResetReplica   string // forget the source entirely (RESET ... ALL)
	ReplicaStatus  string // SHOW SLAVE STATUS or SHOW REPLICA STATUS

	// Column names in ReplicaStatus's row.
	IORunning, SQLRunning, SecondsBehind string

	// ExecutedGTID selects the set of transactions the server has in its binlog:
	// gtid_binlog_pos (MariaDB) or gtid_executed (MySQL). AppliedGTID selects what
	// a replica has applied: gtid_slave_pos or gtid_executed.
	ExecutedGTID, AppliedGTID string
	// WaitGTID takes a GTID position and a timeout in seconds and returns 0 once
	// the server has applied the position.
	WaitGTID string
	// ReadOnlyBypass is the privilege that lets a user write on a read_only server.
	ReadOnlyBypass string
	// ReadOnly lists the settings that make a replica read-only.
	ReadOnly []string
	// SetReadOnly sets them as the sandbox sets them on replicas (MySQL's super_read_only
	// holds back even root); SetWritable clears them. Demoting a primary is SetReadOnly;
	// promoting a replica is StopReplica, ResetReplica and SetWritable.
	SetReadOnly, SetWritable string
	// SourceDelay takes a number of seconds (a %d verb): the replica applies each
	// transaction that long after its source committed it. Both threads must be stopped.
	SourceDelay string
	// TxReadOnly and TxIsolation name the session variables of the transaction access
	// mode and isolation level: tx_read_only and tx_isolation on MariaDB 10.x,
	// transaction_read_only and transaction_isolation on MySQL (which dropped the others).
	TxReadOnly, TxIsolation string
}

// Dialect returns the sandbox's engine's dialect.
func (sb *Sandbox) Dialect() Dialect { return sb.flavor.dialect() }

func (f *flavor) dialect() Dialect {
	if f.name == FlavorMySQL {
		return Dialect{
			StopReplica: "STOP REPLICA", StartReplica: "START REPLICA",
			StopSQLThread: "STOP REPLICA SQL_THREAD", StartSQLThread: "START REPLICA SQL_THREAD",
			StopIOThread: "STOP REPLICA IO_THREAD", StartIOThread: "START REPLICA IO_THREAD",
			ResetReplica: "RESET REPLICA ALL", ReplicaStatus: "SHOW REPLICA STATUS",
			IORunning: "Replica_IO_Running", SQLRunning: "Replica_SQL_Running", SecondsBehind: "Seconds_Behind_Source",
			ExecutedGTID: f.executedGTIDSQL(), AppliedGTID: f.appliedGTIDSQL(), WaitGTID: f.waitGTIDSQL(),
			ReadOnlyBypass: "CONNECTION_ADMIN", ReadOnly: []string{"read_only", "super_read_only"},
			SetReadOnly: "SET GLOBAL read_only = 1, super_read_only = 1",
			SetWritable: "SET GLOBAL super_read_only = 0, read_only = 0",
			SourceDelay: "CHANGE REPLICATION SOURCE TO SOURCE_DELAY = %d",
			TxReadOnly:  "transaction_read_only", TxIsolation: "transaction_isolation",
		}
	}
	return Dialect{
		StopReplica: "STOP SLAVE", StartReplica: "START SLAVE",
		StopSQLThread: "STOP SLAVE SQL_THREAD", StartSQLThread: "START SLAVE SQL_THREAD",
		StopIOThread: "STOP SLAVE IO_THREAD", StartIOThread: "START SLAVE IO_THREAD",
		ResetReplica: "RESET SLAVE ALL", ReplicaStatus: "SHOW SLAVE STATUS",
		IORunning: "Slave_IO_Running", SQLRunning: "Slave_SQL_Running", SecondsBehind: "Seconds_Behind_Master",
		ExecutedGTID: f.executedGTIDSQL(), AppliedGTID: f.appliedGTIDSQL(), WaitGTID: f.waitGTIDSQL(),
		ReadOnlyBypass: "READ ONLY ADMIN", ReadOnly: []string{"read_only"},
		SetReadOnly: "SET GLOBAL read_only = 1", SetWritable: "SET GLOBAL read_only = 0",
		SourceDelay: "CHANGE MASTER TO MASTER_DELAY = %d",
		TxReadOnly:  "tx_read_only", TxIsolation: "tx_isolation",
	}
}

// ChangeSource returns the statements that point a server whose replication threads
// are stopped at the server on port of 127.0.0.1 with GTID auto-positioning and start
// replicating, as the sandbox set it up: after a promotion, tests repoint the other
// replicas and the demoted primary with them. The server resumes after every
// transaction it has, replicated or its own: MySQL's auto-positioning does so, and
// MariaDB's current_pos (a replica's current_pos is its gtid_slave_pos, a demoted
// primary's is its gtid_binlog_pos).
func (sb *Sandbox) ChangeSource(port int) []string {
	if sb.flavor.name == FlavorMariaDB {
		return []string{sb.flavor.changeSourceSQL(port, "current_pos"), "START SLAVE"}
	}
	return sb.flavor.startReplicationSQL(port)
}

// Engine returns "MariaDB 10.11.19" or "MySQL 9.7.4".
func (sb *Sandbox) Engine() string { return fmt.Sprintf("%s %s", flavorTitle(sb.Flavor), sb.Version) }
