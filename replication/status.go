package replication

import (
	"fmt"
	"time"
)

// State is a backend's health. See the package documentation for the transitions.
type State int

// States. The zero value is Down: a backend nobody has checked gets no traffic.
const (
	Down    State = iota // unreachable, or replication broken, stopped or not configured
	Lagging              // replicating but too far behind (or lag unknown): no new reads
	Usable               // gets traffic
)

func (s State) String() string {
	switch s {
	case Down:
		return "down"
	case Lagging:
		return "lagging"
	case Usable:
		return "usable"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText makes states read as words in JSON and logs.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Where a lag figure comes from.
const (
	LagHeartbeat = "heartbeat"             // the heartbeat row's age
	LagSeconds   = "seconds_behind_master" // Seconds_Behind_Master / Seconds_Behind_Source
	LagCaughtUp  = "caught_up"             // primary unreachable; replica applied all it received
	LagBound     = "bound"                 // source lost, all received applied: last measured lag plus the time since
)

// BackendStatus is what the monitor knows about one backend.
type BackendStatus struct {
	Name string
	Addr string
	Hint Role // the configured Server.Role
	Role Role // RolePrimary for Snapshot.Primary, RoleReplica for every other backend

	State State
	Since time.Time // when State last changed; zero until the first check
	// LastError says why the backend is not Usable, or holds the last probe's error; empty
	// for a healthy backend.
	LastError string

	// Reachable: the last probe logged in and ran; the fields below are
	// from the last successful probe either way.
	Reachable bool
	ReadOnly  bool          // @@read_only at the last successful probe
	Lag       time.Duration // valid when LagSource is not empty
	// LagSource is LagHeartbeat, LagSeconds or LagCaughtUp, or empty when the lag is
	// unknown or the backend is the primary.
	LagSource string

	// Replica status at the last successful probe; all empty when the server has no
	// replication configured. Thread states are "Yes", "No", "Connecting" or "Preparing".
	Replicating bool   // the server has a replica status row
	Source      string // host:port it replicates from
	IOThread    string
	SQLThread   string
	IOError     string // Last_IO_Error, with its number
	SQLError    string // Last_SQL_Error, with its number

	GTIDBinlogPos  string // MariaDB @@gtid_binlog_pos
	GTIDCurrentPos string // MariaDB @@gtid_current_pos
	GTIDSlavePos   string // MariaDB @@gtid_slave_pos
	GTIDExecuted   string // MySQL @@gtid_executed

	Flavor  string // "mariadb" or "mysql"
	Version string // "10.11.19"

	CheckedAt time.Time     // when the last probe began
	ProbeTime time.Duration // how long the last probe took

	Checks   uint64 // probes completed
	Failures uint64 // probes that could not reach the server
}

// Stats are the monitor's cumulative counters, for the metrics layer.
type Stats struct {
	PrimaryChanges  uint64 // times Snapshot.Primary changed, to or from "" included
	Conflicts       uint64 // times two or more writable servers appeared
	Exclusions      uint64 // transitions from Usable to Lagging or Down
	Readmissions    uint64 // transitions to Usable from Lagging or Down, first checks excluded
	HeartbeatWrites uint64 // successful heartbeat writes
	HeartbeatErrors uint64 // failed heartbeat writes
}

// Snapshot is the monitor's view at one moment. Snapshots are immutable and shared:
// callers must not modify them or their slices.
type Snapshot struct {
	// Primary is the name of the backend that takes writes, or "" when there is none
	// (no writable server, or a conflict without a writable last primary). The primary
	// may be Down: it stays named while unreachable, as long as no other server is
	// writable.
	Primary string
	// Conflict is set while two or more backends that may be primary are writable.
	Conflict bool
	// Writable lists the reachable backends that may be primary and are writable.
	Writable []string
	// Backends lists every backend in the order given to New.
	Backends []BackendStatus
	Stats    Stats
	// Seq increases with every published snapshot: a cheap way to see whether anything
	// changed since a cached one.
	Seq uint64

	index map[string]int
}

// Backend returns the named backend's status.
func (s *Snapshot) Backend(name string) (BackendStatus, bool) {
	i, ok := s.index[name]
	if !ok {
		return BackendStatus{}, false
	}
	return s.Backends[i], true
}

// Usable reports whether the named backend may get traffic: for the primary, writes;
// for a replica, reads.
func (s *Snapshot) Usable(name string) bool {
	i, ok := s.index[name]
	return ok && s.Backends[i].State == Usable
}

// Readable returns the names of the usable replicas, in configuration order. It
// allocates: a caller on a hot path can cache the result per Seq.
func (s *Snapshot) Readable() []string {
	var names []string
	for _, b := range s.Backends {
		if b.Role == RoleReplica && b.State == Usable {
			names = append(names, b.Name)
		}
	}
	return names
}
