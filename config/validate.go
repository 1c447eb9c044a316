package config

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Validate checks c and returns every problem found as Errors, or nil. It
// reads the TLS and RSA key files named in c to check that they load.
func (c *Config) Validate() error {
	var errs Errors
	checkAddr(&errs, "listen", c.Listen, listenAddr)
	checkServerVersion(&errs, c.ServerVersion)
	switch c.AuthPlugin {
	case "mysql_native_password", "caching_sha2_password":
	default:
		errs.add("auth_plugin", "must be mysql_native_password or caching_sha2_password, got %q", c.AuthPlugin)
	}
	c.TLS.validate(&errs)
	c.validateBackendTLS(&errs)
	if c.RSAKey != "" {
		checkRSAKey(&errs, "rsa_key", c.RSAKey)
	}
	validateUsers(&errs, c.Users)
	validateBackends(&errs, c.Backends)
	c.Monitor.validate(&errs)
	c.Routing.validate(&errs)
	if c.Admin.Listen != "" {
		checkAddr(&errs, "admin.listen", c.Admin.Listen, listenAddr)
	}
	c.Timeouts.validate(&errs)
	c.Pool.validate(&errs)
	c.Limits.validate(&errs)
	c.Log.validate(&errs)
	if c.Digests.Max < 0 || c.Digests.Max > maxDigests {
		errs.add("digests.max", "must be between 0 and %d, got %d", maxDigests, c.Digests.Max)
	}
	c.Failover.validate(&errs)
	return errs.err()
}

func (f Failover) validate(errs *Errors) {
	switch f.Mode {
	case FailoverOff, FailoverManual:
	case FailoverAuto:
		if f.User == "" {
			errs.add("failover.user", "required when failover.mode is auto")
		}
	default:
		errs.add("failover.mode", "must be off, manual or auto, got %q", f.Mode)
	}
	positive(errs, "failover.timeout", f.Timeout)
	positive(errs, "failover.after", f.After)
	if f.ReplicationPassword != "" && f.ReplicationUser == "" {
		errs.add("failover.replication_user", "required with failover.replication_password")
	}
}

func checkServerVersion(errs *Errors, v string) {
	const path = "server_version"
	switch {
	case v == "":
		// Mirror the primary's own version string.
	case strings.ContainsRune(v, 0):
		// The handshake sends it NUL-terminated.
		errs.add(path, "must not contain a NUL byte")
	default:
		// Connectors parse the leading "major.minor.patch" to pick features.
		parts := strings.SplitN(v, ".", 3)
		if len(parts) < 3 || !isDigits(parts[0]) || !isDigits(parts[1]) || !isDigits(leadingDigits(parts[2])) {
			errs.add(path, "must start with a version number such as \"8.0.35\", got %q", v)
		}
	}
}

func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

func (t TLS) validate(errs *Errors) {
	if !checkEnum(errs, "tls.mode", t.Mode, TLSOff, TLSOptional, TLSRequired) || t.Mode == TLSOff {
		return
	}
	certOK := checkFile(errs, "tls.cert", t.Cert, t.Mode)
	keyOK := checkFile(errs, "tls.key", t.Key, t.Mode)
	if certOK && keyOK {
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			errs.add("tls", "cert and key do not load as a pair: %v", err)
		}
	}
}

// checkFile reports whether the file named for a TLS mode exists.
func checkFile(errs *Errors, path, name string, mode TLSMode) bool {
	if name == "" {
		errs.add(path, "required when tls.mode is %s", mode)
		return false
	}
	if problem := fileProblem(name); problem != "" {
		errs.add(path, "%s", problem)
		return false
	}
	return true
}

// fileProblem describes why name is not a readable regular file, or returns
// "". Insisting on a regular file keeps a typo such as /dev/zero from
// hanging the load.
func fileProblem(name string) string {
	fi, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("file %q does not exist", name)
	case err != nil:
		return err.Error()
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("%q is not a regular file", name)
	}
	return ""
}

// checkRSAKey checks that name holds a PEM RSA private key (PKCS #1 or #8).
func checkRSAKey(errs *Errors, path, name string) {
	if problem := fileProblem(name); problem != "" {
		errs.add(path, "%s", problem)
		return
	}
	data, err := os.ReadFile(name)
	if err != nil {
		errs.add(path, "%v", err)
		return
	}
	block, _ := pem.Decode(data)
	if block == nil {
		errs.add(path, "no PEM data in %q", name)
		return
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if _, ok := k.(*rsa.PrivateKey); ok {
			return
		}
	}
	errs.add(path, "%q does not hold an RSA private key", name)
}

func validateUsers(errs *Errors, users []User) {
	if len(users) == 0 {
		errs.add("users", "at least one user is required")
	}
	seen := map[string]int{}
	for i, u := range users {
		p := index("users", i)
		if u.Name == "" {
			errs.add(field(p, "name"), "required")
		} else if j, dup := seen[u.Name]; dup {
			errs.add(field(p, "name"), "duplicate user %q (also users[%d])", u.Name, j)
		} else {
			seen[u.Name] = i
		}
		switch {
		case u.Password != "" && u.PasswordHash != "":
			errs.add(p, "set only one of password and password_hash")
		case u.Password == "" && u.PasswordHash == "":
			errs.add(p, "one of password or password_hash is required")
		case u.PasswordHash != "" && !isNativeHash(u.PasswordHash):
			errs.add(field(p, "password_hash"), "must be \"*\" followed by 40 hex digits, as in SELECT PASSWORD('...')")
		}
		atLeast(errs, field(p, "max_connections"), u.MaxConnections, 0)
		checkEnum(errs, field(p, "consistency"), u.Consistency,
			ConsistencyInherit, ConsistencyEventual, ConsistencySession, ConsistencyCausal, ConsistencyGlobal)
	}
}

// isNativeHash reports whether h looks like a mysql_native_password hash:
// "*" and the hex of SHA1(SHA1(password)).
func isNativeHash(h string) bool {
	if len(h) != 41 || h[0] != '*' {
		return false
	}
	for _, c := range h[1:] {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

func validateBackends(errs *Errors, backends []Backend) {
	if len(backends) == 0 {
		errs.add("backends", "at least one backend is required")
	}
	addrs := map[string]int{}
	labels := map[string]int{} // names as logs and metrics see them
	primary := -1
	for i, b := range backends {
		p := index("backends", i)
		if checkAddr(errs, field(p, "address"), b.Address, backendAddr) {
			if j, dup := addrs[b.Address]; dup {
				errs.add(field(p, "address"), "duplicate address %q (also backends[%d])", b.Address, j)
			} else {
				addrs[b.Address] = i
			}
		}
		j, dup := labels[b.Label()]
		switch {
		case !dup:
			labels[b.Label()] = i
		case b.Name != "":
			errs.add(field(p, "name"), "duplicate name %q (also backends[%d])", b.Name, j)
		case backends[j].Name != "":
			errs.add(field(p, "name"), "the default name %q (the address) is already the name of backends[%d]", b.Address, j)
		}
		// Two unnamed backends with one address: reported as a duplicate address.
		atLeast(errs, field(p, "weight"), b.Weight, 0)
		if checkEnum(errs, field(p, "role"), b.Role, RoleAuto, RolePrimary, RoleReplica) && b.Role == RolePrimary {
			if primary >= 0 {
				errs.add(field(p, "role"), "more than one primary (also backends[%d])", primary)
			} else {
				primary = i
			}
		}
	}
}

func (m Monitor) validate(errs *Errors) {
	if m.User == "" {
		errs.add("monitor.user", "required")
	}
	positive(errs, "monitor.interval", m.Interval)
	positive(errs, "monitor.timeout", m.Timeout)
	positive(errs, "monitor.max_replication_lag", m.MaxReplicationLag)
	atLeast(errs, "monitor.readmit_after", m.ReadmitAfter, 1)
	positive(errs, "monitor.heartbeat.interval", m.Heartbeat.Interval)
	checkIdent(errs, "monitor.heartbeat.schema", m.Heartbeat.Schema)
	checkIdent(errs, "monitor.heartbeat.table", m.Heartbeat.Table)
}

// checkIdent keeps heartbeat names to plain identifiers, which are safe to
// quote with backticks in generated SQL.
func checkIdent(errs *Errors, path, s string) {
	ok := s != "" && len(s) <= 64
	for _, c := range s {
		ok = ok && (c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z')
	}
	if !ok {
		errs.add(path, "invalid identifier %q (use 1 to 64 letters, digits, \"_\" or \"$\")", s)
	}
}

func (r Routing) validate(errs *Errors) {
	checkEnum(errs, "routing.consistency", r.Consistency, ConsistencyEventual, ConsistencySession, ConsistencyCausal, ConsistencyGlobal)
	positive(errs, "routing.session_window", r.SessionWindow)
	if r.CausalWait < 0 {
		errs.add("routing.causal_wait", "must not be negative, got %s", r.CausalWait)
	}
	checkEnum(errs, "routing.implicit_transactions", r.ImplicitTransactions, ImplicitTxPrimary, ImplicitTxLazy)
	checkEnum(errs, "routing.no_replica", r.NoReplica, NoReplicaPrimary, NoReplicaError)
}

func (t Timeouts) validate(errs *Errors) {
	positive(errs, "timeouts.connect", t.Connect)
	positive(errs, "timeouts.handshake", t.Handshake)
	notNegative(errs, "timeouts.idle", t.Idle)
	notNegative(errs, "timeouts.drain", t.Drain)
	positive(errs, "timeouts.net_read", t.NetRead)
	positive(errs, "timeouts.backend", t.Backend)
}

func (p Pool) validate(errs *Errors) {
	atLeast(errs, "pool.max_open", p.MaxOpen, 1)
	if atLeast(errs, "pool.max_idle", p.MaxIdle, 0) && p.MaxIdle > p.MaxOpen {
		errs.add("pool.max_idle", "must not exceed pool.max_open (%d > %d)", p.MaxIdle, p.MaxOpen)
	}
	notNegative(errs, "pool.idle_timeout", p.IdleTimeout)
	positive(errs, "pool.wait_timeout", p.WaitTimeout)
	notNegative(errs, "pool.release_idle", p.ReleaseIdle)
}

func (l Limits) validate(errs *Errors) {
	atLeast(errs, "limits.max_connections", l.MaxConnections, 1)
	// The range MySQL allows for max_allowed_packet.
	if l.MaxPacketSize < KiB || l.MaxPacketSize > GiB {
		errs.add("limits.max_packet_size", "must be between 1KiB and 1GiB, got %s", l.MaxPacketSize)
	}
}

func (l Log) validate(errs *Errors) {
	checkEnum(errs, "log.level", l.Level, "debug", "info", "warn", "error")
	checkEnum(errs, "log.format", l.Format, "text", "json")
	notNegative(errs, "log.slow_statement", l.SlowStatement)
}

// addrKind selects the rules checkAddr applies.
type addrKind int

const (
	listenAddr  addrKind = iota // host may be empty (all interfaces), port 0 picks a free port
	backendAddr                 // host and a port from 1 to 65535 are required
)

// checkAddr checks a host:port address and reports whether it is valid.
func checkAddr(errs *Errors, path, addr string, kind addrKind) bool {
	if addr == "" {
		errs.add(path, "required")
		return false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		switch {
		case errors.As(err, &ae) && ae.Err == "missing port in address":
			errs.add(path, "missing port")
		case errors.As(err, &ae) && ae.Err == "too many colons in address":
			errs.add(path, "too many colons in %q (write IPv6 addresses as \"[::1]:3306\")", addr)
		default:
			errs.add(path, "invalid address %q: %v", addr, err)
		}
		return false
	}
	ok := true
	if host == "" && kind == backendAddr {
		errs.add(path, "empty host")
		ok = false
	}
	n, err := strconv.Atoi(port)
	switch {
	case port == "":
		errs.add(path, "missing port")
		ok = false
	case err != nil || n < 0 || n > 65535 || !isDigits(port) || (n == 0 && kind == backendAddr):
		errs.add(path, "invalid port %q", port)
		ok = false
	}
	return ok
}

// checkEnum reports whether v is one of allowed, adding an error listing them
// when it is not.
func checkEnum[T ~string](errs *Errors, path string, v T, allowed ...T) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
		if a == "" {
			names[i] = `""`
		}
	}
	errs.add(path, "invalid value %q (want one of: %s)", v, strings.Join(names, ", "))
	return false
}

func positive(errs *Errors, path string, d Duration) {
	if d <= 0 {
		errs.add(path, "must be greater than 0, got %s", d)
	}
}

func notNegative(errs *Errors, path string, d Duration) {
	if d < 0 {
		errs.add(path, "must not be negative, got %s", d)
	}
}

func atLeast(errs *Errors, path string, n, min int) bool {
	if n < min {
		errs.add(path, "must be at least %d, got %d", min, n)
		return false
	}
	return true
}
