package test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestMariaDBCLI runs the mariadb command-line client through Switchyard and
// directly against the primary, and compares what it prints byte for byte.
func TestMariaDBCLI(t *testing.T) {
	sb := requireFixtures(t)
	mariadbCLI(t)
	plain := startSwitchyard(t, sb, nil)
	secure := startSwitchyard(t, sb, func(c *proxyConfig) { c.TLSMode = "required" })
	direct := directEndpoint(sb)
	app := cliConn{User: appUser.Name, Password: appUser.Password}

	t.Run("auth", func(t *testing.T) {
		for _, u := range []struct{ user, pass string }{{appUser.Name, appUser.Password}, {hashedUser.Name, hashedUser.Password}} {
			for _, sha2 := range []bool{false, true} {
				for _, tls := range []bool{false, true} {
					c := cliConn{User: u.user, Password: u.pass, Sha2: sha2, TLS: tls}
					ep := plain.endpoint()
					if tls {
						ep = secure.endpoint()
					}
					name := fmt.Sprintf("%s/sha2=%v/tls=%v", u.user, sha2, tls)
					t.Run(name, func(t *testing.T) {
						tag := "cli/" + name
						out, stderr, err := cli(t, ep, c, nil, "-N", "-e", ranOnSQL(tag)+"; SELECT CURRENT_USER()")
						if hashedRefused(sb, u.user, sha2) {
							// Switchyard logs in to the primary while it accepts the
							// client: the connection itself is refused.
							want := regexp.MustCompile(`^ERROR 1045 \(28000\): .*` + hashedRefusal(sb).String() + "\n$")
							if err == nil || len(out) > 0 || !want.Match(stderr) {
								t.Errorf("mariadb %s on MySQL: %v, output %q, stderr %q; want no output and an error matching %s", name, err, out, stderr, want)
							}
							checkNotRan(t, sb, tag)
							return
						}
						if err != nil {
							t.Fatalf("mariadb %s: %v\n%s", name, err, stderr)
						}
						if got := string(out); !strings.HasPrefix(got, u.user+"@") {
							t.Errorf("SELECT CURRENT_USER() = %q, want %s@...", got, u.user)
						}
						checkRanOnPrimary(t, sb, tag, u.user)
						if tls {
							st, _, err := cli(t, ep, c, nil, "-e", "status")
							if err != nil || !bytes.Contains(st, []byte("Cipher in use")) {
								t.Errorf("status over TLS does not report a cipher (err %v):\n%s", err, st)
							}
						}
					})
				}
			}
		}
	})

	t.Run("types", func(t *testing.T) {
		for _, sql := range []string{
			"SELECT * FROM compat.types ORDER BY id",
			"SELECT id, HEX(b64), ST_AsText(g), ST_AsText(pt), CAST(js AS CHAR), t, dt FROM compat.types ORDER BY id",
		} {
			args := []string{"--column-type-info", "-e", sql}
			want, wantErr, err := cli(t, direct, app, nil, args...)
			if err != nil {
				t.Fatalf("direct: %v\n%s", err, wantErr)
			}
			for _, ep := range []struct {
				e   endpoint
				tls bool
			}{{plain.endpoint(), false}, {secure.endpoint(), true}} {
				c := app
				c.TLS = ep.tls
				got, stderr, err := cli(t, ep.e, c, nil, args...)
				if err != nil {
					t.Fatalf("through switchyard (tls=%v): %v\n%s", ep.tls, err, stderr)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s (tls=%v): output differs from direct:\n%s", sql, ep.tls, firstDiff(got, want))
				}
			}
		}
	})

	t.Run("workload", func(t *testing.T) {
		script, err := os.ReadFile(filepath.Join("testdata", "workload.sql"))
		if err != nil {
			t.Fatal(err)
		}
		infile := loadFile(t)
		script = bytes.ReplaceAll(script, []byte("@@DB@@"), []byte("compat_cli"))
		script = bytes.ReplaceAll(script, []byte("@@INFILE@@"), []byte(infile))
		script = bytes.ReplaceAll(script, []byte("@@IN_TRANSACTION@@"), []byte(inTransactionSQL(sb)))
		runScript := func(e endpoint, tls bool) (string, error) {
			c := app
			c.TLS = tls
			out, stderr, err := cli(t, e, c, script, "--force", "--local-infile=1")
			return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", out, stderr), err
		}
		want, wantErr := runScript(direct, false)
		if !strings.Contains(want, "Duplicate entry 'apple'") || !strings.Contains(want, "3\t1\n") || !strings.Contains(want, "\n30000\t") {
			t.Fatalf("direct run did not go as planned (%v):\n%s", wantErr, want)
		}
		for _, tls := range []bool{false, true} {
			ep := plain.endpoint()
			if tls {
				ep = secure.endpoint()
			}
			got, err := runScript(ep, tls)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Errorf("tls=%v: exit %v through switchyard, %v direct", tls, err, wantErr)
			}
			if got != want {
				t.Errorf("tls=%v: transcript differs from direct:\n%s", tls, firstDiff([]byte(got), []byte(want)))
			}
		}
	})

	t.Run("big", func(t *testing.T) {
		for id := 1; id <= len(bigSizes); id++ {
			want := append(append([]byte("b\n"), pattern(bigSizes[id])...), '\n')
			for _, tls := range []bool{false, true} {
				ep, c := plain.endpoint(), app
				if tls {
					ep, c.TLS = secure.endpoint(), true
				}
				got, stderr, err := cli(t, ep, c, nil, "-e", "SELECT b FROM compat.big WHERE id = "+strconv.Itoa(id))
				if err != nil {
					t.Fatalf("blob %d (tls=%v): %v\n%s", id, tls, err, stderr)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("blob %d of %d bytes (tls=%v): got %d bytes of output, want %d; %s",
						id, bigSizes[id], tls, len(got), len(want), firstDiff(got, want))
				}
			}
		}
		// A statement of more than 16 MiB from the client.
		data := pattern(17<<20 + 99)
		var stmt bytes.Buffer
		stmt.WriteString("CREATE DATABASE IF NOT EXISTS compat_cli; CREATE TABLE IF NOT EXISTS compat_cli.bigw (id INT PRIMARY KEY, b LONGBLOB);\n")
		stmt.WriteString("REPLACE INTO compat_cli.bigw VALUES (1, x'")
		stmt.WriteString(hex.EncodeToString(data))
		stmt.WriteString("');\nSELECT LENGTH(b), SHA2(b, 256) FROM compat_cli.bigw;\n")
		got, stderr, err := cli(t, plain.endpoint(), app, stmt.Bytes(), "-N")
		if err != nil {
			t.Fatalf("insert %d-byte statement: %v\n%s", stmt.Len(), err, stderr)
		}
		want := fmt.Sprintf("%d\t%s\n", len(data), sha256Hex(data))
		if string(got) != want {
			t.Errorf("after inserting a %d-byte blob through switchyard: got %q, want %q", len(data), got, want)
		}
		root, err := sb.RootDB(sb.Primary)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		var sum string
		if err := root.QueryRow("SELECT LENGTH(b), SHA2(b, 256) FROM compat_cli.bigw").Scan(&n, &sum); err != nil || fmt.Sprintf("%d\t%s\n", n, sum) != want {
			t.Errorf("the primary holds %d bytes with sha256 %s (%v), want %q", n, sum, err, want)
		}
	})
}

// firstDiff describes where got and want first differ.
func firstDiff(got, want []byte) string {
	n := min(len(got), len(want))
	i := 0
	for i < n && got[i] == want[i] {
		i++
	}
	if i == n && len(got) == len(want) {
		return "no difference"
	}
	from := max(0, i-80)
	clip := func(b []byte) string {
		end := min(len(b), i+80)
		return strconv.Quote(string(b[from:end]))
	}
	return fmt.Sprintf("first difference at byte %d (got %d bytes, want %d):\n got: ...%s\nwant: ...%s", i, len(got), len(want), clip(got), clip(want))
}
