package proxy

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/switchyard-db/switchyard/replication"
)

// TestTLSUpgradeThenShutdown shuts the proxy down just after a client's TLS
// upgrade, while its session waits for the handshake response: Shutdown
// wakes the session through the client connection that the upgrade has just
// replaced. Run with -race. No backend is needed: the session never gets as
// far as logging in.
func TestTLSUpgradeThenShutdown(t *testing.T) {
	opts := testOptions(t)
	opts.ServerVersion = "10.11.0-test" // no greeting to read from the backend
	opts.TLS, opts.TLSMode = testTLS(t), TLSOptional
	opts.Backends = []*Backend{{Name: "gone", Addr: "127.0.0.1:1", Role: replication.RolePrimary}}
	srv, addr := serveProxy(t, opts) // its cleanup's second Shutdown returns at once

	r := dialRaw(t, addr)
	ssl := binary.LittleEndian.AppendUint32(nil, r.caps|mysql.CLIENT_SSL)
	ssl = binary.LittleEndian.AppendUint32(ssl, 1<<24)
	ssl = append(ssl, mysql.DEFAULT_COLLATION_ID)
	r.send(append(ssl, make([]byte, 23)...)) // SSLRequest
	tc := tls.Client(r.c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("tls handshake: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
