package test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
)

// goConn says how go-sql-driver/mysql connects.
type goConn struct {
	User, Password string
	DB             string
	TLS            bool
	Interpolate    bool // interpolateParams: queries with arguments use the text protocol
}

// goDB opens a database/sql pool for c at e, closed when the test ends.
func goDB(t testing.TB, e endpoint, c goConn) *sql.DB {
	t.Helper()
	db, _ := goDBWithIDs(t, e, c)
	return db
}

// goDBWithIDs is goDB that also reports the connection id each new
// connection read from its server's greeting: the id a client passes to KILL.
func goDBWithIDs(t testing.TB, e endpoint, c goConn) (*sql.DB, <-chan uint32) {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = c.User, c.Password, c.DB
	cfg.Net, cfg.Addr = "tcp", e.addr()
	cfg.Timeout = 10 * time.Second
	cfg.MultiStatements = true
	cfg.AllowAllFiles = true
	cfg.InterpolateParams = c.Interpolate
	cfg.MaxAllowedPacket = 64 << 20
	if c.TLS {
		cfg.TLS = testPKI(t).clientTLS()
	}
	ids := make(chan uint32, 64)
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &greetingConn{Conn: nc, ids: ids}, nil
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db, ids
}

// greetingConn passes reads through and reports the connection id of the
// server greeting (Protocol::HandshakeV10), which comes first.
type greetingConn struct {
	net.Conn
	ids  chan<- uint32
	buf  []byte
	done bool
}

func (c *greetingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if !c.done {
		c.buf = append(c.buf, b[:n]...)
		// 4-byte header, protocol version, NUL-terminated version, id.
		if len(c.buf) > 5 {
			if i := strings.IndexByte(string(c.buf[5:]), 0); i >= 0 && len(c.buf) >= 5+i+1+4 {
				c.done = true
				select {
				case c.ids <- binary.LittleEndian.Uint32(c.buf[5+i+1:]):
				default: // nobody is asking
				}
				c.buf = nil
			}
		}
	}
	return n, err
}

// TestGoDriver runs go-sql-driver/mysql through Switchyard and directly, over
// the text and the binary protocol, and compares every value byte for byte.
func TestGoDriver(t *testing.T) {
	sb := requireFixtures(t)
	plain := startSwitchyard(t, sb, nil)
	secure := startSwitchyard(t, sb, func(c *proxyConfig) { c.TLSMode = "required" })
	direct := directEndpoint(sb)
	app := goConn{User: appUser.Name, Password: appUser.Password}
	targets := []struct {
		name string
		e    endpoint
		tls  bool
	}{{"switchyard", plain.endpoint(), false}, {"switchyard-tls", secure.endpoint(), true}}

	t.Run("auth", func(t *testing.T) {
		for _, u := range []goConn{app, {User: hashedUser.Name, Password: hashedUser.Password}} {
			for _, tg := range targets {
				c := u
				c.TLS = tg.tls
				db := goDB(t, tg.e, c)
				tag := "go/" + u.User + "/" + tg.name
				if hashedRefused(sb, u.User, false) {
					// go-sql-driver answers the greeting's mysql_native_password.
					_, err := db.Exec(ranOnSQL(tag))
					checkHashedRefused(t, sb, err)
					checkNotRan(t, sb, tag)
					continue
				}
				if _, err := db.Exec(ranOnSQL(tag)); err != nil {
					t.Errorf("%s via %s: %v", u.User, tg.name, err)
					continue
				}
				checkRanOnPrimary(t, sb, tag, u.User)
				var user string
				if err := db.QueryRow("SELECT CURRENT_USER()").Scan(&user); err != nil || !strings.HasPrefix(user, u.User+"@") {
					t.Errorf("%s via %s: CURRENT_USER() = %q, %v", u.User, tg.name, user, err)
				}
			}
		}
	})

	t.Run("types", func(t *testing.T) {
		queries := []struct {
			sql  string
			args []any
		}{
			{"SELECT * FROM compat.types ORDER BY id", nil},                              // text protocol
			{"SELECT * FROM compat.types WHERE id > ? ORDER BY id", []any{0}},            // binary protocol
			{"SELECT *, ? AS p1, ? AS p2 FROM compat.types ORDER BY id", []any{-1, "x"}}, // binary, parameters echoed
		}
		ddb := goDB(t, direct, app)
		for _, q := range queries {
			want := dumpQuery(ddb, q.sql, q.args...)
			for _, tg := range targets {
				c := app
				c.TLS = tg.tls
				got := dumpQuery(goDB(t, tg.e, c), q.sql, q.args...)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s via %s differs from direct (-direct +switchyard):\n%s", q.sql, tg.name, diff)
				}
			}
		}
	})

	t.Run("workload", func(t *testing.T) {
		infile := loadFile(t)
		dropSchema(t, sb, "compat_go")
		want := goWorkload(goDB(t, direct, app), "compat_go", infile, inTransactionSQL(sb))
		if !strings.Contains(want, "Error 1062 (23000)") || !strings.Contains(want, "set 2 cols [cnt total]") || !strings.Contains(want, "\n\"30000\"|") {
			t.Fatalf("direct run did not go as planned:\n%s", want)
		}
		for _, tg := range targets {
			c := app
			c.TLS = tg.tls
			dropSchema(t, sb, "compat_go")
			got := goWorkload(goDB(t, tg.e, c), "compat_go", infile, inTransactionSQL(sb))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("workload via %s differs from direct (-direct +switchyard):\n%s", tg.name, diff)
			}
		}
	})

	t.Run("big", func(t *testing.T) {
		root, err := sb.RootDB(sb.Primary)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range targets {
			c := app
			c.TLS = tg.tls
			db := goDB(t, tg.e, c)
			for id := 1; id <= len(bigSizes); id++ {
				want := pattern(bigSizes[id])
				for _, proto := range []struct {
					name string
					args []any
				}{{"text", nil}, {"binary", []any{id}}} {
					q := fmt.Sprintf("SELECT b FROM compat.big WHERE id = %d", id)
					if proto.args != nil {
						q = "SELECT b FROM compat.big WHERE id = ?"
					}
					var got []byte
					if err := db.QueryRow(q, proto.args...).Scan(&got); err != nil {
						t.Fatalf("%s: blob %d over the %s protocol: %v", tg.name, id, proto.name, err)
					}
					if string(got) != string(want) {
						t.Errorf("%s: blob %d over the %s protocol: got %d bytes, want %d; %s", tg.name, id, proto.name, len(got), len(want), firstDiff(got, want))
					}
				}
			}
			// Writes of more than 16 MiB: a prepared statement executed with
			// the value inline, one sent with COM_STMT_SEND_LONG_DATA (the
			// driver does that above a third of max_allowed_packet with two
			// parameters), and a query with the value interpolated.
			if _, err := db.Exec("CREATE DATABASE IF NOT EXISTS compat_go"); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("CREATE TABLE IF NOT EXISTS compat_go.bigw (id INT PRIMARY KEY, b LONGBLOB)"); err != nil {
				t.Fatal(err)
			}
			ic := c
			ic.Interpolate = true
			idb := goDB(t, tg.e, ic)
			writes := []struct {
				name string
				db   *sql.DB
				size int
			}{{"inline", db, 17<<20 + 5}, {"long data", db, 23 << 20}, {"interpolated", idb, 17<<20 + 77}}
			for i, w := range writes {
				data := pattern(w.size)
				if _, err := w.db.Exec("REPLACE INTO compat_go.bigw VALUES (?, ?)", i, data); err != nil {
					t.Fatalf("%s: write %d bytes (%s): %v", tg.name, w.size, w.name, err)
				}
				var n int
				var sum string
				if err := root.QueryRow("SELECT LENGTH(b), SHA2(b, 256) FROM compat_go.bigw WHERE id = ?", i).Scan(&n, &sum); err != nil {
					t.Fatal(err)
				}
				if n != w.size || sum != sha256Hex(data) {
					t.Errorf("%s: wrote %d bytes (%s) through switchyard, the primary holds %d bytes with sha256 %s, want %s",
						tg.name, w.size, w.name, n, sum, sha256Hex(data))
				}
			}
		}
	})
}

// dumpQuery runs a query and describes every result set: column metadata
// and each value's raw bytes.
func dumpQuery(db *sql.DB, q string, args ...any) string {
	rows, err := db.Query(q, args...)
	if err != nil {
		return "error: " + err.Error()
	}
	return dumpRows(rows)
}

func dumpRows(rows *sql.Rows) string {
	defer rows.Close()
	var b strings.Builder
	for set := 0; ; set++ {
		cts, err := rows.ColumnTypes()
		if err != nil {
			fmt.Fprintf(&b, "set %d columns: error %v\n", set, err)
			break
		}
		names := make([]string, len(cts))
		for i, ct := range cts {
			names[i] = ct.Name()
			length, hasLen := ct.Length()
			prec, scale, hasDec := ct.DecimalSize()
			nullable, hasNull := ct.Nullable()
			fmt.Fprintf(&b, "set %d col %q type %s len %d/%v dec %d,%d/%v null %v/%v scan %v\n", set,
				ct.Name(), ct.DatabaseTypeName(), length, hasLen, prec, scale, hasDec, nullable, hasNull, ct.ScanType())
		}
		fmt.Fprintf(&b, "set %d cols %v\n", set, names)
		vals := make([]sql.RawBytes, len(cts))
		ptrs := make([]any, len(cts))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				fmt.Fprintf(&b, "scan error %v\n", err)
				break
			}
			for i, v := range vals {
				if v == nil {
					b.WriteString("NULL")
				} else {
					fmt.Fprintf(&b, "%q", []byte(v))
				}
				if i < len(vals)-1 {
					b.WriteByte('|')
				}
			}
			b.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			fmt.Fprintf(&b, "rows error %v\n", err)
		}
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		fmt.Fprintf(&b, "error %v\n", err)
	}
	return b.String()
}

// goWorkload runs DDL, DML, transactions, prepared statements of every
// column type, multi-statements, stored procedures and LOAD DATA LOCAL INFILE
// on one connection and returns a transcript. inTrx is the engine's
// inTransactionSQL.
func goWorkload(db *sql.DB, schema, infile, inTrx string) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var b strings.Builder
	conn, err := db.Conn(ctx)
	if err != nil {
		return "connect: " + err.Error()
	}
	defer conn.Close()
	exec := func(q string, args ...any) {
		fmt.Fprintf(&b, "> %s %v\n", q, args)
		res, err := conn.ExecContext(ctx, q, args...)
		if err != nil {
			fmt.Fprintf(&b, "  error %v\n", err)
			return
		}
		n, err1 := res.RowsAffected()
		id, err2 := res.LastInsertId()
		fmt.Fprintf(&b, "  affected %d %v last id %d %v\n", n, err1, id, err2)
	}
	query := func(q string, args ...any) {
		fmt.Fprintf(&b, "> %s %v\n", q, args)
		rows, err := conn.QueryContext(ctx, q, args...)
		if err != nil {
			fmt.Fprintf(&b, "  error %v\n", err)
			return
		}
		b.WriteString(dumpRows(rows))
	}
	exec("DROP DATABASE IF EXISTS " + schema)
	exec("CREATE DATABASE " + schema + " CHARACTER SET utf8mb4")
	exec("USE " + schema)
	query("SELECT DATABASE()")
	exec(`CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL UNIQUE,
		qty INT NOT NULL DEFAULT 0, price DECIMAL(10,2), note TEXT) ENGINE=InnoDB`)
	exec("ALTER TABLE items ADD COLUMN created DATE NULL, ADD INDEX by_qty (qty)")
	exec("INSERT INTO items (name, qty, price, note) VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
		"apple", 3, 1.25, "red", "pear", int64(5), "2.50", nil)
	exec("INSERT INTO items (name, qty, price, note, created) VALUES (?, ?, ?, ?, ?)",
		"plum", uint64(0), 0.99, []byte("tab\there 'quoted' \\ é😀\x00"), "2024-02-29")
	exec("UPDATE items SET qty = qty + ? WHERE qty > ?", 1, 0)
	exec("DELETE FROM items WHERE name = ?", "plum")
	exec("INSERT INTO items (name) VALUES (?)", "apple")
	query("SELECT * FROM no_such_table")

	tx, err := conn.BeginTx(ctx, nil)
	if err == nil {
		_, err = tx.ExecContext(ctx, "INSERT INTO items (name, qty) VALUES (?, ?)", "rolled-back", 1)
		fmt.Fprintf(&b, "tx insert: %v rollback: %v\n", err, tx.Rollback())
	}
	query("SELECT COUNT(*), " + inTrx + " FROM items")
	tx, err = conn.BeginTx(ctx, nil)
	if err == nil {
		_, err = tx.ExecContext(ctx, "INSERT INTO items (name, qty) VALUES ('committed', 2)")
		fmt.Fprintf(&b, "tx insert: %v commit: %v\n", err, tx.Commit())
	}
	query("SELECT * FROM items ORDER BY id")

	// A prepared statement executed several times.
	stmt, err := conn.PrepareContext(ctx, "SELECT name, qty FROM items WHERE qty >= ? ORDER BY id")
	if err != nil {
		fmt.Fprintf(&b, "prepare: %v\n", err)
	} else {
		for _, q := range []int{0, 2, 5, 100} {
			rows, err := stmt.QueryContext(ctx, q)
			if err != nil {
				fmt.Fprintf(&b, "execute %d: %v\n", q, err)
				continue
			}
			b.WriteString(dumpRows(rows))
		}
		fmt.Fprintf(&b, "close: %v\n", stmt.Close())
	}

	// Every column type through the binary protocol, both ways: read the
	// fixture row by row and write it back as parameters.
	exec("CREATE TABLE types_copy LIKE compat.types")
	rows, err := conn.QueryContext(ctx, "SELECT * FROM compat.types WHERE id > ? ORDER BY id", 0)
	if err != nil {
		fmt.Fprintf(&b, "read types: %v\n", err)
	} else {
		var all [][]any
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				fmt.Fprintf(&b, "scan types: %v\n", err)
				break
			}
			all = append(all, vals)
		}
		rows.Close()
		marks := strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",")
		for _, vals := range all {
			kinds := make([]string, len(vals))
			for i, v := range vals {
				kinds[i] = fmt.Sprintf("%T", v)
			}
			fmt.Fprintf(&b, "row kinds %v\n", kinds)
			if _, err := conn.ExecContext(ctx, "INSERT INTO types_copy VALUES ("+marks+")", vals...); err != nil {
				fmt.Fprintf(&b, "insert copy: %v\n", err)
			}
		}
	}
	query("SELECT * FROM types_copy ORDER BY id")
	query(`SELECT COUNT(*) FROM types_copy c JOIN compat.types t USING (id)
		WHERE NOT (c.ti <=> t.ti AND c.biu <=> t.biu AND c.de <=> t.de AND c.fl <=> t.fl AND c.db <=> t.db AND c.b64 <=> t.b64
		AND c.t <=> t.t AND c.dt <=> t.dt AND c.ts <=> t.ts AND c.lb <=> t.lb AND c.lt <=> t.lt AND c.st <=> t.st
		AND c.js <=> t.js AND ST_AsText(c.g) <=> ST_AsText(t.g) AND c.lat <=> t.lat)`)

	query("SELECT 1 AS one; SELECT 'two' AS two, 2.0 AS num; UPDATE items SET qty = 10 WHERE name = 'apple'; SELECT qty FROM items WHERE name = 'apple'")
	exec(`CREATE PROCEDURE multi(IN n INT)
		BEGIN
		  SELECT n AS n, 'first' AS which;
		  SELECT id, name FROM items ORDER BY id;
		  SELECT COUNT(*) AS cnt, SUM(qty) AS total FROM items;
		END`)
	query("CALL multi(7)")
	query("CALL multi(?)", 8) // binary protocol: several result sets from one execute
	exec(`CREATE PROCEDURE outp(IN a INT, OUT doubled INT) BEGIN SET doubled = a * 2; SELECT a AS a; END`)
	query("CALL outp(21, @d)")
	query("SELECT @d")
	query("SELECT 'after calls' AS still_in_sync")

	exec("CREATE TABLE loaded (id INT PRIMARY KEY, txt VARCHAR(100), bin VARBINARY(100), n DECIMAL(10,3))")
	// CHARACTER SET binary: the file holds raw bytes for the VARBINARY
	// column, which MySQL refuses to read as the database's utf8mb4.
	exec("LOAD DATA LOCAL INFILE '" + infile + "' INTO TABLE loaded CHARACTER SET binary")
	query("SELECT COUNT(*), SUM(n), SUM(CRC32(CONCAT(id, txt, HEX(bin)))) FROM loaded")
	query("SELECT * FROM loaded ORDER BY id LIMIT 5")
	query("SELECT " + inTrx + ", @@autocommit")
	return b.String()
}

var errNoID = errors.New("no connection id from the greeting")

// connWithID returns one connection from db and the id its greeting carried.
func connWithID(t testing.TB, db *sql.DB, ids <-chan uint32) (*sql.Conn, uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-ids:
		return conn, id
	default:
		t.Fatal(errNoID)
		return nil, 0
	}
}
