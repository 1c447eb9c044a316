package oracle

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExtractMysqltest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     string
		want    []Statement
		leftOut int
	}{
		{
			name: "statements and lines",
			src:  "SELECT 1;\n\n  SELECT\n  2 ;  SELECT 3;",
			want: []Statement{{"SELECT 1", 1}, {"SELECT\n  2", 3}, {"SELECT 3", 4}},
		},
		{
			name: "comments and dashed commands",
			src:  "# a comment; not SQL\n--echo SELECT 1;\n-- words that are no command\n--error ER_NO_SUCH_TABLE\nSELECT 2;",
			want: []Statement{{"SELECT 2", 5}},
		},
		{
			// Once a query started, '#' and "--" lines belong to it (the server
			// reads them as comments).
			name: "comment lines inside a query",
			src:  "SELECT 1,\n# one\n-- two\n2;",
			want: []Statement{{"SELECT 1,\n# one\n-- two\n2", 1}},
		},
		{
			name: "delimiter command",
			src: "delimiter //;\nCREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END//\n" +
				"delimiter ;//\nSELECT 3;",
			want: []Statement{{"CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END", 2}, {"SELECT 3", 4}},
		},
		{
			name: "dashed delimiter",
			src:  "--delimiter $$\nSELECT 1; SELECT 2$$\n--delimiter ;\nSELECT 3;",
			want: []Statement{{"SELECT 1; SELECT 2", 2}, {"SELECT 3", 4}},
		},
		{
			name: "quotes hide the delimiter",
			src:  "SELECT 'a;b', \"c;d\", `e;f`, 'it''s;';\nSELECT 'x\\';y';",
			want: []Statement{{"SELECT 'a;b', \"c;d\", `e;f`, 'it''s;'", 1}, {"SELECT 'x\\';y'", 2}},
		},
		{
			name: "if and while blocks are skipped",
			src: "if ($x)\n{\n  SELECT 1;\n  while ($y) {\n    SELECT 2;\n  }\n}\nSELECT 3;\n" +
				"--if ($z) {\nSELECT 4;\n}\nSELECT 5;",
			want:    []Statement{{"SELECT 3", 8}, {"SELECT 5", 12}},
			leftOut: 3,
		},
		{
			name: "a brace in a query is not a block",
			src:  "SELECT JSON_OBJECT('a', '{');\nSELECT '}';",
			want: []Statement{{"SELECT JSON_OBJECT('a', '{')", 1}, {"SELECT '}'", 2}},
		},
		{
			name: "perl text",
			src:  "perl;\n  print \"SELECT 1;\";\nEOF\nSELECT 2;\n--perl END_OF_PERL\nmy $x = 'EOF;';\nEND_OF_PERL\nSELECT 3;",
			want: []Statement{{"SELECT 2", 4}, {"SELECT 3", 8}},
		},
		{
			name: "write_file text",
			src:  "--write_file $MYSQL_TMP_DIR/x.sql\nSELECT 1;\nEOF\nwrite_file \"$D/a;b c\" END;\nSELECT 2;\nEND\nSELECT 3;",
			want: []Statement{{"SELECT 3", 7}},
		},
		{
			name: "mysqltest commands written as queries",
			src: "let $a = `SELECT 1`;\necho hello;\nconnect (con1,localhost,root,,);\nconnection con1;\n" +
				"source include/have_innodb.inc;\nSELECT 1;\ndisconnect con1;\nsleep 0.1;",
			want: []Statement{{"SELECT 1", 6}},
		},
		{
			name:    "variables",
			src:     "SELECT $a;\nSELECT JSON_EXTRACT('{\"a\":1}', '$.a'), a$b FROM t;\neval SELECT $a;\n--eval SELECT $b",
			want:    []Statement{{"SELECT JSON_EXTRACT('{\"a\":1}', '$.a'), a$b FROM t", 2}},
			leftOut: 3,
		},
		{
			name:    "send and reap",
			src:     "send SELECT SLEEP(1);\nreap;\n--send\nSELECT 2;\n--reap\nSELECT 3;",
			want:    []Statement{{"SELECT 3", 6}},
			leftOut: 2,
		},
		{
			name: "query commands",
			src:  "query_vertical SELECT 1;\n--query SELECT 2\nquery_horizontal SELECT 3;",
			want: []Statement{{"SELECT 1", 1}, {"SELECT 2", 2}, {"SELECT 3", 3}},
		},
		{
			name: "disabled parsing",
			src:  "--disable_parsing\nSELECT 1;\ndelimiter |;\n}\n--enable_parsing\nSELECT 2;",
			want: []Statement{{"SELECT 2", 6}},
		},
		{
			name: "exit ends the script, unless in a block",
			src:  "if ($x) {\nexit;\n}\nSELECT 1;\nexit;\nSELECT 2;",
			want: []Statement{{"SELECT 1", 4}},
		},
		{
			name: "NO_BACKSLASH_ESCAPES",
			src:  "SET sql_mode='NO_BACKSLASH_ESCAPES';\nSELECT 'a\\';\nSET sql_mode=DEFAULT;\nSELECT 'b\\';';",
			want: []Statement{{"SET sql_mode='NO_BACKSLASH_ESCAPES'", 1}, {"SELECT 'a\\'", 2},
				{"SET sql_mode=DEFAULT", 3}, {"SELECT 'b\\';'", 4}},
		},
		{
			name: "ANSI_QUOTES",
			src:  "set sql_mode=ansi_quotes;\ncreate table \"a\\\"\"b\" (a int);\nSELECT 1;",
			want: []Statement{{"set sql_mode=ansi_quotes", 1}, {"create table \"a\\\"\"b\" (a int)", 2}, {"SELECT 1", 3}},
		},
		{
			// 0x95 0x5C is one sjis character: its second byte is no backslash.
			name: "character_set",
			src:  "--character_set sjis\nSELECT '\x95\\';\nSELECT 2;",
			want: []Statement{{"SET NAMES sjis", 1}, {"SELECT '\x95\\'", 2}, {"SELECT 2", 3}},
		},
		{
			name: "CRLF",
			src:  "SELECT 1;\r\nSELECT\r\n2;\r\n",
			want: []Statement{{"SELECT 1", 1}, {"SELECT\n2", 2}},
		},
		{
			name: "an unterminated last statement is dropped, as mysqltest does",
			src:  "SELECT 1;\nSELECT 2",
			want: []Statement{{"SELECT 1", 1}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ExtractMysqltest([]byte(tc.src))
			if err != nil {
				t.Fatalf("ExtractMysqltest(%q): %v", tc.src, err)
			}
			if diff := cmp.Diff(tc.want, got.Statements); diff != "" {
				t.Errorf("ExtractMysqltest(%q) statements (-want +got):\n%s", tc.src, diff)
			}
			if got.LeftOut != tc.leftOut {
				t.Errorf("ExtractMysqltest(%q) left out %d, want %d", tc.src, got.LeftOut, tc.leftOut)
			}
		})
	}
}

func TestExtractMysqltestErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"SELECT 1;\nSELECT 'a;\n", "line 3: quote ' opened on line 2 is never closed"},
		{"SELECT 1;\n}\n", "line 2: '}' without an open block"},
		{"if ($a) {\nSELECT 1;\n", "1 block(s) still open"},
		{"perl;\nprint 1;\n", `no "EOF" ends the text`},
		{"--delimiter \nSELECT 1;", "empty delimiter"},
		{"delimiter 12345678901234567;", "longer than 16 bytes"},
	} {
		_, err := ExtractMysqltest([]byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ExtractMysqltest(%q) error = %v, want one containing %q", tc.src, err, tc.want)
		}
	}
}

func TestExtractSQLScript(t *testing.T) {
	src := "-- a comment\nUSE db;\n# another\nDELIMITER //\nSELECT 1; SELECT 2//\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 3;\nEND//\n" +
		"delimiter ;\nSELECT 'x;y';\n"
	want := []Statement{{"USE db", 2}, {"SELECT 1; SELECT 2", 5}, {"CREATE PROCEDURE p()\nBEGIN\n  SELECT 3;\nEND", 6},
		{"SELECT 'x;y'", 11}}
	got, err := ExtractSQLScript([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ExtractSQLScript statements (-want +got):\n%s", diff)
	}
}

func TestExtractGolden(t *testing.T) {
	src := "# header\nSELECT 1\n-> read fast\n\n\"SELECT\\n2\"\n-> read\n"
	want := []Statement{{"SELECT 1", 2}, {"SELECT\n2", 5}}
	got, err := ExtractGolden([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ExtractGolden (-want +got):\n%s", diff)
	}
	if _, err := ExtractGolden([]byte("\"unterminated\n")); err == nil {
		t.Error("ExtractGolden of a bad quoted line: no error")
	}
}

func TestTrackSQLMode(t *testing.T) {
	for _, tc := range []struct {
		sql            string
		nb, aq         bool // before
		wantNB, wantAQ bool
	}{
		{"SET sql_mode = 'ANSI'", false, false, false, true},
		{"SET SESSION sql_mode='NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES'", false, false, true, false},
		{"set @@sql_mode=oracle", false, false, false, true},
		{"SET sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')", false, true, true, true},
		{"SET sql_mode = DEFAULT", true, true, false, false},
		{"SET sql_mode = @saved", true, false, false, false},
		{"SET GLOBAL sql_mode = 'ANSI'", false, false, false, false},
		{"SET @@global.sql_mode = 'ANSI'", false, false, false, false},
		{"SET STATEMENT sql_mode='ANSI' FOR SELECT 1", false, false, false, false},
		{"SELECT @@sql_mode", true, false, true, false},
	} {
		nb, aq := trackSQLMode(tc.sql, tc.nb, tc.aq)
		if nb != tc.wantNB || aq != tc.wantAQ {
			t.Errorf("trackSQLMode(%q, %v, %v) = %v, %v; want %v, %v", tc.sql, tc.nb, tc.aq, nb, aq, tc.wantNB, tc.wantAQ)
		}
	}
}

// FuzzExtractMysqltest checks that the extractor never panics and that every
// statement it returns is non-empty and lies within the file's lines.
func FuzzExtractMysqltest(f *testing.F) {
	for _, s := range []string{
		"SELECT 1;", "delimiter //;\nSELECT 1//\ndelimiter ;//", "if ($a) {\nSELECT 1;\n}", "perl;\nEOF\n",
		"--character_set sjis\nSELECT '\x95\\';", "SET sql_mode=ansi_quotes;\nSELECT \"a\\\";",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		x, err := ExtractMysqltest([]byte(src))
		if err != nil {
			return
		}
		lines := strings.Count(src, "\n") + 1
		for _, s := range x.Statements {
			if s.SQL == "" || s.Line < 1 || s.Line > lines {
				t.Errorf("ExtractMysqltest(%q): statement %q on line %d of %d", src, s.SQL, s.Line, lines)
			}
		}
	})
}
