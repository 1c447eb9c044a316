package test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// badLogins are the failed logins every client tries: a wrong password for a
// user known by cleartext, for one known by hash, and an unknown user.
var badLogins = []struct{ user, password string }{
	{appUser.Name, "not-" + appUser.Password},
	{hashedUser.Name, "not-" + hashedUser.Password},
	{"nosuchuser", "whatever"},
}

// accessDenied is the message MySQL sends with error 1045.
func accessDenied(user string) *regexp.Regexp {
	return regexp.MustCompile(`Access denied for user '` + regexp.QuoteMeta(user) + `'@'127\.0\.0\.1' \(using password: YES\)`)
}

// TestAccessDenied checks that every client sees error 1045 with SQLSTATE
// 28000 and a message naming the user for a wrong password or an unknown
// user, with either auth plugin.
func TestAccessDenied(t *testing.T) {
	sb := requireFixtures(t)
	sy := startSwitchyard(t, sb, nil)
	e := sy.endpoint()

	t.Run("go-sql-driver", func(t *testing.T) {
		for _, b := range badLogins {
			checkAccessDenied(t, goDB(t, e, goConn{User: b.user, Password: b.password}).Ping(), b.user)
		}
	})
	t.Run("mariadb-cli", func(t *testing.T) {
		for _, b := range badLogins {
			for _, sha2 := range []bool{false, true} {
				_, stderr, err := cli(t, e, cliConn{User: b.user, Password: b.password, Sha2: sha2}, nil, "-e", "SELECT 1")
				want := regexp.MustCompile(`^ERROR 1045 \(28000\): ` + accessDenied(b.user).String() + "\n$")
				if err == nil || !want.Match(stderr) {
					t.Errorf("mariadb as %s (caching_sha2_password %v): %v, stderr %q, want %s", b.user, sha2, err, stderr, want)
				}
			}
		}
	})
	for _, driver := range []string{"pymysql", "mysqldb"} {
		t.Run(driver, func(t *testing.T) {
			pythonFor(t, driver)
			for _, b := range badLogins {
				for _, sha2 := range []bool{false, true} {
					for _, tls := range []bool{false, true} {
						c := pyConn{Driver: driver, User: b.user, Password: b.password, Sha2: sha2, TLS: tls}
						out, stderr, err := python(t, e, c, "connect")
						want := regexp.MustCompile(`^connect error: 1045 ` + accessDenied(b.user).String() + "\n$")
						if err == nil || !want.Match(out) {
							t.Errorf("%s as %s (caching_sha2_password %v, tls %v): %v, output %q, want %s\n%s",
								driver, b.user, sha2, tls, err, out, want, stderr)
						}
					}
				}
			}
		})
	}
}

// TestTLSRequired checks that with tls.mode required a client without TLS is
// refused with a clear error, and one with TLS gets in.
func TestTLSRequired(t *testing.T) {
	sb := requireFixtures(t)
	sy := startSwitchyard(t, sb, func(c *proxyConfig) { c.TLSMode = "required" })
	e := sy.endpoint()
	refused := regexp.MustCompile(`3159.*(?i:insecure transport).*TLS`)

	t.Run("go-sql-driver", func(t *testing.T) {
		err := goDB(t, e, goConn{User: appUser.Name, Password: appUser.Password}).Ping()
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 3159 || !refused.MatchString(fmt.Sprint(me.Number, " ", me.Message)) {
			t.Errorf("plain connection to a TLS-only switchyard: got %v, want error 3159 saying TLS is required", err)
		}
		if err := goDB(t, e, goConn{User: appUser.Name, Password: appUser.Password, TLS: true}).Ping(); err != nil {
			t.Errorf("TLS connection: %v", err)
		}
	})
	t.Run("mariadb-cli", func(t *testing.T) {
		mariadbCLI(t)
		_, stderr, err := cli(t, e, cliConn{User: appUser.Name, Password: appUser.Password}, nil, "--skip-ssl", "-e", "SELECT 1")
		if err == nil || !refused.Match(stderr) {
			t.Errorf("mariadb --skip-ssl: %v, stderr %q; want error 3159 saying TLS is required", err, stderr)
		}
		out, stderr, err := cli(t, e, cliConn{User: appUser.Name, Password: appUser.Password, TLS: true}, nil, "-N", "-e", "SELECT 1")
		if err != nil || string(out) != "1\n" {
			t.Errorf("mariadb --ssl: %v, output %q\n%s", err, out, stderr)
		}
	})
	for _, driver := range []string{"pymysql", "mysqldb"} {
		t.Run(driver, func(t *testing.T) {
			pythonFor(t, driver)
			out, stderr, err := python(t, e, pyConn{Driver: driver, User: appUser.Name, Password: appUser.Password}, "connect")
			if err == nil || !refused.Match(out) || !strings.HasPrefix(string(out), "connect error: 3159 ") {
				t.Errorf("%s without TLS: %v, output %q, want error 3159 saying TLS is required\n%s", driver, err, out, stderr)
			}
			out, stderr, err = python(t, e, pyConn{Driver: driver, User: appUser.Name, Password: appUser.Password, TLS: true}, "connect")
			if err != nil || string(out) != "connected\n" {
				t.Errorf("%s with TLS: %v, output %q\n%s", driver, err, out, stderr)
			}
		})
	}
}
