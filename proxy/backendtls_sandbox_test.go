package proxy

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// tlsSandbox starts a lone primary that offers TLS, with the test users:
// MySQL with the certificate it made at initialize, MariaDB with one for
// 127.0.0.1 signed by a CA the test makes. It returns the sandbox and a pool
// of the CA that signed the server's certificate.
func tlsSandbox(t *testing.T) (*sandbox.Sandbox, *x509.CertPool) {
	t.Helper()
	opts := sandbox.Options{NoReplicas: true, Users: []sandbox.User{
		{Name: appUser, Password: appPass}, {Name: otherUser, Password: otherPass},
	}}
	var caFile string
	if os.Getenv(sandboxtest.EngineEnv) != sandbox.FlavorMySQL {
		var cert, key string
		caFile, cert, key = writeServerPKI(t, t.TempDir())
		opts.ExtraConfig = []string{"ssl_ca=" + caFile, "ssl_cert=" + cert, "ssl_key=" + key}
	}
	sb := sandboxtest.New(t, opts)
	if sb.Flavor == sandbox.FlavorMySQL {
		caFile = filepath.Join(sb.Primary.DataDir, "ca.pem")
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return sb, pool
}

// writeServerPKI writes a CA and a server certificate and key for
// 127.0.0.1 it signed into dir, and returns the three file names.
func writeServerPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchyard backend test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	// The server key is caKey too: one RSA key generation is enough here.
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server-cert.pem"), filepath.Join(dir, "server-key.pem")
	for name, b := range map[string]*pem.Block{
		caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: srvDER},
		keyFile:  {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(caKey)},
	} {
		if err := os.WriteFile(name, pem.EncodeToMemory(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// poolConns returns every connection user's pool to b holds, idle or in use.
func poolConns(b *Backend, user string) []*backendConn {
	b.mu.Lock()
	p := b.pools[user]
	b.mu.Unlock()
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]*backendConn(nil), p.idle...)
	for bc := range p.inUse {
		out = append(out, bc)
	}
	return out
}

// idleConns returns how many idle connections user's pool to b holds.
func idleConns(b *Backend, user string) int {
	b.mu.Lock()
	p := b.pools[user]
	b.mu.Unlock()
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// sessionStatus returns a SHOW SESSION STATUS value, as the backend
// connection serving r's session sees it.
func (r *rawClient) sessionStatus(name string) string {
	r.t.Helper()
	res := r.query("SHOW SESSION STATUS LIKE '" + name + "'")
	if res[0][0] == 0xff {
		r.t.Fatalf("SHOW SESSION STATUS: %v", parseErr(res[0]))
	}
	if len(res) < 5 { // column count, 2 columns, EOF, [row], EOF
		return ""
	}
	row := res[len(res)-2]
	_, _, n, err := mysql.LengthEncodedString(row)
	if err != nil {
		r.t.Fatalf("SHOW SESSION STATUS row % x: %v", row, err)
	}
	v, _, _, err := mysql.LengthEncodedString(row[n:])
	if err != nil {
		r.t.Fatalf("SHOW SESSION STATUS row % x: %v", row, err)
	}
	return string(v)
}

// TestBackendSha2FullAuth logs Switchyard in to a server whose
// caching_sha2_password cache is empty (FLUSH PRIVILEGES before each step),
// over TLS and over plain TCP, for a session's first connection, after
// COM_CHANGE_USER (a connection as the new user) and after
// COM_RESET_CONNECTION. On MySQL, where every account is caching_sha2, each
// new connection must have taken full authentication: cleartext over TLS,
// the RSA exchange otherwise. Ssl_cipher on the backend session shows the
// transport. On MariaDB the accounts are mysql_native_password: the same
// steps check the TLS transport alone.
func TestBackendSha2FullAuth(t *testing.T) {
	sb, roots := tlsSandbox(t)
	root, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	flush := func(t *testing.T) {
		t.Helper()
		if _, err := root.Exec("FLUSH PRIVILEGES"); err != nil {
			t.Fatalf("FLUSH PRIVILEGES: %v", err)
		}
	}
	wantFull := sb.Flavor == sandbox.FlavorMySQL
	for _, overTLS := range []bool{true, false} {
		name := "rsa"
		if overTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			backend := &Backend{Name: "db1", Addr: sb.Primary.Addr(), Role: replication.RolePrimary, Weight: 1}
			if overTLS {
				// verify-ca: MySQL's own certificate names no host.
				cfg := &tls.Config{RootCAs: roots, InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
					_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots})
					return err
				}}
				backend.TLS = &BackendTLS{Config: cfg}
			}
			opts := testOptions(t)
			opts.Backends = []*Backend{backend}
			_, addr := serveProxy(t, opts)
			check := func(t *testing.T, r *rawClient, user string) {
				t.Helper()
				if c := r.sessionStatus("Ssl_cipher"); (c != "") != overTLS {
					t.Errorf("backend Ssl_cipher = %q, want a cipher: %v", c, overTLS)
				}
				conns := poolConns(backend, user)
				if len(conns) == 0 {
					t.Fatalf("no connection as %s", user)
				}
				for _, bc := range conns {
					if bc.overTLS != overTLS || bc.fullAuth != wantFull {
						t.Errorf("connection %s as %s: over TLS %v, full authentication %v; want %v and %v",
							bc, user, bc.overTLS, bc.fullAuth, overTLS, wantFull)
					}
				}
			}

			flush(t)
			r := loginRaw(t, addr, appUser, appPass, "", 0)
			check(t, r, appUser)

			// An idle connection handed back to the pool is taken again:
			// the pool's liveness check looks below TLS.
			first := poolConns(backend, appUser)
			for range 3 {
				waitFor(t, "the session to hand its connection back", func() bool { return idleConns(backend, appUser) == 1 })
				r.query("SELECT 1")
			}
			if now := poolConns(backend, appUser); len(now) != 1 || now[0] != first[0] {
				t.Errorf("after three statements with a hand-back before each, the pool holds %v, want only %v", now, first)
			}

			// COM_CHANGE_USER: Switchyard logs in anew as the new user.
			flush(t)
			cu := []byte{mysql.COM_CHANGE_USER}
			cu = append(cu, otherUser+"\x00"...)
			auth := mysql.CalcNativePassword(r.scramble, []byte(otherPass))
			cu = append(cu, byte(len(auth)))
			cu = append(cu, auth...)
			cu = append(cu, 0, mysql.DEFAULT_COLLATION_ID, 0)
			cu = append(cu, authNative+"\x00"...)
			r.command(cu)
			if ok := r.read(); ok[0] != 0 {
				t.Fatalf("change user: %v", parseErr(ok))
			}
			check(t, r, otherUser)

			// COM_RESET_CONNECTION: the session's state goes, its
			// connection (reset, or a new login) stays on the transport.
			flush(t)
			r.query("SET @v = 5")
			r.command([]byte{mysql.COM_RESET_CONNECTION})
			if ok := r.read(); ok[0] != 0 {
				t.Fatalf("reset: %v", parseErr(ok))
			}
			if got := r.query("SELECT @v"); got[len(got)-2][0] != 0xfb {
				t.Errorf("SELECT @v after reset is not NULL: % x", got[len(got)-2])
			}
			check(t, r, otherUser)
			// And a fresh login once the cache is empty again.
			flush(t)
			r2 := loginRaw(t, addr, otherUser, otherPass, "", 0)
			r2.command([]byte{mysql.COM_RESET_CONNECTION})
			if ok := r2.read(); ok[0] != 0 {
				t.Fatalf("reset: %v", parseErr(ok))
			}
			check(t, r2, otherUser)
		})
	}
}
