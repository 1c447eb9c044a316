package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/replication"
)

// A scripted backend for the client side of Switchyard's backend login:
// the TLS upgrade and caching_sha2_password full authentication, written
// from the protocol documentation rather than from Switchyard's code.
// https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html

// loginBackend accepts logins as appUser/appPass. Its cache of
// caching_sha2 accounts is always empty, so every login takes full
// authentication: the cleartext password over TLS, or the RSA exchange.
type loginBackend struct {
	ln     net.Listener
	addr   string
	offer  bool        // CLIENT_SSL in the greeting
	cert   *tls.Config // the server's TLS configuration
	plugin string      // the plugin the greeting names
	key    *rsa.PrivateKey
	wg     sync.WaitGroup

	mu     sync.Mutex
	logins []loginSeen
}

// loginSeen is what the backend saw of one login.
type loginSeen struct {
	tls      bool   // the client upgraded to TLS
	how      string // "cleartext" or "rsa": how the password came
	password string
	err      string // why the backend refused, "" when it accepted
}

// startLoginBackend starts a backend naming plugin in its greeting and
// offering TLS when offer is set.
func startLoginBackend(t *testing.T, plugin string, offer bool) *loginBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &loginBackend{ln: ln, addr: ln.Addr().String(), offer: offer, plugin: plugin, key: testKey(), cert: testTLS(t)}
	b.wg.Go(b.accept)
	t.Cleanup(func() {
		ln.Close()
		b.wg.Wait()
	})
	return b
}

func (b *loginBackend) accept() {
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Go(func() {
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			seen := b.serve(nc)
			b.mu.Lock()
			b.logins = append(b.logins, seen)
			b.mu.Unlock()
		})
	}
}

// seen returns the logins so far.
func (b *loginBackend) seen() []loginSeen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]loginSeen(nil), b.logins...)
}

// packets frames MySQL packets on one connection.
type packets struct {
	rw  io.ReadWriter
	br  *bufio.Reader
	seq byte
}

func (p *packets) read() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(p.br, h[:]); err != nil {
		return nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	p.seq = h[3] + 1
	body := make([]byte, n)
	_, err := io.ReadFull(p.br, body)
	return body, err
}

func (p *packets) write(body []byte) error {
	h := []byte{byte(len(body)), byte(len(body) >> 8), byte(len(body) >> 16), p.seq}
	p.seq++
	_, err := p.rw.Write(append(h, body...))
	return err
}

// serve runs one login: greeting, optional TLS, full authentication, then
// OK or ERR; afterwards it answers COM_QUIT by closing and anything else
// with OK, until the client goes.
func (b *loginBackend) serve(nc net.Conn) (seen loginSeen) {
	fail := func(msg string) loginSeen {
		seen.err = msg
		return seen
	}
	pk := &packets{rw: nc, br: bufio.NewReader(nc)}
	scramble := make([]byte, 20)
	for i := range scramble {
		scramble[i] = byte('a' + i)
	}
	caps := uint32(mysql.CLIENT_LONG_PASSWORD | mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION |
		mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA | mysql.CLIENT_TRANSACTIONS |
		mysql.CLIENT_CONNECT_WITH_DB | mysql.CLIENT_DEPRECATE_EOF | mysql.CLIENT_SESSION_TRACK)
	if b.offer {
		caps |= mysql.CLIENT_SSL
	}
	g := append([]byte{10}, "8.4.0-login-fake\x00"...)
	g = binary.LittleEndian.AppendUint32(g, 7)
	g = append(g, scramble[:8]...)
	g = append(g, 0)
	g = binary.LittleEndian.AppendUint16(g, uint16(caps))
	g = append(g, 255)
	g = binary.LittleEndian.AppendUint16(g, mysql.SERVER_STATUS_AUTOCOMMIT)
	g = binary.LittleEndian.AppendUint16(g, uint16(caps>>16))
	g = append(g, 21)
	g = append(g, make([]byte, 10)...)
	g = append(g, scramble[8:]...)
	g = append(g, 0)
	g = append(g, b.plugin+"\x00"...)
	if err := pk.write(g); err != nil {
		return fail("write greeting")
	}
	resp, err := pk.read()
	if err != nil {
		return fail("no handshake response")
	}
	if len(resp) == 32 && binary.LittleEndian.Uint32(resp)&mysql.CLIENT_SSL != 0 {
		if !b.offer {
			return fail("SSLRequest although TLS was not offered")
		}
		// The ClientHello may already sit in the reader's buffer.
		tc := tls.Server(readerConn{Conn: nc, r: pk.br}, b.cert)
		if err := tc.Handshake(); err != nil {
			return fail("tls handshake: " + err.Error())
		}
		seen.tls = true
		pk.rw, pk.br = tc, bufio.NewReader(tc)
		if resp, err = pk.read(); err != nil {
			return fail("no handshake response over TLS")
		}
	}
	if len(resp) < 33 {
		return fail("short handshake response")
	}
	user, _, _ := bytes.Cut(resp[32:], []byte{0})
	if string(user) != appUser {
		return fail("unknown user " + string(user))
	}
	// The cache is empty: ask for full authentication.
	if err := pk.write([]byte{0x01, 0x04}); err != nil {
		return fail("write perform-full")
	}
	p, err := pk.read()
	if err != nil {
		return fail("no password")
	}
	if seen.tls {
		seen.how, seen.password = "cleartext", string(bytes.TrimSuffix(p, []byte{0}))
		if !bytes.HasSuffix(p, []byte{0}) {
			return fail("cleartext password not NUL-terminated")
		}
	} else {
		if len(p) != 1 || p[0] != 0x02 {
			return fail("over plain TCP, want a public key request")
		}
		der, _ := x509.MarshalPKIXPublicKey(&b.key.PublicKey)
		if err := pk.write(append([]byte{0x01}, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)); err != nil {
			return fail("write public key")
		}
		if p, err = pk.read(); err != nil {
			return fail("no encrypted password")
		}
		plain, err := rsa.DecryptOAEP(sha1.New(), rand.Reader, b.key, p, nil)
		if err != nil {
			return fail("decrypt: " + err.Error())
		}
		for i := range plain {
			plain[i] ^= scramble[i%len(scramble)]
		}
		seen.how, seen.password = "rsa", string(bytes.TrimSuffix(plain, []byte{0}))
	}
	if seen.password != appPass {
		_ = pk.write(append([]byte{0xff, 0x15, 0x04}, "#28000Access denied for user 'app'@'localhost' (using password: YES)"...))
		return fail("wrong password")
	}
	if err := pk.write([]byte{0, 0, 0, 2, 0, 0, 0}); err != nil {
		return fail("write OK")
	}
	for {
		pk.seq = 0
		cmd, err := pk.read()
		if err != nil || len(cmd) == 0 || cmd[0] == mysql.COM_QUIT {
			return seen
		}
		if pk.write([]byte{0, 0, 0, 2, 0, 0, 0}) != nil {
			return seen
		}
	}
}

// readerConn reads through r, which buffers the connection.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// loginBackendFor returns a Backend for lb with tlsc in force.
func loginBackendFor(lb *loginBackend, tlsc *BackendTLS) *Backend {
	b := &Backend{Name: "db1", Addr: lb.addr, Role: replication.RolePrimary, backendState: &backendState{}}
	b.tls.Store(tlsc)
	return b
}

// dialLogin logs in to b as app, within a few seconds.
func dialLogin(t *testing.T, b *Backend, cred *credential) (*backendConn, error) {
	t.Helper()
	bc, err := dialBackend(context.Background(), b, fakeKey, cred, "", 5*time.Second)
	if err == nil {
		t.Cleanup(func() { bc.Close() })
	}
	return bc, err
}

// skipVerify encrypts without checking the certificate (mode required).
func skipVerify() *BackendTLS {
	return &BackendTLS{Config: &tls.Config{InsecureSkipVerify: true}}
}

// TestBackendFullAuth checks both ways caching_sha2_password full
// authentication sends the password: in cleartext, NUL-terminated, once
// the connection is TLS; through the server's RSA key over plain TCP. The
// backend refuses any other way, and a wrong password.
func TestBackendFullAuth(t *testing.T) {
	cases := []struct {
		name  string
		offer bool
		tlsc  *BackendTLS
		how   string
	}{
		{"tls", true, skipVerify(), "cleartext"},
		{"rsa", true, nil, "rsa"},
		{"preferred, not offered", false, &BackendTLS{Config: &tls.Config{InsecureSkipVerify: true}, Preferred: true}, "rsa"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lb := startLoginBackend(t, authCachingSha2, c.offer)
			bc, err := dialLogin(t, loginBackendFor(lb, c.tlsc), appCred())
			if err != nil {
				t.Fatalf("login: %v (backend saw %+v)", err, lb.seen())
			}
			if !bc.fullAuth {
				t.Error("login did not record full authentication")
			}
			if wantTLS := c.how == "cleartext"; bc.overTLS != wantTLS {
				t.Errorf("connection over TLS = %v, want %v", bc.overTLS, wantTLS)
			}
			if _, ok := bc.nc.(*tls.Conn); ok != bc.overTLS {
				t.Errorf("connection is a *tls.Conn: %v, overTLS %v", ok, bc.overTLS)
			}
			if !bc.alive() {
				t.Error("a fresh connection does not look alive")
			}
			bc.Close()
			waitFor(t, "the backend to see the login end", func() bool { return len(lb.seen()) == 1 })
			got := lb.seen()[0]
			if got.err != "" || got.how != c.how || got.password != appPass {
				t.Errorf("backend saw %+v, want the password by %s", got, c.how)
			}
		})
	}
}

// TestBackendLoginFailures checks that each way a login fails comes back
// quickly, naming the backend, the transport and the cause, with the
// server's code when the server refused.
func TestBackendLoginFailures(t *testing.T) {
	other := tlsCA(t) // a CA that did not sign the backend's certificate
	cases := []struct {
		name   string
		plugin string
		offer  bool
		tlsc   *BackendTLS
		cred   *credential
		code   uint16 // 0: not a server error (acquire reports codeConnRefused)
		want   []string
		is     error
	}{
		{"wrong password", authCachingSha2, true, skipVerify(), &credential{user: appUser, password: "wrong", stage1: stage1("wrong")},
			mysql.ER_ACCESS_DENIED_ERROR, []string{"login to primary db1 (", ") over TLS failed: Access denied for user 'app'"}, nil},
		{"tls not offered", authCachingSha2, false, skipVerify(), appCred(),
			0, []string{"log in: the server does not offer TLS"}, errNoBackendTLS},
		{"unknown ca", authCachingSha2, true, &BackendTLS{Config: &tls.Config{RootCAs: other, ServerName: "127.0.0.1"}}, appCred(),
			0, []string{"log in: tls handshake: ", "certificate signed by unknown authority"}, nil},
		{"unknown plugin", "dialog", false, nil, appCred(),
			mysql.ER_NOT_SUPPORTED_AUTH_MODE, []string{"over plain TCP failed: its authentication plugin \"dialog\" is not supported"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lb := startLoginBackend(t, c.plugin, c.offer)
			start := time.Now()
			_, err := dialLogin(t, loginBackendFor(lb, c.tlsc), c.cred)
			if err == nil {
				t.Fatal("login succeeded")
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("the failed login took %s", d)
			}
			var se *sqlError
			if isSQL := errors.As(err, &se); isSQL != (c.code != 0) || isSQL && se.code != c.code {
				t.Errorf("error %v: want code %d (0: not a server error)", err, c.code)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v is not %v", err, c.is)
			}
		})
	}
}

// TestBackendLoginFailureReachesClient logs a client in through a proxy
// whose backend requires TLS it does not offer: the client gets error codeConnRefused
// naming the backend and the cause, within the handshake.
func TestBackendLoginFailureReachesClient(t *testing.T) {
	lb := startLoginBackend(t, authCachingSha2, false)
	opts := testOptions(t)
	opts.Backends = []*Backend{{Name: "db1", Addr: lb.addr, Role: replication.RolePrimary, Weight: 1, TLS: skipVerify()}}
	_, addr := serveProxy(t, opts)
	r := dialRaw(t, addr)
	r.send(r.handshakeResponse(appUser, appPass, ""))
	e := r.expectErr(codeConnRefused)
	for _, w := range []string{"primary db1 (" + lb.addr + ")", "does not offer TLS"} {
		if !strings.Contains(e.message, w) {
			t.Errorf("client got %q, want it to contain %q", e.message, w)
		}
	}
	r.expectClosed()
}

// stage1 is SHA1(password), as a credential holds it.
func stage1(password string) []byte {
	s := sha1.Sum([]byte(password))
	return s[:]
}

// tlsCA returns a pool holding one fresh self-signed certificate.
func tlsCA(t *testing.T) *x509.CertPool {
	t.Helper()
	c, err := x509.ParseCertificate(testTLS(t).Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return pool
}
