package replication

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"
)

// Role is a backend's place in the replication topology.
type Role string

// Roles. RoleAuto appears only in Server.Role; a BackendStatus is always RolePrimary or
// RoleReplica.
const (
	RoleAuto    Role = ""
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
)

// Server is one server to watch.
type Server struct {
	Name string // unique label used in snapshots, logs and metrics
	Addr string // host:port
	// Role is the configured role. RoleAuto, the default, lets the monitor elect the
	// primary from read_only. RolePrimary pins this backend as the primary whatever its
	// read_only says (at most one backend may have it). RoleReplica keeps this backend
	// from ever being the primary, even when it is writable.
	Role Role
	// TLS, if not nil, is used for this backend's probe connections instead of
	// Options.TLS. It must not be modified once the monitor is created.
	TLS *tls.Config
	// TLSPreferred lets a probe connection go on over plain TCP when the server does
	// not offer TLS; otherwise such a server fails the probe.
	TLSPreferred bool
}

// Options configure a Monitor. The zero value of each field documents its default.
type Options struct {
	// User and Password are the monitor account, the same on every backend. It needs
	// REPLICATION CLIENT, PROCESS and SELECT (MariaDB: also SLAVE MONITOR), plus CREATE,
	// INSERT and UPDATE on the heartbeat schema when the heartbeat is on. User is
	// required.
	User, Password string
	// TLS, if not nil, is used for every probe connection.
	TLS *tls.Config
	// Interval is the time between the starts of two probes of one backend. Zero
	// means 250ms.
	Interval time.Duration
	// Timeout is the deadline of one probe, connecting included. Zero means 1s.
	Timeout time.Duration
	// MaxLag is the replication lag above which a replica gets no reads. Zero means 1s.
	MaxLag time.Duration
	// ReadmitAfter is how many consecutive good checks a lagging or down replica needs
	// before it gets reads again. Zero means 3.
	ReadmitAfter int
	// MaxBackoff caps the probe interval of an unreachable backend, which doubles from
	// Interval at each failed probe. Zero means 2s; it is raised to Interval if smaller.
	MaxBackoff time.Duration
	// Heartbeat configures precise lag measurement; off by default.
	Heartbeat HeartbeatOptions
	// Logger receives state changes, primary changes and conflicts, each record with
	// component=replication (so do not give it a logger that names a component). Nil
	// discards them.
	Logger *slog.Logger
	// OnChange, if not nil, is called with the new snapshot whenever the primary, the
	// conflict flag or any backend's state, role or read_only changes (not on mere lag
	// changes), from the first snapshot after Ready on. It runs on the goroutine that called Run, which waits for it: it must
	// return quickly and must not call Run.
	OnChange func(*Snapshot)
}

// HeartbeatOptions configure the heartbeat table. See the package documentation.
type HeartbeatOptions struct {
	Enabled bool
	// Interval is the time between two heartbeat writes. Zero means 100ms.
	Interval time.Duration
	// Schema and Table name the heartbeat table: letters, digits, "_" and "$". Empty
	// means "switchyard" and "heartbeat".
	Schema, Table string
}

// Defaults.
const (
	DefaultInterval          = 250 * time.Millisecond
	DefaultTimeout           = time.Second
	DefaultMaxLag            = time.Second
	DefaultReadmitAfter      = 3
	DefaultMaxBackoff        = 2 * time.Second
	DefaultHeartbeatInterval = 100 * time.Millisecond
	DefaultHeartbeatSchema   = "switchyard"
	DefaultHeartbeatTable    = "heartbeat"
)

var identRE = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)

// withDefaults returns o with defaults applied, or every problem found.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	def := func(d *time.Duration, v time.Duration, field string) {
		switch {
		case *d < 0:
			errs = append(errs, fmt.Errorf("%s: %s is negative", field, *d))
		case *d == 0:
			*d = v
		}
	}
	if o.User == "" {
		errs = append(errs, errors.New("user: required"))
	}
	def(&o.Interval, DefaultInterval, "interval")
	def(&o.Timeout, DefaultTimeout, "timeout")
	def(&o.MaxLag, DefaultMaxLag, "max lag")
	def(&o.MaxBackoff, DefaultMaxBackoff, "max backoff")
	def(&o.Heartbeat.Interval, DefaultHeartbeatInterval, "heartbeat interval")
	switch {
	case o.ReadmitAfter < 0:
		errs = append(errs, fmt.Errorf("readmit after: %d is negative", o.ReadmitAfter))
	case o.ReadmitAfter == 0:
		o.ReadmitAfter = DefaultReadmitAfter
	}
	o.MaxBackoff = max(o.MaxBackoff, o.Interval)
	if o.Heartbeat.Schema == "" {
		o.Heartbeat.Schema = DefaultHeartbeatSchema
	}
	if o.Heartbeat.Table == "" {
		o.Heartbeat.Table = DefaultHeartbeatTable
	}
	for _, id := range [...]struct{ field, name string }{
		{"heartbeat schema", o.Heartbeat.Schema}, {"heartbeat table", o.Heartbeat.Table},
	} {
		if !identRE.MatchString(id.name) {
			errs = append(errs, fmt.Errorf("%s: %q is not a plain identifier", id.field, id.name))
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, errors.Join(errs...)
}

// checkBackends reports every problem with the backend list.
func checkBackends(backends []Server) error {
	var errs []error
	if len(backends) == 0 {
		errs = append(errs, errors.New("backends: none"))
	}
	names := map[string]int{}
	pinned := -1
	for i, b := range backends {
		if b.Name == "" {
			errs = append(errs, fmt.Errorf("backends[%d].name: required", i))
		} else if j, dup := names[b.Name]; dup {
			errs = append(errs, fmt.Errorf("backends[%d].name: %q is already backends[%d]", i, b.Name, j))
		} else {
			names[b.Name] = i
		}
		if _, _, err := net.SplitHostPort(b.Addr); err != nil {
			errs = append(errs, fmt.Errorf("backends[%d].addr: %w", i, err))
		}
		switch b.Role {
		case RoleAuto, RoleReplica:
		case RolePrimary:
			if pinned >= 0 {
				errs = append(errs, fmt.Errorf("backends[%d].role: backends[%d] is already primary", i, pinned))
			}
			pinned = i
		default:
			errs = append(errs, fmt.Errorf("backends[%d].role: %q is not primary, replica or empty", i, b.Role))
		}
	}
	return errors.Join(errs...)
}
