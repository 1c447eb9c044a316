package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/proxy"
	"github.com/switchyard-db/switchyard/replication"
	"github.com/switchyard-db/switchyard/router"
)

// TestGoDriverCachingSha2Greeting covers go-sql-driver/mysql with
// caching_sha2_password. The driver answers with the plugin the greeting
// names, and the config has no key for proxy.Options.AuthPlugin yet, so this
// test serves the proxy package in-process with AuthPlugin set, the way
// cmd/switchyard would. Full authentication gives Switchyard the hashed
// user's password: on MySQL it logs in to the caching_sha2_password backends
// with it, and the write must land on the primary as hashed.
func TestGoDriverCachingSha2Greeting(t *testing.T) {
	sb := requireFixtures(t)
	e := startInProcess(t, sb, proxy.Options{AuthPlugin: "caching_sha2_password"})
	cases := []struct {
		name      string
		user, pwd string
		tls       bool
	}{
		{"fast path", appUser.Name, appUser.Password, false},
		{"fast path over tls", appUser.Name, appUser.Password, true},
		{"full auth with rsa", hashedUser.Name, hashedUser.Password, false},
		{"full auth over tls", hashedUser.Name, hashedUser.Password, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := goDB(t, e, goConn{User: c.user, Password: c.pwd, TLS: c.tls})
			tag := "go-sha2/" + c.name
			if _, err := db.Exec(ranOnSQL(tag)); err != nil {
				t.Fatalf("%s as %s: %v", c.name, c.user, err)
			}
			checkRanOnPrimary(t, sb, tag, c.user)
			bad := goDB(t, e, goConn{User: c.user, Password: c.pwd + "-wrong", TLS: c.tls})
			checkAccessDenied(t, bad.Ping(), c.user)
		})
	}
}

// startInProcess serves the proxy package for sb on a loopback port until
// the test ends. opts gets the sandbox's backends, the test users, TLS
// (optional) and the test RSA key.
func startInProcess(t testing.TB, sb *sandbox.Sandbox, opts proxy.Options) endpoint {
	t.Helper()
	p := testPKI(t)
	cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	opts.TLSMode = proxy.TLSOptional
	pemKey, err := os.ReadFile(p.RSAKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemKey)
	if opts.RSAKey, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
		t.Fatal(err)
	}
	hashed, err := proxy.NewUserFromHash(hashedUser.Name, nativeHash(hashedUser.Password))
	if err != nil {
		t.Fatal(err)
	}
	opts.Users = []proxy.User{proxy.NewUser(appUser.Name, appUser.Password), proxy.NewUser(otherUser.Name, otherUser.Password), hashed}
	for _, srv := range sb.Servers() {
		opts.Backends = append(opts.Backends, &proxy.Backend{Name: srv.Name, Addr: srv.Addr(), Role: replication.Role(srv.Role), Weight: 1})
	}
	opts.Routing = router.Policy{Consistency: router.ConsistencySession, SessionWindow: time.Hour} // as renderConfig
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := proxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, proxy.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	a := ln.Addr().(*net.TCPAddr)
	return endpoint{Name: "in-process", Host: "127.0.0.1", Port: a.Port}
}

// checkAccessDenied checks that err is MySQL error 1045 (28000) naming user.
func checkAccessDenied(t testing.TB, err error, user string) {
	t.Helper()
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		t.Errorf("as %s with a wrong password: got %v, want MySQL error 1045", user, err)
		return
	}
	if me.Number != 1045 || string(me.SQLState[:]) != "28000" || !strings.Contains(me.Message, "'"+user+"'") {
		t.Errorf("as %s with a wrong password: got error %d (%s) %q, want 1045 (28000) naming '%s'",
			user, me.Number, me.SQLState[:], me.Message, user)
	}
}
