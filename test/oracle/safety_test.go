package oracle

import (
	"strings"
	"testing"

	"github.com/switchyard-db/switchyard/router"
)

func TestNeverRun(t *testing.T) {
	for _, tc := range []struct {
		sql   string
		never bool
	}{
		{"SHUTDOWN", true},
		{"/* x */ kill 5", true},
		{"SET GLOBAL max_connections = 1", true},
		{"SET @@global.read_only = 1", true},
		{"set session sql_mode = '', global max_connections = 1", true},
		{"SET PASSWORD FOR root@localhost = PASSWORD('x')", true},
		{"CREATE USER u", true},
		{"DROP ROLE IF EXISTS r", true},
		{"GRANT ALL ON *.* TO u", true},
		{"FLUSH TABLES WITH READ LOCK", true},
		{"LOCK TABLES t1 READ", true},
		{"INSTALL SONAME 'ha_example'", true},
		{"LOAD DATA INFILE 'x' INTO TABLE t", true},
		{"SELECT * FROM t INTO OUTFILE '/tmp/x'", true},
		{"SELECT 1 INTO DUMPFILE '/tmp/x'", true},
		{"RESET MASTER", true},
		{"PURGE BINARY LOGS TO 'x'", true},
		{"CHANGE MASTER TO master_host='x'", true},
		{"STOP SLAVE", true},
		{"START REPLICA", true},
		{"BINLOG 'AAAA'", true},
		{"XA START 'x'", true},
		{"HANDLER t1 OPEN", true},
		{"BACKUP STAGE START", true},
		{"/*!40101 KILL 1 */", true},
		{"EXECUTE IMMEDIATE 'SHUTDOWN'", true},
		{"SET STATEMENT max_statement_time=1 FOR FLUSH TABLES", true},
		{"SELECT 1", false},
		{"SELECT 'KILL', `shutdown` FROM t", false},
		{"SHOW GLOBAL STATUS", false},
		{"SELECT @@global.max_connections", false},
		{"SET SESSION sql_mode = ''", false},
		{"START TRANSACTION", false},
		{"SET STATEMENT max_statement_time=1 FOR SELECT 1", false},
		{"set statement OLD_PASSWORDS = 1 for select password('test')", false},
		{"SET DEFAULT ROLE r FOR u", true},
		{"SET STATEMENT sql_mode='' FOR SET GLOBAL max_connections = 1", true},
		{"EXECUTE IMMEDIATE 'SELECT 1'", false},
		{"SELECT 1 INTO @x", false},
	} {
		if got := neverRun(tc.sql) != ""; got != tc.never {
			t.Errorf("neverRun(%q) = %q, want never run: %v", tc.sql, neverRun(tc.sql), tc.never)
		}
	}
}

func TestSetupAllowed(t *testing.T) {
	const db = "oracle_7"
	for _, tc := range []struct {
		sql string
		ok  bool
	}{
		{"CREATE TABLE t1 (a INT)", true},
		{"create or replace temporary table t1 (user varchar(10), password int, `lock` int)", true},
		{"CREATE UNIQUE INDEX i ON t1 (a)", true},
		{"CREATE DEFINER=`root`@`localhost` SQL SECURITY INVOKER VIEW v AS SELECT 1", true},
		{"CREATE ALGORITHM=MERGE VIEW v AS SELECT * FROM t1", true},
		{"CREATE DEFINER=CURRENT_USER() FUNCTION f() RETURNS INT RETURN 1", true},
		{"CREATE PROCEDURE p() BEGIN SELECT 1; END", true},
		{"CREATE TRIGGER tr BEFORE INSERT ON t1 FOR EACH ROW SET NEW.a = 1", true},
		{"CREATE SEQUENCE s", true},
		{"ALTER TABLE t1 ADD COLUMN b INT, LOCK=NONE", true},
		{"ALTER ONLINE IGNORE TABLE t1 ENGINE=InnoDB", true},
		{"DROP TABLE IF EXISTS t1, t2", true},
		{"DROP TEMPORARY TABLE t1", true},
		{"DROP VIEW v", true},
		{"INSERT INTO t1 VALUES (1)", true},
		{"REPLACE t1 SELECT * FROM t2", true},
		{"UPDATE t1 SET a = 2", true},
		{"DELETE FROM t1", true},
		{"USE oracle_7", true},
		{"USE `oracle_7`", true},
		{"SET NAMES latin1", true},
		{"SET sql_mode = 'ANSI_QUOTES'", true},
		{"SET @a = 1, @@session.sort_buffer_size = 1000000", true},
		{"SET CHARACTER SET utf8", true},
		{"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", true},

		{"CREATE DATABASE d", false},
		{"DROP DATABASE oracle_7", false},
		{"USE test", false},
		{"USE oracle_8", false},
		{"CREATE TABLE t1 (a INT) DATA DIRECTORY = '/tmp'", false},
		{"CREATE FUNCTION metaphon RETURNS STRING SONAME 'udf_example.so'", false},
		{"CREATE PROCEDURE p() SET GLOBAL max_connections = 1", false},
		{"CREATE PROCEDURE p() BEGIN FLUSH TABLES; END", false},
		{"CREATE TRIGGER tr AFTER INSERT ON t1 FOR EACH ROW INSERT INTO mysql.user VALUES ()", false},
		{"CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DO DELETE FROM t1", false},
		{"CREATE TABLE t2 LIKE mysql.user", false},
		{"INSERT INTO test.t1 VALUES (1)", false},
		{"insert into `mysql`.`db` values ()", false},
		{"UPDATE performance_schema.setup_instruments SET enabled = 'NO'", false},
		{"DELETE FROM oracle_3.t1", false},
		{"SELECT * FROM information_schema.tables", false},
		{"SET autocommit = 0", false},
		{"SET @@autocommit = 0", false},
		{"SET SESSION max_statement_time = 0", false},
		{"SET @@session.lock_wait_timeout = 100", false},
		{"SET debug_sync = 'now WAIT_FOR x'", false},
		{"SET STATEMENT sql_mode = '' FOR INSERT INTO t1 VALUES (1)", false},
		{"SET GLOBAL event_scheduler = ON", false},
		{"SET ROLE r", false},
		{"TRUNCATE TABLE t1", false},
		{"CALL p()", false},
		{"ALTER DATABASE oracle_7 CHARACTER SET utf8", false},
		{"RENAME TABLE t1 TO t2", false},
		{"INSERT INTO t1 SELECT * FROM t2 INTO OUTFILE 'x'", false},
	} {
		ok, why := setupAllowed(tc.sql, db)
		if ok != tc.ok {
			t.Errorf("setupAllowed(%q) = %v (%s), want %v", tc.sql, ok, why, tc.ok)
		}
	}
}

func TestTokenize(t *testing.T) {
	toks := tokenize("SELECT `a``b`, 'c''d', \"e\\\"f\" -- x\n # y\n/* z */ /*!50001 KILL */ @v, @@session.x")
	var got []string
	for _, t := range toks {
		got = append(got, t.text)
	}
	want := "SELECT|a``b|,|c''d|,|e\\\"f|KILL|@v|,|@@session|.|x"
	if s := strings.Join(got, "|"); s != want {
		t.Errorf("tokenize texts = %s, want %s", s, want)
	}
}

// TestSessionMode checks that the session's settings reach the classifier; what
// each maps to is the router's business (router.ModeForSQLMode, ModeForCharset).
func TestSessionMode(t *testing.T) {
	const quoting = router.ModeNoBackslashEscapes | router.ModeANSIQuotes
	for _, tc := range []struct {
		sqlMode, charset string
		want             router.Mode // of quoting and ModeCharsetSJIS
	}{
		{"STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION", "utf8mb4", 0},
		{"NO_BACKSLASH_ESCAPES", "utf8mb4", router.ModeNoBackslashEscapes},
		{"REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ANSI", "latin1", router.ModeANSIQuotes},
		{"ANSI_QUOTES,NO_BACKSLASH_ESCAPES", "sjis", quoting | router.ModeCharsetSJIS},
	} {
		if got := sessionMode(tc.sqlMode, tc.charset) & (quoting | router.ModeCharsetSJIS); got != tc.want {
			t.Errorf("sessionMode(%q, %q) has %v of the modes checked, want %v", tc.sqlMode, tc.charset, got, tc.want)
		}
	}
}
