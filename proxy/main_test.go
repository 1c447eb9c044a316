package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	_ "github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/leaktest"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// Test users: app has a cleartext password in Switchyard's configuration,
// hashed is known to Switchyard only by its mysql_native_password hash.
const (
	appUser, appPass     = "app", "app-secret"
	hashUser, hashPass   = "hashed", "hash-secret"
	otherUser, otherPass = "other", "other-secret"
)

// TestMain provides the MariaDB sandbox to the tests that need it: the first
// one starts it (sandbox.Require, through startProxy), so tests against
// scripted backends (fakeServer), fuzzing and benchmarks start no server.
func TestMain(m *testing.M) {
	code := sandboxtest.Main(m, sandbox.Options{
		Users: []sandbox.User{
			{Name: appUser, Password: appPass},
			{Name: hashUser, Password: hashPass},
			{Name: otherUser, Password: otherPass},
		},
	})
	// Every Server and fakeServer the tests started was shut down: nothing
	// of this package may still run. (The sandbox, if one started, is gone
	// by now, so a goroutine stuck on a backend has seen its connection
	// close.)
	if code == 0 {
		if left := leaktest.Leaked("proxy/", 5*time.Second); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "%d goroutines of package proxy outlived the tests:\n\n%s\n", len(left), strings.Join(left, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// testKey is one RSA key for every test proxy: generating one costs up to a second.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// testProxy is a Server serving on a loopback port for one test.
type testProxy struct {
	*Server
	addr string
	sb   *sandbox.Sandbox
}

// startProxy starts a proxy in front of the shared sandbox, which it starts
// if no test did yet; mod may adjust the options first. It is shut down when
// the test ends.
func startProxy(t testing.TB, mod func(*Options)) *testProxy {
	t.Helper()
	sb := sandboxtest.Require(t)
	opts := testOptions(t)
	for _, srv := range sb.Servers() {
		opts.Backends = append(opts.Backends, &Backend{Name: srv.Name, Addr: srv.Addr(), Role: replication.Role(srv.Role), Weight: 1})
	}
	if mod != nil {
		mod(&opts)
	}
	s, addr := serveProxy(t, opts)
	return &testProxy{Server: s, addr: addr, sb: sb}
}

// testOptions returns the options every test proxy starts from: the test
// users, a quiet logger (debug logs on stderr with -v) and the test key.
// The backends are the caller's to add.
func testOptions(t testing.TB) Options {
	t.Helper()
	hashed, err := NewUserFromHash(hashUser, mysql.EncodePasswordHex(mysql.NativePasswordHash([]byte(hashPass))))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Users:  []User{NewUser(appUser, appPass), hashed, NewUser(otherUser, otherPass)},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		RSAKey: testKey(),
	}
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return opts
}

// serveProxy starts a Server with opts on a loopback port and returns it
// with its address. It is shut down when the test ends.
func serveProxy(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-done
	})
	return s, ln.Addr().String()
}

// db opens a go-sql-driver pool through the proxy.
func (p *testProxy) db(t *testing.T, user, pass, params string) *sql.DB {
	t.Helper()
	dsn := fmt.Sprintf("%s:%s@tcp(%s)/?%s", user, pass, p.addr, params)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// primaryDB opens a go-sql-driver pool straight to the primary.
func (p *testProxy) primaryDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", p.sb.Primary.DSN(appUser, appPass, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testTLS returns a server config with a fresh self-signed certificate.
func testTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "switchyard-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// queryInt runs a one-value query.
func queryInt(t *testing.T, q interface {
	QueryRow(string, ...any) *sql.Row
}, query string, args ...any) int64 {
	t.Helper()
	var v int64
	if err := q.QueryRow(query, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

// waitTick is one step of a polling loop.
func waitTick() { time.Sleep(10 * time.Millisecond) }
