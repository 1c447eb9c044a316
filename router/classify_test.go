package router

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite testdata/classify.golden with the current classes")

const goldenPath = "testdata/classify.golden"

// goldenEntry is one statement of the golden table with the comment and
// blank lines before it.
type goldenEntry struct {
	before []string
	stmt   string
	want   string
	line   int
}

// readGolden parses the golden table: '#' lines and blank lines are kept as
// comments; any other line is a statement (Go-quoted when it starts with '"'),
// and the line after it, starting with "-> ", is its expected class.
func readGolden(t testing.TB) (entries []goldenEntry, trailer []string) {
	t.Helper()
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	var pending []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			pending = append(pending, line)
		case strings.HasPrefix(line, "-> "):
			if len(entries) == 0 || entries[len(entries)-1].want != "" || len(pending) > 0 {
				t.Fatalf("%s:%d: expected class without a statement", goldenPath, n)
			}
			entries[len(entries)-1].want = strings.TrimPrefix(line, "-> ")
		default:
			stmt := line
			if strings.HasPrefix(line, `"`) {
				if stmt, err = strconv.Unquote(line); err != nil {
					t.Fatalf("%s:%d: %v", goldenPath, n, err)
				}
			}
			entries = append(entries, goldenEntry{before: pending, stmt: stmt, line: n})
			pending = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return entries, pending
}

// encodeStmt writes a statement on one line, quoting it when it would not
// read back as itself.
func encodeStmt(s string) string {
	if s == "" || strings.TrimSpace(s) != s || !utf8.ValidString(s) || strings.ContainsAny(s, "\n\r\t\v\f") ||
		strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "#") || strings.HasPrefix(s, "->") {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) && r != ' ' {
			return strconv.Quote(s)
		}
	}
	return s
}

func TestClassifyGolden(t *testing.T) {
	entries, trailer := readGolden(t)
	if len(entries) < 300 {
		t.Errorf("golden table has %d statements, want at least 300", len(entries))
	}
	seen := make(map[string]int)
	var out bytes.Buffer
	fast, diffs := 0, 0
	for _, e := range entries {
		if prev, ok := seen[e.stmt]; ok {
			t.Errorf("%s:%d: duplicate of line %d: %q", goldenPath, e.line, prev, e.stmt)
		}
		seen[e.stmt] = e.line
		c := Classify(e.stmt)
		got := c.String()
		if c.Flags&FlagFastPath != 0 {
			fast++
		}
		if got != e.want && !*update {
			diffs++
			t.Errorf("%s:%d: Classify(%q) = %v, want %v", goldenPath, e.line, e.stmt, got, e.want)
		}
		for _, l := range e.before {
			out.WriteString(l + "\n")
		}
		out.WriteString(encodeStmt(e.stmt) + "\n-> " + got + "\n")
	}
	for _, l := range trailer {
		out.WriteString(l + "\n")
	}
	t.Logf("%d statements, %d (%.1f%%) decided on the fast path", len(entries), fast,
		100*float64(fast)/float64(len(entries)))
	if *update {
		if err := os.WriteFile(goldenPath, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diffs > 0 {
		t.Logf("run `go test ./router -run TestClassifyGolden -update` and review the diff if the changes are intended")
	}
}

// routingFlags are the flags both paths must agree on.
const routingFlags = FlagLocking | FlagInto | FlagSideEffect | FlagLockFunc | FlagReleaseLockFunc |
	FlagTempTableCreate | FlagTempTableDrop | FlagUserVarWrite | FlagUserVarRead | FlagNeedsPrevious |
	FlagLastInsertID | FlagServerLocal | FlagGlobalSet | FlagImplicitCommit | FlagTxReadOnly | FlagChain | FlagRelease |
	FlagCalcFoundRows

// parserDisagrees lists golden statements where the parser path is known to
// answer differently from the fast path, and why the fast path is right.
var parserDisagrees = map[string]string{
	"SET TRANSACTION READ ONLY": "the parser turns the characteristics into session variables " +
		"(tx_read_only) and loses READ ONLY and the next-transaction scope",
	"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY": "as SET TRANSACTION READ ONLY",
	"SET SESSION TRANSACTION READ ONLY":                       "as SET TRANSACTION READ ONLY",
}

// TestFastPathAgreesWithParser cross-checks the two classifiers: every
// golden statement the fast path decides is also given to the parser, and
// where the parser understands it, both must agree on the kind and on the
// flags that drive routing.
func TestFastPathAgreesWithParser(t *testing.T) {
	entries, _ := readGolden(t)
	compared, skipped := 0, 0
	for _, e := range entries {
		fc := Classify(e.stmt)
		if fc.Flags&FlagFastPath == 0 || fc.Flags&(FlagMultiStatement|FlagUnsure) != 0 || fc.Kind == KindEmpty {
			continue
		}
		sc := slowStatement(e.stmt, 0, 0)
		if sc.Flags&FlagUnsure != 0 {
			skipped++ // MariaDB syntax the parser does not know
			continue
		}
		compared++
		if fc.Kind == sc.Kind && fc.Flags&routingFlags == sc.Flags&routingFlags {
			if _, ok := parserDisagrees[e.stmt]; ok {
				t.Errorf("%q: listed in parserDisagrees but both paths say %v", e.stmt, fc)
			}
			continue
		}
		if _, ok := parserDisagrees[e.stmt]; ok {
			continue
		}
		t.Errorf("%s:%d: %q: fast path %v, parser %v", goldenPath, e.line, e.stmt, fc, sc)
	}
	t.Logf("compared %d statements with the parser; %d not parsed by it", compared, skipped)
	if compared < 200 {
		t.Errorf("only %d statements compared", compared)
	}
}

func TestClassifyModes(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		mode Mode
		want string
	}{
		// With backslash escapes the quote is escaped and the string runs on;
		// without them the string ends and a second statement follows.
		{`SELECT 'a\'; DELETE FROM t; -- '`, 0, "read fast"},
		{`SELECT 'a\'; DELETE FROM t; -- '`, ModeNoBackslashEscapes, "write multi,fast"},
		{`SELECT "x" FROM t FOR UPDATE`, ModeANSIQuotes, "write locking,fast"},
		{`SELECT "f"(1)`, 0, "read fast"},
		{`SELECT "f"(1)`, ModeANSIQuotes, "write unsure"},
		{`SET autocommit = 'O\N'`, 0, "set autocommit-on,fast"},
		{`SET autocommit = 'O\N'`, ModeNoBackslashEscapes, "set unsure,fast"},
		{`PREPARE s FROM 'SELECT \'x\' FOR UPDATE'`, 0, `prepare fast name="s" inner=write{locking}`},
		{`PREPARE s FROM 'SELECT ''x'' FROM t'`, ModeNoBackslashEscapes, `prepare fast name="s" inner=read{}`},
	} {
		if got := ClassifyMode(tc.sql, tc.mode).String(); got != tc.want {
			t.Errorf("ClassifyMode(%q, %d) = %v, want %v", tc.sql, tc.mode, got, tc.want)
		}
	}
}

func TestClassifyFields(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want Class
	}{
		{"USE `my``db`", Class{Kind: KindUse, Name: "my`db", Flags: FlagFastPath}},
		{"use shop", Class{Kind: KindUse, Name: "shop", Flags: FlagFastPath}},
		{"/* switchyard:route=replica */ SELECT 1", Class{Kind: KindRead, Flags: FlagFastPath, Hint: RouteReplica}},
		{"PREPARE p FROM @q", Class{Kind: KindPrepare, Name: "p", Flags: FlagUserVarRead | FlagFastPath,
			InnerKind: KindWrite, InnerFlags: FlagUnsure}},
		{"", Class{Kind: KindEmpty, Flags: FlagFastPath}},
	} {
		if got := Classify(tc.sql); got != tc.want {
			t.Errorf("Classify(%q) = %v, want %v", tc.sql, got, tc.want)
		}
	}
	var zero Class
	if zero.Kind != KindWrite {
		t.Errorf("zero Class has kind %v, want write", zero.Kind)
	}
}

// typicalMix is what the proxy sees most: sysbench, Django and SQLAlchemy.
var typicalMix = []string{
	"SELECT c FROM sbtest1 WHERE id=?",
	"SELECT c FROM sbtest1 WHERE id BETWEEN 51 AND 150",
	"SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 50 AND 149",
	"SELECT c FROM sbtest1 WHERE id BETWEEN 51 AND 150 ORDER BY c",
	"SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 51 AND 150 ORDER BY c",
	"UPDATE sbtest1 SET k=k+1 WHERE id=51",
	"DELETE FROM sbtest1 WHERE id=50",
	"INSERT INTO sbtest1 (id, k, c, pad) VALUES (?, ?, ?, ?)",
	"BEGIN",
	"COMMIT",
	"SELECT `shop_product`.`id`, `shop_product`.`category_id`, `shop_product`.`name`, `shop_product`.`price` FROM `shop_product` INNER JOIN `shop_category` ON (`shop_product`.`category_id` = `shop_category`.`id`) WHERE `shop_category`.`name` = 'books' ORDER BY `shop_product`.`price` DESC LIMIT 10",
	"SELECT COUNT(*) AS `__count` FROM `shop_product`",
	"SELECT (1) AS `a` FROM `shop_product` WHERE `shop_product`.`stock` > 1 LIMIT 1",
	"INSERT INTO `shop_category` (`name`) VALUES ('books') RETURNING `shop_category`.`id`",
	"SAVEPOINT `s140350683152448_x1`",
	"RELEASE SAVEPOINT `s140350683152448_x1`",
	"SELECT `shop_product`.`id` FROM `shop_product` WHERE `shop_product`.`id` = 1 LIMIT 21 FOR UPDATE",
	"SET autocommit=0",
	"SELECT users.id, users.name \nFROM users \nWHERE users.name = 'ann'",
	"SELECT count(*) AS count_1 \nFROM users",
	"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
	"SELECT DATABASE()",
	"SELECT @@max_allowed_packet",
	"SET NAMES utf8mb4",
}

func TestClassifyFastPathDoesNotAllocate(t *testing.T) {
	entries, _ := readGolden(t)
	for _, e := range entries {
		if c := Classify(e.stmt); c.Flags&FlagFastPath == 0 || c.Kind == KindPrepare ||
			strings.Contains(e.stmt, "EXECUTE IMMEDIATE") {
			continue // the parser allocates; so does unescaping a prepared text
		}
		if n := testing.AllocsPerRun(5, func() { Classify(e.stmt) }); n != 0 {
			t.Errorf("Classify(%q) allocates %v times on the fast path", e.stmt, n)
		}
	}
	for _, s := range typicalMix {
		if c := Classify(s); c.Flags&FlagFastPath == 0 {
			t.Errorf("Classify(%q) = %v: not decided on the fast path", s, c)
		}
	}
}

func TestClassifyConcurrent(t *testing.T) {
	entries, _ := readGolden(t)
	want := make([]Class, len(entries))
	for i, e := range entries {
		want[i] = Classify(e.stmt)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := range entries {
				j := (i + g*37) % len(entries)
				if got := Classify(entries[j].stmt); got != want[j] {
					errs <- entries[j].stmt
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Errorf("Classify(%q) differs when run concurrently", s)
	}
}

func TestClassifyHostileInput(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("(", 100000) + "SELECT 1",
		"SELECT " + strings.Repeat("f(", 5000) + strings.Repeat(")", 5000),
		"SELECT my_func(" + strings.Repeat("(", 300) + "1" + strings.Repeat(")", 301),
		strings.Repeat("EXPLAIN ", 1000) + "SELECT 1",
		strings.Repeat("PREPARE s FROM '", 50),
		"SELECT \xff\xfe FROM t",
		"SELECT my_func(1) -- " + strings.Repeat("x", maxParse),
		"/*!",
		"/*M!",
		"@",
		"@@",
		"SET",
		"SET @",
		"SET x",
		"SET x =",
		"WITH",
		"WITH c AS (",
		"XA",
		"EXECUTE IMMEDIATE",
	} {
		c := Classify(s)
		if c.Kind == KindRead && c.Flags&FlagUnsure != 0 {
			t.Errorf("Classify(%.40q) = %v: unsure reads must be writes", s, c)
		}
	}
}
