// Package config turns Switchyard's YAML configuration into validated,
// immutable structs.
//
// Loading runs in one fixed order: Default() supplies every default, ${ENV}
// references in scalar values are expanded, the YAML is decoded strictly
// (unknown keys and wrong types are errors carrying their field path and
// line), and Validate reports every remaining problem at once. A *Config
// returned by Load or Parse is a snapshot: callers must not modify it, and a
// reload builds a new one and swaps it in atomically.
//
// switchyard.example.yaml in this directory documents every key.
package config

import "time"

// Config is the whole Switchyard configuration. Field comments give the YAML
// key; the default comes from Default.
type Config struct {
	Listen        string     `yaml:"listen" json:"listen"` // SQL listener address
	ServerVersion string     `yaml:"server_version" json:"server_version"`
	AuthPlugin    string     `yaml:"auth_plugin" json:"auth_plugin"` // plugin named in the greeting // version string sent to clients; "" = the primary's own
	TLS           TLS        `yaml:"tls" json:"tls"`
	BackendTLS    BackendTLS `yaml:"backend_tls" json:"backend_tls"`
	RSAKey        string     `yaml:"rsa_key" json:"rsa_key"` // PEM RSA key for caching_sha2_password; "" = generate at start
	Users         []User     `yaml:"users" json:"users"`
	Backends      []Backend  `yaml:"backends" json:"backends"`
	Monitor       Monitor    `yaml:"monitor" json:"monitor"`
	Routing       Routing    `yaml:"routing" json:"routing"`
	Admin         Admin      `yaml:"admin" json:"admin"`
	Timeouts      Timeouts   `yaml:"timeouts" json:"timeouts"`
	Pool          Pool       `yaml:"pool" json:"pool"`
	Limits        Limits     `yaml:"limits" json:"limits"`
	Log           Log        `yaml:"log" json:"log"`
	Digests       Digests    `yaml:"digests" json:"digests"`
	Failover      Failover   `yaml:"failover" json:"failover"`
}

// TLSMode says whether clients may or must use TLS.
type TLSMode string

// TLS modes.
const (
	TLSOff      TLSMode = "off"
	TLSOptional TLSMode = "optional"
	TLSRequired TLSMode = "required"
)

// TLS configures TLS termination for client connections. Cert and Key are
// required unless Mode is off, and ignored when it is.
type TLS struct {
	Mode TLSMode `yaml:"mode" json:"mode"`
	Cert string  `yaml:"cert" json:"cert"` // PEM certificate chain
	Key  string  `yaml:"key" json:"key"`   // PEM private key
}

// BackendTLSMode says whether, and how strictly, Switchyard secures its own
// connections to backends. The names are those of MySQL's --ssl-mode.
type BackendTLSMode string

// Backend TLS modes. BackendTLSInherit is only valid in backends[].tls,
// where it means "backend_tls's mode".
const (
	BackendTLSInherit        BackendTLSMode = ""
	BackendTLSOff            BackendTLSMode = "off"             // plain TCP
	BackendTLSPreferred      BackendTLSMode = "preferred"       // TLS when the server offers it, unverified
	BackendTLSRequired       BackendTLSMode = "required"        // TLS or no login, unverified
	BackendTLSVerifyCA       BackendTLSMode = "verify-ca"       // required, and the chain must lead to CA
	BackendTLSVerifyIdentity BackendTLSMode = "verify-identity" // verify-ca, and the certificate must name the server
)

// Verifies reports whether m checks the server's certificate, and so needs
// a CA.
func (m BackendTLSMode) Verifies() bool {
	return m == BackendTLSVerifyCA || m == BackendTLSVerifyIdentity
}

// BackendTLS configures TLS on Switchyard's connections to backends: the
// proxy's pooled connections and the monitor's. The global backend_tls
// applies to every backend; in backends[].tls each empty field takes
// backend_tls's value (see Config.BackendTLSFor). Files are read when the
// configuration loads, so a reload picks up renewed certificates.
type BackendTLS struct {
	Mode BackendTLSMode `yaml:"mode" json:"mode"`
	CA   string         `yaml:"ca" json:"ca"`     // PEM CA certificates; used by verify-ca and verify-identity only
	Cert string         `yaml:"cert" json:"cert"` // PEM client certificate chain, sent when the server asks; set with Key
	Key  string         `yaml:"key" json:"key"`   // PEM private key of Cert
	// ServerName is the name verify-identity checks the certificate
	// against (and the SNI sent); "" means the host of the backend's
	// address.
	ServerName string `yaml:"server_name" json:"server_name"`
}

// BackendTLSFor returns the TLS settings in force for b: b.TLS, with each
// empty field taken from c.BackendTLS.
func (c *Config) BackendTLSFor(b Backend) BackendTLS {
	t, g := b.TLS, c.BackendTLS
	inherit := func(s *string, from string) {
		if *s == "" {
			*s = from
		}
	}
	if t.Mode == BackendTLSInherit {
		t.Mode = g.Mode
	}
	inherit(&t.CA, g.CA)
	inherit(&t.Cert, g.Cert)
	inherit(&t.Key, g.Key)
	inherit(&t.ServerName, g.ServerName)
	return t
}

// Consistency is a read-consistency level.
type Consistency string

// Consistency levels. ConsistencyInherit is only valid on a User, where it
// means "use Routing.Consistency".
const (
	ConsistencyInherit  Consistency = ""
	ConsistencyEventual Consistency = "eventual"
	ConsistencySession  Consistency = "session"
	ConsistencyCausal   Consistency = "causal"
	ConsistencyGlobal   Consistency = "global"
)

// User is a client account the proxy accepts. Exactly one of Password and
// PasswordHash is set.
type User struct {
	Name           string      `yaml:"name" json:"name"`
	Password       string      `yaml:"password" json:"password"`               // cleartext; serves both auth plugins
	PasswordHash   string      `yaml:"password_hash" json:"password_hash"`     // mysql_native_password hash: "*" + 40 hex digits
	MaxConnections int         `yaml:"max_connections" json:"max_connections"` // 0 = no per-user limit
	Consistency    Consistency `yaml:"consistency" json:"consistency"`         // "" = Routing.Consistency
}

// Role is a backend's role in the replication topology.
type Role string

// Backend roles. RoleAuto means the monitor decides from read_only.
const (
	RoleAuto    Role = ""
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
)

// Backend is one MySQL/MariaDB server behind the proxy.
type Backend struct {
	Address string `yaml:"address" json:"address"` // host:port
	Weight  int    `yaml:"weight" json:"weight"`   // share of reads; 0 = no reads; default 1
	Role    Role   `yaml:"role" json:"role"`
	Name    string `yaml:"name" json:"name"` // label for logs and metrics; "" = Address
	// TLS overrides backend_tls for this backend, field by field; use
	// Config.BackendTLSFor for the settings in force.
	TLS BackendTLS `yaml:"tls" json:"tls"`
}

// Label is the backend's name for logs and metrics: Name, or Address when
// Name is empty.
func (b Backend) Label() string {
	if b.Name != "" {
		return b.Name
	}
	return b.Address
}

// setDefaults gives each backends[] entry its defaults before it is decoded,
// so that an omitted weight means 1 while an explicit 0 stays 0.
func (b *Backend) setDefaults() { b.Weight = 1 }

// Monitor configures backend health and replication-lag checks.
type Monitor struct {
	User              string    `yaml:"user" json:"user"`
	Password          string    `yaml:"password" json:"password"`
	Interval          Duration  `yaml:"interval" json:"interval"`
	Timeout           Duration  `yaml:"timeout" json:"timeout"` // deadline of one probe
	MaxReplicationLag Duration  `yaml:"max_replication_lag" json:"max_replication_lag"`
	ReadmitAfter      int       `yaml:"readmit_after" json:"readmit_after"` // consecutive good checks to readmit a lagging replica
	Heartbeat         Heartbeat `yaml:"heartbeat" json:"heartbeat"`
}

// Heartbeat configures a pt-heartbeat style table that the proxy writes on the
// primary and reads on replicas to measure lag more finely than
// Seconds_Behind_Master.
type Heartbeat struct {
	Enabled  bool     `yaml:"enabled" json:"enabled"`
	Interval Duration `yaml:"interval" json:"interval"`
	Schema   string   `yaml:"schema" json:"schema"`
	Table    string   `yaml:"table" json:"table"`
}

// ImplicitTx says where statements of a client with autocommit=0 go.
type ImplicitTx string

// Implicit-transaction policies.
const (
	ImplicitTxPrimary ImplicitTx = "primary" // everything to the primary
	ImplicitTxLazy    ImplicitTx = "lazy"    // reads may use replicas until the first write
)

// NoReplica says what happens to a read when no replica is usable.
type NoReplica string

// No-replica policies.
const (
	NoReplicaPrimary NoReplica = "primary" // fall back to the primary
	NoReplicaError   NoReplica = "error"   // fail the statement
)

// Routing configures read/write splitting.
type Routing struct {
	Consistency          Consistency `yaml:"consistency" json:"consistency"`
	SessionWindow        Duration    `yaml:"session_window" json:"session_window"` // reads stay on the primary this long after a write (session mode)
	CausalWait           Duration    `yaml:"causal_wait" json:"causal_wait"`       // how long a causal read waits for a replica to apply the session's write; 0 = no wait
	ImplicitTransactions ImplicitTx  `yaml:"implicit_transactions" json:"implicit_transactions"`
	NoReplica            NoReplica   `yaml:"no_replica" json:"no_replica"`
	// ReadFromPrimary puts the primary in the read rotation beside the
	// replicas (with its weight). Off, reads go to the primary only when no
	// replica can serve them.
	ReadFromPrimary bool `yaml:"read_from_primary" json:"read_from_primary"`
}

// Admin configures the HTTP admin and metrics listener.
type Admin struct {
	Listen string `yaml:"listen" json:"listen"` // "" disables the admin listener
	Token  string `yaml:"token" json:"token"`   // bearer token; "" = none
	// Pprof serves Go's profiler under /debug/pprof/ (behind the token).
	Pprof bool `yaml:"pprof" json:"pprof"`
}

// Timeouts bounds client and backend operations.
type Timeouts struct {
	Connect   Duration `yaml:"connect" json:"connect"`     // backend dial and handshake
	Handshake Duration `yaml:"handshake" json:"handshake"` // client handshake
	Idle      Duration `yaml:"idle" json:"idle"`           // client idle; 0 = none
	Drain     Duration `yaml:"drain" json:"drain"`         // shutdown drain
	// NetRead bounds how long the rest of a client packet may take to
	// arrive once its first byte has (MySQL's net_read_timeout).
	NetRead Duration `yaml:"net_read" json:"net_read"`
	// Backend bounds each round trip Switchyard makes on its own on a
	// backend connection: session state sync, USE, LAST_INSERT_ID sync,
	// connection reset, @@last_gtid, the KILL it sends for a client.
	Backend Duration `yaml:"backend" json:"backend"`
}

// Pool configures backend connection pools (one per backend per user).
type Pool struct {
	MaxOpen     int      `yaml:"max_open" json:"max_open"`
	MaxIdle     int      `yaml:"max_idle" json:"max_idle"`
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"` // 0 = idle connections are never closed for age
	WaitTimeout Duration `yaml:"wait_timeout" json:"wait_timeout"` // bounded wait for a free connection
	ReleaseIdle Duration `yaml:"release_idle" json:"release_idle"` // idle sessions hand back their connections after this; 0 = never
}

// Limits holds global resource limits.
type Limits struct {
	MaxConnections int  `yaml:"max_connections" json:"max_connections"` // client connections
	MaxPacketSize  Size `yaml:"max_packet_size" json:"max_packet_size"`
}

// Digests configures statement digests (GET /api/queries).
type Digests struct {
	Max int `yaml:"max" json:"max"` // digests kept, least recently seen forgotten; 0 = off
}

// FailoverMode says who may change the primary.
type FailoverMode string

// Failover modes.
const (
	FailoverOff    FailoverMode = "off"    // Switchyard never changes the topology
	FailoverManual FailoverMode = "manual" // planned switchovers on request (API, CLI)
	FailoverAuto   FailoverMode = "auto"   // and a replica promoted when the primary stays down
)

// Failover configures planned switchovers (Switchyard demotes the primary,
// waits for a replica to apply everything, promotes it and points the other
// servers at it) and automatic failover.
type Failover struct {
	Mode FailoverMode `yaml:"mode" json:"mode"`
	// After is how long the primary must have been unreachable before mode
	// auto promotes a replica.
	After Duration `yaml:"after" json:"after"`
	// User and Password are the account that changes the topology, the same
	// on every backend; empty refuses switchovers.
	User     string `yaml:"user" json:"user"`
	Password string `yaml:"password" json:"password"`
	// ReplicationUser and ReplicationPassword are what a demoted primary
	// logs in to its new source with (replicas keep the account they have).
	ReplicationUser     string `yaml:"replication_user" json:"replication_user"`
	ReplicationPassword string `yaml:"replication_password" json:"replication_password"`
	// Timeout bounds each wait of a switchover (sessions finishing their
	// transactions, the new primary catching up): past it the switchover
	// is called off and the old primary takes writes again.
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// maxDigests bounds digests.max: each digest takes about a kilobyte.
const maxDigests = 1000000

// Log configures logging.
type Log struct {
	Level         string   `yaml:"level" json:"level"`                   // debug, info, warn, error
	Format        string   `yaml:"format" json:"format"`                 // text, json
	SlowStatement Duration `yaml:"slow_statement" json:"slow_statement"` // 0 = off
}

// Default returns a Config holding every default. It has no users and no
// backends, so it does not pass Validate on its own.
func Default() *Config {
	return &Config{
		Listen:        ":6033",
		ServerVersion: "",
		AuthPlugin:    "mysql_native_password",
		TLS:           TLS{Mode: TLSOff},
		BackendTLS:    BackendTLS{Mode: BackendTLSOff},
		Monitor: Monitor{
			User:              "monitor",
			Interval:          Duration(250 * time.Millisecond),
			Timeout:           Duration(time.Second),
			MaxReplicationLag: Duration(time.Second),
			ReadmitAfter:      3,
			Heartbeat: Heartbeat{
				Interval: Duration(100 * time.Millisecond),
				Schema:   "switchyard",
				Table:    "heartbeat",
			},
		},
		Routing: Routing{
			Consistency:          ConsistencyCausal,
			SessionWindow:        Duration(time.Second),
			CausalWait:           Duration(100 * time.Millisecond),
			ImplicitTransactions: ImplicitTxPrimary,
			NoReplica:            NoReplicaPrimary,
		},
		Admin: Admin{Listen: "127.0.0.1:6034"},
		Timeouts: Timeouts{
			Connect:   Duration(5 * time.Second),
			Handshake: Duration(10 * time.Second),
			Idle:      Duration(8 * time.Hour),
			Drain:     Duration(30 * time.Second),
			NetRead:   Duration(30 * time.Second),
			Backend:   Duration(2 * time.Second),
		},
		Pool: Pool{
			MaxOpen:     100,
			MaxIdle:     16,
			IdleTimeout: Duration(5 * time.Minute),
			WaitTimeout: Duration(5 * time.Second),
			ReleaseIdle: Duration(50 * time.Millisecond),
		},
		Limits:   Limits{MaxConnections: 10000, MaxPacketSize: 64 * MiB},
		Log:      Log{Level: "info", Format: "text"},
		Digests:  Digests{Max: 1000},
		Failover: Failover{Mode: FailoverManual, After: Duration(2 * time.Second), Timeout: Duration(5 * time.Second)},
	}
}

// redacted is what Redacted puts in place of secrets.
const redacted = "<redacted>"

// Redacted returns a deep copy of c in which every non-empty password,
// password hash (a native-password hash is enough to log in) and token is
// replaced by "<redacted>". It is meant for display, such as the admin API,
// and does not pass Validate.
func (c *Config) Redacted() *Config {
	r := c.clone()
	hide := func(s *string) {
		if *s != "" {
			*s = redacted
		}
	}
	for i := range r.Users {
		hide(&r.Users[i].Password)
		hide(&r.Users[i].PasswordHash)
	}
	hide(&r.Monitor.Password)
	hide(&r.Failover.Password)
	hide(&r.Failover.ReplicationPassword)
	hide(&r.Admin.Token)
	return r
}

// clone returns a deep copy of c; only the slices need copying.
func (c *Config) clone() *Config {
	r := *c
	r.Users = append([]User(nil), c.Users...)
	r.Backends = append([]Backend(nil), c.Backends...)
	return &r
}
