package test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// backendTLSSandbox starts a lone primary that offers TLS and returns it
// with the CA file that verifies its certificate: on MySQL the server's
// own (made at initialize, naming no host), on MariaDB the test PKI's
// certificate for 127.0.0.1.
func backendTLSSandbox(t *testing.T) (*sandbox.Sandbox, string) {
	t.Helper()
	p := testPKI(t)
	opts := sandbox.Options{NoReplicas: true, Users: []sandbox.User{appUser, otherUser}}
	if os.Getenv(sandboxtest.EngineEnv) != sandbox.FlavorMySQL {
		opts.ExtraConfig = []string{"ssl_ca=" + p.CAFile, "ssl_cert=" + p.CertFile, "ssl_key=" + p.KeyFile}
	}
	sb := sandboxtest.New(t, opts)
	if sb.Flavor == sandbox.FlavorMySQL {
		return sb, filepath.Join(sb.Primary.DataDir, "ca.pem")
	}
	return sb, p.CAFile
}

// TestBackendTLSCipher runs go-sql-driver over TLS through Switchyard with
// backend TLS on: SHOW SESSION STATUS LIKE 'Ssl_cipher' reports the backend
// session's cipher, as it does on a direct TLS connection (go-sql-driver's
// own TestTLS checks exactly that). verify-identity then checks the
// certificate's name: MariaDB's names 127.0.0.1; MySQL's own names no host,
// so the login fails, naming the backend and the cause.
func TestBackendTLSCipher(t *testing.T) {
	sb, ca := backendTLSSandbox(t)
	users := []configUser{{Name: appUser.Name, Password: appUser.Password}}
	start := func(mode string) *switchyard {
		return startSwitchyard(t, sb, func(c *proxyConfig) {
			c.TLSMode = "required"
			c.Users = users
			c.Extra = fmt.Sprintf("backend_tls:\n  mode: %s\n  ca: %q\n", mode, ca)
		})
	}
	cipher := func(s *switchyard) (string, error) {
		db := goDB(t, s.endpoint(), goConn{User: appUser.Name, Password: appUser.Password, TLS: true})
		var name, value string
		err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &value)
		return value, err
	}

	t.Run("verify-ca", func(t *testing.T) {
		c, err := cipher(start("verify-ca"))
		if err != nil || c == "" {
			t.Errorf("Ssl_cipher through switchyard = %q, %v; want a cipher", c, err)
		}
	})
	t.Run("verify-identity", func(t *testing.T) {
		c, err := cipher(start("verify-identity"))
		if sb.Flavor != sandbox.FlavorMySQL {
			if err != nil || c == "" {
				t.Errorf("Ssl_cipher through switchyard = %q, %v; want a cipher", c, err)
			}
			return
		}
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 1429 {
			t.Fatalf("verify-identity against MySQL's own certificate: %q, %v; want error 1429", c, err)
		}
		for _, w := range []string{"primary " + sb.Primary.Name + " (" + sb.Primary.Addr() + ")", "tls handshake", "certificate"} {
			if !strings.Contains(me.Message, w) {
				t.Errorf("error %q does not contain %q", me.Message, w)
			}
		}
	})
}
