package test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// The shared fixture database "compat", created once as root on the primary:
// compat.types holds a value of every column type (minimums, maximums,
// ordinary values and NULLs), compat.big holds blobs around and above the
// 16 MiB packet size.

// typesDDL creates compat.types.
const typesDDL = `CREATE TABLE compat.types (
  id INT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  de DECIMAL(65,30), dm DECIMAL(10,2), fl FLOAT, db DOUBLE,
  b1 BIT(1), b64 BIT(64),
  d DATE, t TIME(6), dt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, y YEAR,
  c CHAR(10), vc VARCHAR(300), bn BINARY(8), vb VARBINARY(300),
  tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
  tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT,
  en ENUM('a','b','c'), st SET('x','y','z'), js JSON, g GEOMETRY, pt POINT,
  lat VARCHAR(20) CHARACTER SET latin1
) DEFAULT CHARSET=utf8mb4`

// typesRows fills compat.types: the minimum of every type, the maximum,
// ordinary values with awkward bytes, and a row of NULLs.
var typesRows = []string{
	`INSERT INTO compat.types VALUES (1,
  -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
  -99999999999999999999999999999999999.999999999999999999999999999999, -99999999.99, -3.40282e38, -1.7976931348623157e308,
  b'0', b'0',
  '1000-01-01', '-838:59:59.000000', '1000-01-01 00:00:00.000000', '2000-01-01 00:00:00.000000', 1901,
  '', '', x'', x'',
  '', '', '', '',
  '', '', '', '',
  'a', '', '[]', ST_GeomFromText('POINT(0 0)'), POINT(-180, -90),
  '')`,
	`INSERT INTO compat.types VALUES (2,
  127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
  99999999999999999999999999999999999.999999999999999999999999999999, 99999999.99, 3.40282e38, 1.7976931348623157e308,
  b'1', x'FFFFFFFFFFFFFFFF',
  '9999-12-31', '838:59:59.000000', '9999-12-31 23:59:59.999999', '2037-12-31 23:59:59.999999', 2155,
  'ζζζζζζζζζζ', REPEAT('v', 300), x'FFFFFFFFFFFFFFFF', REPEAT(x'FF00', 150),
  REPEAT(x'A5', 255), REPEAT(x'00FF5C27220A0D1A', 8191), REPEAT(x'0D0A', 40000), REPEAT(x'5C00', 600000),
  REPEAT('t', 255), REPEAT('€', 21845), REPEAT('m\n', 70000), REPEAT('ü', 600000),
  'c', 'x,y,z', '{"a": [1, 2.5, "ü", -0.0, 1e300], "b": null, "c": {"d": true, "e": "\\"q\\" \\\\ \\u0000"}}',
  ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 2))'), POINT(179.999999, 89.5),
  'café ÿ')`,
	`INSERT INTO compat.types VALUES (3,
  0, 1, -1, 2, 3, 4, -5, 6, -7, 8,
  0.000000000000000000000000000001, 0.01, 3.14159, 2.718281828459045,
  b'1', b'101',
  '2024-02-29', '12:34:56.789012', '2024-02-29 12:34:56.000001', '2024-02-29 12:34:56.500000', 2024,
  'tab\there', 'quote '' and \\ backslash \0 nul', x'000102', x'00',
  x'00', 'blob', x'C0FFEE', 'longblob',
  'newline\nhere', '😀 emoji', 'tinytext', 'longtext',
  'b', 'y', '{"k": "v"}', ST_GeomFromText('LINESTRING(0 0, 1 1, 2 1)'), POINT(1.5, -2.25),
  'latin')`,
	`INSERT INTO compat.types (id) VALUES (4)`,
}

// Big blob sizes: more than one packet, a row payload that fills exactly one
// packet (so an empty packet must follow) and one that fills exactly two.
var bigSizes = map[int]int{
	1: 17<<20 + 321,
	2: maxPayload - 4,
	3: 2*maxPayload - 4,
}

const maxPayload = 1<<24 - 1

var fixture struct {
	once sync.Once
	err  error
}

// requireFixtures returns the sandbox with the compat database in place.
func requireFixtures(t testing.TB) *sandbox.Sandbox {
	t.Helper()
	sb := sandboxtest.Require(t)
	fixture.once.Do(func() { fixture.err = createFixtures(sb) })
	if fixture.err != nil {
		t.Fatalf("create fixtures: %v", fixture.err)
	}
	return sb
}

func createFixtures(sb *sandbox.Sandbox) error {
	db, err := sb.RootDB(sb.Primary)
	if err != nil {
		return err
	}
	stmts := []string{"DROP DATABASE IF EXISTS compat", "CREATE DATABASE compat CHARACTER SET utf8mb4", typesDDL}
	stmts = append(stmts, typesRows...)
	stmts = append(stmts, "CREATE TABLE compat.big (id INT PRIMARY KEY, b LONGBLOB)",
		"CREATE TABLE compat.ran_on (tag VARCHAR(100) PRIMARY KEY, server_id INT UNSIGNED NOT NULL, user VARCHAR(200) NOT NULL)")
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			return fmt.Errorf("%.60s: %w", s, err)
		}
	}
	for id := 1; id <= len(bigSizes); id++ {
		if _, err := db.Exec("INSERT INTO compat.big VALUES (?, ?)", id, pattern(bigSizes[id])); err != nil {
			return fmt.Errorf("insert big blob %d: %w", id, err)
		}
	}
	if err := checkHashedAccount(sb, db); err != nil {
		return err
	}
	// Switchyard sends reads to replicas: they must have the fixtures too.
	return sb.WaitReplicated(context.Background())
}

// ranOnSQL is a write that records, under tag, the server it ran on and the
// user it ran as. Writes must run on the primary (replicas are read_only and
// the sandbox users may not bypass that); checkRanOnPrimary reads the record.
func ranOnSQL(tag string) string {
	return fmt.Sprintf("REPLACE INTO compat.ran_on VALUES ('%s', @@server_id, CURRENT_USER())", tag)
}

// checkRanOnPrimary checks, on the primary, that the ranOnSQL write tagged
// tag ran on the primary as user.
func checkRanOnPrimary(t testing.TB, sb *sandbox.Sandbox, tag, user string) {
	t.Helper()
	db, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	var id int
	var who string
	if err := db.QueryRow("SELECT server_id, user FROM compat.ran_on WHERE tag = ?", tag).Scan(&id, &who); err != nil {
		t.Errorf("%s: no record of the write on the primary: %v", tag, err)
		return
	}
	if id != sb.Primary.ServerID || !strings.HasPrefix(who, user+"@") {
		t.Errorf("%s: the write ran on server_id %d as %s, want the primary (%d) as %s@...", tag, id, who, sb.Primary.ServerID, user)
	}
}

// checkNotRan checks, on the primary, that no ranOnSQL write tagged tag ran.
func checkNotRan(t testing.TB, sb *sandbox.Sandbox, tag string) {
	t.Helper()
	db, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM compat.ran_on WHERE tag = ?", tag).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%s: the write ran on the primary, want it refused", tag)
	}
}

var patternBlock = func() []byte {
	b := make([]byte, 65536)
	for i := range b {
		b[i] = byte((i*7 + 3) % 256)
	}
	return b
}()

// pattern returns n deterministic bytes containing every byte value; the
// Python client script makes the same bytes.
func pattern(n int) []byte {
	b := make([]byte, 0, n)
	for len(b) < n {
		b = append(b, patternBlock[:min(len(patternBlock), n-len(b))]...)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// loadFile writes the LOAD DATA LOCAL INFILE input: tab-separated rows with
// escaped bytes, about 1.5 MB.
func loadFile(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	esc := func(p []byte) string {
		var s strings.Builder
		for _, c := range p {
			switch c {
			case '\\':
				s.WriteString(`\\`)
			case '\t':
				s.WriteString(`\t`)
			case '\n':
				s.WriteString(`\n`)
			case 0:
				s.WriteString(`\0`)
			default:
				s.WriteByte(c)
			}
		}
		return s.String()
	}
	for i := 1; i <= 30000; i++ {
		bin := patternBlock[i%60000 : i%60000+i%23]
		fmt.Fprintf(&b, "%d\ttext %d ü\\t\t%s\t%d.%03d\n", i, i, esc(bin), i%1000, i%997)
	}
	name := filepath.Join(t.TempDir(), "load.tsv")
	if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// serverID returns @@server_id as seen through db.
func serverID(t testing.TB, db *sql.DB) int {
	t.Helper()
	var id int
	if err := db.QueryRow("SELECT @@server_id").Scan(&id); err != nil {
		t.Fatalf("SELECT @@server_id: %v", err)
	}
	return id
}

// dropSchema drops a client's work database as root, so that every run of a
// workload starts from the same state.
func dropSchema(t testing.TB, sb *sandbox.Sandbox, name string) {
	t.Helper()
	db, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
		t.Fatalf("drop %s: %v", name, err)
	}
}
