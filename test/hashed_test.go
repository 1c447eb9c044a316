package test

import (
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// The hashed user is configured in Switchyard by its mysql_native_password
// hash alone. What it can do through Switchyard depends on the engine:
//
//   - MariaDB keeps the account on mysql_native_password: the hash is all
//     Switchyard needs to log in to a backend, so every login works.
//   - MySQL 9 has no mysql_native_password; the account is caching_sha2_password
//     there, which needs the cleartext password whenever the server asks
//     for full authentication, and always for the first scramble Switchyard
//     computes. Switchyard learns the password only when the client itself
//     logs in with caching_sha2_password (full authentication sends it, over
//     TLS or RSA-encrypted). A client logging in with mysql_native_password
//     gives Switchyard nothing to log in to a MySQL backend with, and must get
//     a clear MySQL error naming the backend and the cause instead.

// checkHashedAccount checks, as root on the primary, the premise of the
// hashed user on the sandbox's engine: on MariaDB its mysql_native_password
// hash is the one Switchyard is given, on MySQL it is a caching_sha2_password
// account.
func checkHashedAccount(sb *sandbox.Sandbox, db *sql.DB) error {
	var plugin, hash string
	if err := db.QueryRow("SELECT plugin, authentication_string FROM mysql.user WHERE user = ?", hashedUser.Name).Scan(&plugin, &hash); err != nil {
		return fmt.Errorf("account %s: %w", hashedUser.Name, err)
	}
	if sb.Flavor == sandbox.FlavorMySQL {
		if plugin != "caching_sha2_password" {
			return fmt.Errorf("mysql.user has plugin %s for %s on MySQL, want caching_sha2_password", plugin, hashedUser.Name)
		}
		return nil
	}
	if want := nativeHash(hashedUser.Password); hash != want {
		return fmt.Errorf("mysql.user has hash %s (plugin %s) for %s, nativeHash gives %s", hash, plugin, hashedUser.Name, want)
	}
	return nil
}

// hashedRefused reports whether a login of the hashed user through
// Switchyard must fail on sb's engine: on MySQL, when the client logs in to
// Switchyard with mysql_native_password (sha2 false), which does not reveal
// the password.
func hashedRefused(sb *sandbox.Sandbox, user string, sha2 bool) bool {
	return user == hashedUser.Name && sb.Flavor == sandbox.FlavorMySQL && !sha2
}

// hashedRefusal matches the message of the error a client gets when
// Switchyard cannot log the hashed user in to a MySQL backend: it names the
// backend (name and address), the account and the cause. Switchyard logs in
// to the primary while it accepts the client, but any server of sb is
// accepted here.
func hashedRefusal(sb *sandbox.Sandbox) *regexp.Regexp {
	var backends []string
	for _, srv := range sb.Servers() {
		backends = append(backends, regexp.QuoteMeta(srv.Name)+`\b.*`+regexp.QuoteMeta(srv.Addr()))
	}
	return regexp.MustCompile(`(` + strings.Join(backends, "|") + `).*caching_sha2_password for ` +
		regexp.QuoteMeta(hashedUser.Name) + `, but only a mysql_native_password hash is configured`)
}

// checkHashedRefused checks that err, from go-sql-driver, is the MySQL error
// packet Switchyard sends when it cannot log the hashed user in to a MySQL
// backend: error 1045 (28000) whose message names the backend and the cause.
func checkHashedRefused(t testing.TB, sb *sandbox.Sandbox, err error) {
	t.Helper()
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		t.Errorf("as %s (known to Switchyard by its native hash) on MySQL: got %v, want MySQL error 1045 naming the backend and caching_sha2_password", hashedUser.Name, err)
		return
	}
	if me.Number != 1045 || string(me.SQLState[:]) != "28000" || !hashedRefusal(sb).MatchString(me.Message) {
		t.Errorf("as %s on MySQL: got error %d (%s) %q, want 1045 (28000) matching %s",
			hashedUser.Name, me.Number, me.SQLState[:], me.Message, hashedRefusal(sb))
		return
	}
	t.Logf("as %s on MySQL, as expected: error %d (%s): %s", hashedUser.Name, me.Number, me.SQLState[:], me.Message)
}
