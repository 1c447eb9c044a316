#!/usr/bin/env python3
"""Client side of Switchyard's Python compatibility tests.

Connects with PyMySQL or mysqlclient (MySQLdb) and runs one scenario, printing
a transcript (reprs of descriptions, rows, row counts and errors) to stdout.
The Go tests run every scenario once directly against the primary and once
through Switchyard, and compare the two transcripts byte for byte.

Exit status: 0 when the scenario ran, 2 for bad usage, 3 when connecting
failed (the error is printed as "connect error: ERRNO MESSAGE").
"""

import argparse
import hashlib
import os
import sys
import tempfile


def connect(a):
    if a.driver == "pymysql":
        import pymysql
        from pymysql.constants import CLIENT

        cls = pymysql.connections.Connection
        if a.sha2:
            # PyMySQL answers with the plugin the greeting names; make it
            # answer with caching_sha2_password as a MySQL 8 client would.
            class Sha2Connection(pymysql.connections.Connection):
                def _get_server_information(self):
                    super()._get_server_information()
                    self._auth_plugin_name = "caching_sha2_password"

            cls = Sha2Connection
        kw = dict(host=a.host, port=a.port, user=a.user, password=a.password, charset="utf8mb4",
                  local_infile=True, client_flag=CLIENT.MULTI_STATEMENTS, max_allowed_packet=256 << 20,
                  connect_timeout=10)
        if a.db:
            kw["database"] = a.db
        if a.ssl_ca:
            kw["ssl"] = {"ca": a.ssl_ca}
        return cls(**kw), pymysql.err

    import MySQLdb

    kw = dict(host=a.host, port=a.port, user=a.user, passwd=a.password, charset="utf8mb4",
              local_infile=1, connect_timeout=10)
    if a.db:
        kw["db"] = a.db
    if a.ssl_ca:
        kw["ssl"] = {"ca": a.ssl_ca}
    if a.sha2:
        # mysqlclient has no argument for it; libmariadb reads default-auth
        # from an option file.
        f = tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False)
        f.write("[client]\ndefault-auth=caching_sha2_password\nplugin-dir=%s\n" % a.plugin_dir)
        f.close()
        kw["read_default_file"] = f.name
    try:
        return MySQLdb.connect(**kw), MySQLdb
    finally:
        if a.sha2:
            os.unlink(f.name)


def error_text(e):
    args = getattr(e, "args", ())
    if len(args) >= 2:
        return "%s %s" % (args[0], args[1])
    return "%s %s" % (type(e).__name__, e)


class Transcript:
    def __init__(self, conn, errors):
        self.conn = conn
        self.errors = errors
        self.cur = conn.cursor()

    def sets(self):
        """Prints every result set of the statement just executed."""
        n = 0
        while True:
            c = self.cur
            if c.description is not None:
                print("  set %d description %r" % (n, tuple(tuple(d) for d in c.description)))
                print("  set %d rows %r" % (n, c.fetchall()))
            else:
                print("  set %d rowcount %r lastrowid %r" % (n, c.rowcount, c.lastrowid))
            n += 1
            if not c.nextset():
                break

    def q(self, sql, args=None):
        print("> %s" % sql if args is None else "> %s %r" % (sql, args))
        try:
            if args is None:
                self.cur.execute(sql)
            else:
                self.cur.execute(sql, args)
        except self.errors.Error as e:
            print("  error %s" % error_text(e))
            return
        self.sets()


def scenario_smoke(conn, errors, a):
    """Records where a write ran (the Go side checks it on the primary), then reads."""
    cur = conn.cursor()
    cur.execute("REPLACE INTO compat.ran_on VALUES (%s, @@server_id, CURRENT_USER())", (a.tag,))
    conn.commit()
    cur.execute("SELECT CURRENT_USER(), 1 + 1")
    print("row %r" % (cur.fetchall(),))


def scenario_types(conn, errors, a):
    t = Transcript(conn, errors)
    t.q("SELECT * FROM compat.types ORDER BY id")
    t.q("SELECT id, HEX(b64), ST_AsText(g), ST_AsText(pt), CAST(js AS CHAR) FROM compat.types ORDER BY id")


def scenario_workload(conn, errors, a):
    db = a.workdb
    t = Transcript(conn, errors)
    t.q("DROP DATABASE IF EXISTS %s" % db)
    t.q("CREATE DATABASE %s CHARACTER SET utf8mb4" % db)
    conn.select_db(db)
    t.q("CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL UNIQUE, "
        "qty INT NOT NULL DEFAULT 0, price DECIMAL(10,2), note TEXT) ENGINE=InnoDB")
    t.q("ALTER TABLE items ADD COLUMN created DATE NULL, ADD INDEX by_qty (qty)")
    t.q("INSERT INTO items (name, qty, price, note) VALUES (%s, %s, %s, %s), (%s, %s, %s, %s)",
        ("apple", 3, "1.25", "red", "pear", 5, "2.50", None))
    t.q("INSERT INTO items (name, qty, price, note, created) VALUES (%s, %s, %s, %s, %s)",
        ("plum", 0, "0.99", "tab\there 'quoted' \\ \u00e9\U0001F600", "2024-02-29"))
    t.q("UPDATE items SET qty = qty + 1 WHERE qty > 0")
    t.q("DELETE FROM items WHERE name = 'plum'")
    t.q("INSERT INTO items (name) VALUES ('apple')")  # duplicate key
    t.q("SELECT * FROM no_such_table")
    t.q("START TRANSACTION")
    t.q("INSERT INTO items (name, qty) VALUES ('rolled-back', 1)")
    t.q("SELECT COUNT(*) FROM items")
    conn.rollback()
    t.q("SELECT COUNT(*) FROM items")
    t.q("START TRANSACTION")
    t.q("INSERT INTO items (name, qty) VALUES ('committed', 2)")
    conn.commit()
    t.q("SELECT * FROM items ORDER BY id")
    t.q("PREPARE ps FROM 'SELECT name, qty FROM items WHERE qty >= ? ORDER BY id'")
    t.q("SET @q = 2")
    t.q("EXECUTE ps USING @q")
    t.q("DEALLOCATE PREPARE ps")
    t.q("SELECT 1 AS one; SELECT 'two' AS two, 2.0 AS num; UPDATE items SET qty = 10 WHERE name = 'apple'; "
        "SELECT qty FROM items WHERE name = 'apple'")
    t.q("CREATE PROCEDURE multi(IN n INT) BEGIN SELECT n AS n, 'first' AS which; "
        "SELECT id, name FROM items ORDER BY id; SELECT COUNT(*) AS cnt, SUM(qty) AS total FROM items; END")
    t.q("CALL multi(7)")
    t.q("SELECT 'after call' AS still_in_sync")
    t.q("CREATE TABLE loaded (id INT PRIMARY KEY, txt VARCHAR(100), bin VARBINARY(100), n DECIMAL(10,3))")
    # CHARACTER SET binary: the file holds raw bytes for the VARBINARY column,
    # which MySQL refuses to read as the database's utf8mb4.
    t.q("LOAD DATA LOCAL INFILE '%s' INTO TABLE loaded CHARACTER SET binary" % a.infile)
    t.q("SELECT COUNT(*), SUM(n), SUM(CRC32(CONCAT(id, txt, HEX(bin)))) FROM loaded")
    t.q("SELECT * FROM loaded ORDER BY id LIMIT 5")
    t.q("SELECT %s, @@autocommit" % a.in_transaction)
    conn.commit()


def pattern(n):
    """Deterministic bytes with every byte value, including NUL, quote and backslash."""
    block = bytes((i * 7 + 3) % 256 for i in range(65536))
    return (block * (n // len(block) + 1))[:n]


def scenario_bigread(conn, errors, a):
    cur = conn.cursor()
    cur.execute("SELECT id, b FROM compat.big ORDER BY id")
    for row_id, b in cur.fetchall():
        print("row %d len %d sha256 %s" % (row_id, len(b), hashlib.sha256(b).hexdigest()))


def scenario_bigwrite(conn, errors, a):
    cur = conn.cursor()
    cur.execute("CREATE DATABASE IF NOT EXISTS %s" % a.workdb)
    cur.execute("CREATE TABLE IF NOT EXISTS %s.big (id INT PRIMARY KEY, b LONGBLOB)" % a.workdb)
    cur.execute("DELETE FROM %s.big" % a.workdb)
    data = pattern(a.size)
    cur.execute("INSERT INTO " + a.workdb + ".big VALUES (1, %s)", (data,))
    conn.commit()
    cur.execute("SELECT b FROM %s.big WHERE id = 1" % a.workdb)
    (got,) = cur.fetchone()
    print("wrote len %d sha256 %s read back equal %s" % (len(data), hashlib.sha256(data).hexdigest(), got == data))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--driver", choices=["pymysql", "mysqldb"], required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", default="")
    p.add_argument("--db", default="")
    p.add_argument("--ssl-ca", default="")
    p.add_argument("--sha2", action="store_true", help="authenticate with caching_sha2_password")
    p.add_argument("--plugin-dir", default="")
    p.add_argument("--workdb", default="")
    p.add_argument("--infile", default="")
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--tag", default="")
    p.add_argument("--in-transaction", default="@@in_transaction",
                   help="SQL expression that is 1 inside a transaction (MySQL has no @@in_transaction)")
    p.add_argument("scenario", choices=["connect", "smoke", "types", "workload", "bigread", "bigwrite"])
    a = p.parse_args()
    try:
        conn, errors = connect(a)
    except Exception as e:  # each driver has its own error classes
        print("connect error: %s" % error_text(e))
        return 3
    if a.scenario == "connect":
        print("connected")
    else:
        globals()["scenario_" + a.scenario](conn, errors, a)
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
