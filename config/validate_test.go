package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckRSAKey(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := filepath.Join(dir, "pkcs8.pem")
	notPEM := filepath.Join(dir, "junk.pem")
	write(t, pkcs8, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	write(t, notPEM, []byte("not a key\n"))
	tests := []struct {
		file string
		want Errors
	}{
		{pkcs8, nil},
		{"testdata/tls/rsa.pem", nil}, // PKCS #1
		{notPEM, Errors{{"rsa_key", `no PEM data in "` + notPEM + `"`}}},
		{dir, Errors{{"rsa_key", `"` + dir + `" is not a regular file`}}},
		{"testdata/tls/cert.pem", Errors{{"rsa_key", `"testdata/tls/cert.pem" does not hold an RSA private key`}}},
	}
	for _, tt := range tests {
		var errs Errors
		checkRSAKey(&errs, "rsa_key", tt.file)
		if diff := cmp.Diff(tt.want, errs); diff != "" {
			t.Errorf("checkRSAKey(%q) (-want +got):\n%s", tt.file, diff)
		}
	}
}

func write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr string
		kind addrKind
		msg  string // "" = valid
	}{
		{":6033", listenAddr, ""},
		{"127.0.0.1:0", listenAddr, ""},
		{"[::1]:6034", listenAddr, ""},
		{"db.example:3306", backendAddr, ""},
		{"[fe80::1]:3306", backendAddr, ""},
		{":3306", backendAddr, "empty host"},
		{"db:0", backendAddr, `invalid port "0"`},
		{"db:+1", backendAddr, `invalid port "+1"`},
		{"db:65536", listenAddr, `invalid port "65536"`},
		{"db:", backendAddr, "missing port"},
		{"db", backendAddr, "missing port"},
		{"[::1", backendAddr, `invalid address "[::1": address [::1: missing ']' in address`},
	}
	for _, tt := range tests {
		var errs Errors
		ok := checkAddr(&errs, "a", tt.addr, tt.kind)
		got := ""
		if len(errs) > 0 {
			got = errs[0].Msg
		}
		if got != tt.msg || ok != (tt.msg == "") || len(errs) > 1 {
			t.Errorf("checkAddr(%q, %d) = %v, %v; want %q", tt.addr, tt.kind, ok, errs, tt.msg)
		}
	}
}
