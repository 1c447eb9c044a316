package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/config"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// Accounts the backend TLS tests create on their own sandboxes.
var (
	// secureAccount and secureMonitor log in only over TLS (REQUIRE SSL).
	secureAccount = sandbox.User{Name: "secure", Password: "secure-secret-ops"}
	secureMonitor = sandbox.User{Name: "secmon", Password: "secmon-secret-ops"}
	// plugAccount authenticates with a plugin neither Switchyard nor
	// go-sql-driver speaks on MariaDB (dialog); on MySQL with
	// sha256_password, which Switchyard does not speak.
	plugAccount = sandbox.User{Name: "plug", Password: "plug-secret-ops"}
)

// backendTLSConfig renders a configuration for the lone primary of sb
// with users, the monitor account mon and backend_tls extra (top-level
// YAML), admin API on a free port.
func backendTLSConfig(sb *sandbox.Sandbox, users []sandbox.User, mon sandbox.User, extra string) string {
	var b strings.Builder
	b.WriteString("listen: \"127.0.0.1:0\"\nusers:\n")
	for _, u := range users {
		fmt.Fprintf(&b, "  - name: %s\n    password: %q\n", u.Name, u.Password)
	}
	fmt.Fprintf(&b, "backends:\n  - name: %s\n    address: %q\n    role: primary\n", sb.Primary.Name, sb.Primary.Addr())
	fmt.Fprintf(&b, "monitor:\n  user: %q\n  password: %q\n  timeout: 2s\n", mon.Name, mon.Password)
	b.WriteString("admin:\n  listen: \"127.0.0.1:0\"\n")
	b.WriteString("log:\n  format: json\n  level: info\n")
	b.WriteString(extra)
	return b.String()
}

// backendHealthOf polls GET /api/backends until the monitor's view of the
// primary satisfies ok, and returns it; it fails the test after 10s.
func (p *proc) backendHealthOf(what string, ok func(backendHealth) bool) backendHealth {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var resp struct {
			Backends []backendView `json:"backends"`
		}
		p.getJSON("/api/backends", &resp)
		var h backendHealth
		if len(resp.Backends) == 1 && resp.Backends[0].Health != nil {
			h = *resp.Backends[0].Health
			if ok(h) {
				return h
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("monitor's view of the primary after 10s: %+v; want %s", h, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// monitorFails waits for the monitor to report the primary down with an
// error containing each of want.
func (p *proc) monitorFails(want ...string) {
	p.t.Helper()
	p.backendHealthOf(fmt.Sprintf("down with an error containing %q", want), func(h backendHealth) bool {
		for _, w := range want {
			if !strings.Contains(h.Error, w) {
				return false
			}
		}
		return h.State == "down"
	})
}

// loginFails connects as u and checks that the client gets, within a few
// seconds, MySQL error code with a message containing each of want.
func (p *proc) loginFails(u sandbox.User, code uint16, want ...string) {
	p.t.Helper()
	start := time.Now()
	c, err := p.connErr(u)
	if err == nil {
		c.Close()
		p.t.Fatalf("connect as %s: no error, want %d", u.Name, code)
	}
	if d := time.Since(start); d > 5*time.Second {
		p.t.Errorf("connect as %s took %s to fail", u.Name, d)
	}
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != code {
		p.t.Fatalf("connect as %s: %v, want MySQL error %d", u.Name, err, code)
	}
	for _, w := range want {
		if !strings.Contains(me.Message, w) {
			p.t.Errorf("connect as %s: message %q does not contain %q", u.Name, me.Message, w)
		}
	}
}

// TestBackendLoginRefused has the primary refuse Switchyard's logins in
// each way issue 13 lists (wrong password, an account that requires TLS
// while backend_tls is off, an authentication plugin Switchyard does not
// speak) and checks what the client and the monitor (/api/backends) report.
// Then reloads turn backend TLS on: the accounts that require TLS get in
// over it, through a pool opened before the reload, and the monitor
// verifies the certificate as verify-ca and verify-identity say.
func TestBackendLoginRefused(t *testing.T) {
	opts := sandbox.Options{NoReplicas: true, Users: []sandbox.User{appAccount, otherAccount}}
	var caFile string
	if os.Getenv(sandboxtest.EngineEnv) != sandbox.FlavorMySQL {
		cert, key := writeSelfSigned(t)
		caFile = cert // its own CA
		// dialog_examples, for plugAccount, declares no maturity.
		opts.ExtraConfig = []string{"ssl_cert=" + cert, "ssl_key=" + key, "plugin_maturity=unknown"}
	}
	sb := sandboxtest.New(t, opts)
	mysqlEngine := sb.Flavor == sandbox.FlavorMySQL
	if mysqlEngine {
		caFile = filepath.Join(sb.Primary.DataDir, "ca.pem")
	}
	root, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	identified := func(u sandbox.User) string {
		if mysqlEngine {
			return "IDENTIFIED BY '" + u.Password + "'"
		}
		return "IDENTIFIED VIA mysql_native_password USING PASSWORD('" + u.Password + "')"
	}
	stmts := []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' %s REQUIRE SSL", secureAccount.Name, identified(secureAccount)),
		fmt.Sprintf("GRANT SELECT ON *.* TO '%s'@'%%'", secureAccount.Name),
		fmt.Sprintf("CREATE USER '%s'@'%%' %s REQUIRE SSL", secureMonitor.Name, identified(secureMonitor)),
		fmt.Sprintf("GRANT REPLICATION CLIENT, PROCESS, SELECT ON *.* TO '%s'@'%%'", secureMonitor.Name),
	}
	if mysqlEngine {
		stmts = append(stmts, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED WITH sha256_password BY '%s'", plugAccount.Name, plugAccount.Password))
	} else {
		stmts = append(stmts, "INSTALL SONAME 'dialog_examples'",
			fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED VIA two_questions USING '%s'", plugAccount.Name, plugAccount.Password))
	}
	stmts = append(stmts, fmt.Sprintf("GRANT REPLICATION CLIENT, PROCESS, SELECT ON *.* TO '%s'@'%%'", plugAccount.Name))
	for _, s := range stmts {
		if _, err := root.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}

	// Switchyard knows other by a password the backend does not accept.
	wrong := sandbox.User{Name: otherAccount.Name, Password: "not-the-backends-password"}
	users := []sandbox.User{appAccount, wrong, secureAccount, plugAccount}
	badMonitor := sandbox.User{Name: sb.Opts.Monitor.Name, Password: "wrong-monitor-password"}
	p := startProc(t, sb, "", backendTLSConfig(sb, users, badMonitor, ""))
	where := fmt.Sprintf("login to primary %s (%s) over plain TCP failed: ", sb.Primary.Name, sb.Primary.Addr())

	// A wrong password, for a client's session and for the monitor.
	p.loginFails(wrong, 1045, where+"Access denied for user '"+wrong.Name+"'")
	p.monitorFails("Access denied for user '" + badMonitor.Name + "'")

	// Accounts that require TLS, while backend_tls is off.
	p.loginFails(secureAccount, 1045, where+"Access denied for user '"+secureAccount.Name+"'")
	p.writeConfig(backendTLSConfig(sb, users, secureMonitor, ""))
	p.signal(syscall.SIGHUP)
	p.monitorFails("Access denied for user '" + secureMonitor.Name + "'")

	// An authentication plugin Switchyard does not speak.
	plugin := "dialog"
	if mysqlEngine {
		plugin = "sha256_password"
	}
	p.loginFails(plugAccount, 1251, where+fmt.Sprintf("its authentication plugin %q is not supported", plugin))
	if !mysqlEngine { // go-sql-driver speaks sha256_password
		p.writeConfig(backendTLSConfig(sb, users, plugAccount, ""))
		p.signal(syscall.SIGHUP)
		p.monitorFails("authentication plugin is not supported")
	}

	// A reload turns backend TLS on: new connections, the monitor's and
	// the pools', use it, and the accounts that require TLS get in.
	p.writeConfig(backendTLSConfig(sb, users, secureMonitor, "backend_tls:\n  mode: required\n"))
	p.signal(syscall.SIGHUP)
	p.backendHealthOf("usable over TLS", func(h backendHealth) bool { return h.State == "usable" })
	c := p.conn(secureAccount)
	var name, cipher string
	if err := c.QueryRowContext(context.Background(), "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
		t.Fatal(err)
	}
	if cipher == "" {
		t.Error("Ssl_cipher is empty on the backend session of an account that requires TLS")
	}

	// The monitor checks the certificate as configured. Each step starts
	// from a monitor that cannot log in (TLS off), so that "usable" is the
	// new monitor's finding.
	verify := func(mode string) {
		t.Helper()
		p.writeConfig(backendTLSConfig(sb, users, secureMonitor, ""))
		p.signal(syscall.SIGHUP)
		p.monitorFails("Access denied for user '" + secureMonitor.Name + "'")
		p.writeConfig(backendTLSConfig(sb, users, secureMonitor, fmt.Sprintf("backend_tls:\n  mode: %s\n  ca: %q\n", mode, caFile)))
		p.signal(syscall.SIGHUP)
	}
	verify("verify-ca")
	p.backendHealthOf("usable with verify-ca", func(h backendHealth) bool { return h.State == "usable" })
	verify("verify-identity")
	if mysqlEngine {
		// MySQL's own certificate names no host.
		p.monitorFails("certificate")
	} else {
		p.backendHealthOf("usable with verify-identity", func(h backendHealth) bool { return h.State == "usable" })
	}
}

// TestBackendTLSNotOffered points Switchyard at a server that offers no
// TLS: with backend_tls required, clients get error 1429 naming the
// backend and the monitor reports the primary down; preferred falls back
// to plain TCP for both.
func TestBackendTLSNotOffered(t *testing.T) {
	opts := sandbox.Options{NoReplicas: true, Users: []sandbox.User{appAccount, otherAccount}}
	if os.Getenv(sandboxtest.EngineEnv) == sandbox.FlavorMySQL {
		opts.ExtraConfig = []string{"tls_version="} // MySQL makes a certificate of its own
	}
	sb := sandboxtest.New(t, opts)
	users := []sandbox.User{appAccount}
	p := startProc(t, sb, "", backendTLSConfig(sb, users, sb.Opts.Monitor, "backend_tls:\n  mode: required\n"))
	p.loginFails(appAccount, 1429, fmt.Sprintf("primary %s (%s)", sb.Primary.Name, sb.Primary.Addr()),
		"the server does not offer TLS")
	p.monitorFails("TLS requested but server does not support TLS")

	p.writeConfig(backendTLSConfig(sb, users, sb.Opts.Monitor, "backend_tls:\n  mode: preferred\n"))
	p.signal(syscall.SIGHUP)
	p.backendHealthOf("usable over plain TCP", func(h backendHealth) bool { return h.State == "usable" })
	c := p.conn(appAccount)
	var name, cipher string
	if err := c.QueryRowContext(context.Background(), "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil {
		t.Fatal(err)
	}
	if cipher != "" {
		t.Errorf("Ssl_cipher = %q on a server that offers no TLS", cipher)
	}
}

// writeSelfSigned writes a self-signed RSA certificate for 127.0.0.1 and
// its key, for a MariaDB server's ssl_cert and ssl_key.
func writeSelfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestBackendTLSBuild checks the tls.Config each mode gets: no check of
// the certificate for preferred and required, the chain alone for
// verify-ca, the chain and the name (server_name, else the address's host)
// for verify-identity.
func TestBackendTLSBuild(t *testing.T) {
	cert, key := writeSelfSigned(t)
	cfg := &config.Config{BackendTLS: config.BackendTLS{Mode: config.BackendTLSVerifyIdentity, CA: cert, Cert: cert, Key: key}}
	cases := []struct {
		own        config.BackendTLS
		skip       bool // InsecureSkipVerify
		chain      bool // VerifyConnection checks the chain
		serverName string
	}{
		{config.BackendTLS{Mode: config.BackendTLSPreferred}, true, false, "db1.internal"},
		{config.BackendTLS{Mode: config.BackendTLSRequired}, true, false, "db1.internal"},
		{config.BackendTLS{Mode: config.BackendTLSVerifyCA}, true, true, "db1.internal"},
		{config.BackendTLS{}, false, false, "db1.internal"},
		{config.BackendTLS{ServerName: "db1.example"}, false, false, "db1.example"},
	}
	for _, c := range cases {
		b := config.Backend{Address: "db1.internal:3306", TLS: c.own}
		tc, err := backendTLS(cfg, b)
		if err != nil {
			t.Fatalf("backendTLS(%+v): %v", c.own, err)
		}
		if tc.InsecureSkipVerify != c.skip || (tc.VerifyConnection != nil) != c.chain || tc.ServerName != c.serverName ||
			len(tc.Certificates) != 1 || (c.chain || !c.skip) != (tc.RootCAs != nil) {
			t.Errorf("backendTLS(%+v) = skip %v, chain check %v, server name %q, %d certificates, roots %v; want %v, %v, %q, 1, %v",
				c.own, tc.InsecureSkipVerify, tc.VerifyConnection != nil, tc.ServerName, len(tc.Certificates), tc.RootCAs != nil,
				c.skip, c.chain, c.serverName, c.chain || !c.skip)
		}
	}
	if tc, err := backendTLS(cfg, config.Backend{Address: "h:1", TLS: config.BackendTLS{Mode: config.BackendTLSOff}}); tc != nil || err != nil {
		t.Errorf("mode off: %v, %v; want nil, nil", tc, err)
	}
}

// TestBackendTLSFilesDigest checks that the digest the monitor restarts on
// follows the contents of the files, not only their names.
func TestBackendTLSFilesDigest(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	write := func(s string) {
		if err := os.WriteFile(ca, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("first")
	cfg := &config.Config{BackendTLS: config.BackendTLS{Mode: config.BackendTLSVerifyCA, CA: ca},
		Backends: []config.Backend{{Address: "h:1"}}}
	before := backendTLSFiles(cfg)
	if backendTLSFiles(cfg) != before {
		t.Error("digest differs for the same files")
	}
	write("renewed")
	if backendTLSFiles(cfg) == before {
		t.Error("digest unchanged after the CA file changed")
	}
}
