package test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestPython runs PyMySQL and mysqlclient (MySQLdb) through Switchyard and
// directly, with clients/compat.py, and compares the reprs of everything
// they return byte for byte.
func TestPython(t *testing.T) {
	sb := requireFixtures(t)
	for _, driver := range []string{"pymysql", "mysqldb"} {
		t.Run(driver, func(t *testing.T) {
			pythonFor(t, driver) // skips before anything starts when the driver is missing
			plain := startSwitchyard(t, sb, nil)
			secure := startSwitchyard(t, sb, func(c *proxyConfig) { c.TLSMode = "required" })
			direct := directEndpoint(sb)
			app := pyConn{Driver: driver, User: appUser.Name, Password: appUser.Password}
			targets := []struct {
				name string
				e    endpoint
				tls  bool
			}{{"switchyard", plain.endpoint(), false}, {"switchyard-tls", secure.endpoint(), true}}

			// runBoth runs a scenario directly and through each target and
			// compares the transcripts; it returns the direct one.
			runBoth := func(t *testing.T, c pyConn, scenario string, before func(), extra ...string) string {
				t.Helper()
				if before != nil {
					before()
				}
				want, stderr, err := python(t, direct, c, scenario, extra...)
				if err != nil {
					t.Fatalf("%s directly: %v\n%s%s", scenario, err, want, stderr)
				}
				for _, tg := range targets {
					if before != nil {
						before()
					}
					tc := c
					tc.TLS = tg.tls
					got, stderr, err := python(t, tg.e, tc, scenario, extra...)
					if err != nil {
						t.Errorf("%s via %s: %v\n%s%s", scenario, tg.name, err, got, stderr)
						continue
					}
					if string(got) != string(want) {
						t.Errorf("%s via %s differs from direct: %s", scenario, tg.name, firstDiff(got, want))
					}
				}
				return string(want)
			}

			t.Run("auth", func(t *testing.T) {
				for _, u := range []pyConn{app, {Driver: driver, User: hashedUser.Name, Password: hashedUser.Password}} {
					tag := "py/" + driver + "/" + u.User + "/direct"
					want, stderr, err := python(t, direct, u, "smoke", "--tag", tag)
					if err != nil || !strings.HasPrefix(string(want), fmt.Sprintf("row (('%s@", u.User)) {
						t.Fatalf("smoke directly as %s: %v\n%s%s", u.User, err, want, stderr)
					}
					for _, sha2 := range []bool{false, true} {
						for _, tg := range targets {
							c := u
							c.Sha2, c.TLS = sha2, tg.tls
							tag := fmt.Sprintf("py/%s/%s/sha2=%v/%s", driver, u.User, sha2, tg.name)
							got, stderr, err := python(t, tg.e, c, "smoke", "--tag", tag)
							if hashedRefused(sb, u.User, sha2) {
								re := regexp.MustCompile(`^connect error: 1045 .*` + hashedRefusal(sb).String() + "\n$")
								if err == nil || !re.Match(got) {
									t.Errorf("%s as %s (mysql_native_password) via %s on MySQL: %v, output %q, want %s\n%s",
										driver, u.User, tg.name, err, got, re, stderr)
								}
								checkNotRan(t, sb, tag)
								continue
							}
							if err != nil || string(got) != string(want) {
								t.Errorf("%s as %s (caching_sha2_password %v) via %s: %v\ngot  %q\nwant %q\n%s",
									driver, u.User, sha2, tg.name, err, got, want, stderr)
								continue
							}
							checkRanOnPrimary(t, sb, tag, u.User)
						}
					}
				}
			})

			t.Run("types", func(t *testing.T) {
				runBoth(t, app, "types", nil)
			})

			t.Run("workload", func(t *testing.T) {
				schema := "compat_" + driver
				want := runBoth(t, app, "workload", func() { dropSchema(t, sb, schema) },
					"--workdb", schema, "--infile", loadFile(t), "--in-transaction", inTransactionSQL(sb))
				if !strings.Contains(want, "1062 Duplicate entry") || !strings.Contains(want, "(30000,") {
					t.Errorf("direct run did not go as planned:\n%s", want)
				}
			})

			t.Run("big", func(t *testing.T) {
				// The expected output is known exactly, so no direct run is needed.
				var want strings.Builder
				for id := 1; id <= len(bigSizes); id++ {
					fmt.Fprintf(&want, "row %d len %d sha256 %s\n", id, bigSizes[id], sha256Hex(pattern(bigSizes[id])))
				}
				for _, tg := range targets {
					c := app
					c.TLS = tg.tls
					got, stderr, err := python(t, tg.e, c, "bigread")
					if err != nil || string(got) != want.String() {
						t.Errorf("bigread via %s: %v\ngot\n%s\nwant\n%s\n%s", tg.name, err, got, want.String(), stderr)
					}
				}
				schema := "compat_" + driver
				root, err := sb.RootDB(sb.Primary)
				if err != nil {
					t.Fatal(err)
				}
				for _, tg := range targets {
					size := 17<<20 + 3
					c := app
					c.TLS = tg.tls
					got, stderr, err := python(t, tg.e, c, "bigwrite", "--workdb", schema, "--size", strconv.Itoa(size))
					want := fmt.Sprintf("wrote len %d sha256 %s read back equal True\n", size, sha256Hex(pattern(size)))
					if err != nil || string(got) != want {
						t.Errorf("bigwrite via %s: %v\ngot  %q\nwant %q\n%s", tg.name, err, got, want, stderr)
						continue
					}
					var n int
					var sum string
					if err := root.QueryRow("SELECT LENGTH(b), SHA2(b, 256) FROM "+schema+".big WHERE id = 1").Scan(&n, &sum); err != nil {
						t.Fatal(err)
					}
					if n != size || sum != sha256Hex(pattern(size)) {
						t.Errorf("bigwrite via %s: the primary holds %d bytes with sha256 %s", tg.name, n, sum)
					}
				}
			})
		})
	}
}
