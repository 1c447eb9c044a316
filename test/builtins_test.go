package test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-db/switchyard/internal/sandbox"
	"github.com/switchyard-db/switchyard/router"
	"github.com/switchyard-db/switchyard/test/sandboxtest"
)

// keywordsBeforeParen are keywords and type names that stand before '(' in
// queries (IN (...), CAST(x AS DECIMAL(10, 2)), MATCH (a) AGAINST (...)):
// called like functions, they must not reach a stored function the
// classifier takes for them.
const keywordsBeforeParen = `
against all and any array as between bigint binary bit blob bool boolean by case char character columns
cross datetime dec decimal distinct distinctrow div double each else escape except exists fixed float for
from group having in index inner int integer intersect is join json json_table key lateral left like limit
match mediumint member natural nchar nested not numeric of offset on or order outer over partition path
precision real recursive regexp rlike row rows select set signed smallint some straight_join then tinyint
union unsigned using value values varbinary varchar varcharacter when where window with xor year
`

// storedMark is what every stored function the built-in tests create returns:
// a call that answers it ran the stored function, not a built-in.
const storedMark = "424242"

// TestBuiltins proves the router's list of built-in functions against the
// server. A read calling a stored function may write, so the classifier may
// send a read to a replica only when every name it calls is a built-in. For
// each name in router.BuiltinFunctions (and keywordsBeforeParen) and each
// argument count from 0 to 3,
// the test creates a stored function of that name in a scratch database and
// calls the name from there, written three ways: name(...), name (...) and
// name/**/(...). Where the server answers storedMark it called the stored
// function, and the classifier must have said so: FlagUnsure. It fails naming
// the name and the calls otherwise. Names the server refuses to create are
// skipped: no stored function can then be called by them.
//
// It runs on MySQL too, classifying as Switchyard does in front of MySQL
// (router.ModeMySQL): a name MariaDB has as a built-in and MySQL does not
// (MySQL 9.7 removed MD5 and SHA1; it never had NVL or JSON_DETAILED) is a
// stored function call there, which a replica must not run.
func TestBuiltins(t *testing.T) {
	sb := sandboxtest.Require(t)
	db, err := sb.RootDB(sb.Primary)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var version string
	if err := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		t.Fatal(err)
	}

	// What Switchyard classifies with in front of this engine.
	var mode router.Mode
	if sb.Flavor == sandbox.FlavorMySQL {
		mode = router.ModeMySQL
	}

	const scratch = "switchyard_builtins"
	exec := func(q string) error {
		_, err := conn.ExecContext(ctx, q)
		return err
	}
	for _, q := range []string{"DROP DATABASE IF EXISTS " + scratch, "CREATE DATABASE " + scratch, "USE " + scratch} {
		if err := exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	defer func() {
		if err := exec("DROP DATABASE IF EXISTS " + scratch); err != nil {
			t.Errorf("drop %s: %v", scratch, err)
		}
	}()

	// calls reports, for each spelling of a call of name with n arguments,
	// whether the server ran the stored function of that name.
	calls := func(name string, n int) (created bool, ran map[string]bool) {
		params := make([]string, n)
		args := make([]string, n)
		for i := range n {
			params[i] = fmt.Sprintf("a%d INT", i)
			args[i] = "0"
		}
		drop := fmt.Sprintf("DROP FUNCTION IF EXISTS %s.`%s`", scratch, name)
		if err := exec(drop); err != nil {
			t.Fatalf("%s: %v", drop, err)
		}
		create := fmt.Sprintf("CREATE FUNCTION %s.`%s`(%s) RETURNS INT DETERMINISTIC NO SQL RETURN %s",
			scratch, name, strings.Join(params, ", "), storedMark)
		if err := exec(create); err != nil {
			return false, nil
		}
		defer func() {
			if err := exec(drop); err != nil {
				t.Fatalf("%s: %v", drop, err)
			}
		}()
		ran = make(map[string]bool)
		list := strings.Join(args, ", ")
		for _, call := range []string{name + "(" + list + ")", name + " (" + list + ")", name + "/**/(" + list + ")"} {
			var v sql.NullString
			err := conn.QueryRowContext(ctx, "SELECT "+call).Scan(&v)
			ran["SELECT "+call] = err == nil && v.String == storedMark
		}
		return true, ran
	}

	// The check works: a name that is no built-in calls the stored
	// function, and the classifier is unsure of it.
	const control = "switchyard_not_a_builtin"
	created, ran := calls(control, 1)
	if !created {
		t.Fatalf("cannot create the stored function %s.%s", scratch, control)
	}
	for q, stored := range ran {
		if !stored {
			t.Fatalf("%s did not call the stored function %s.%s", q, scratch, control)
		}
		if c := router.ClassifyMode(q, mode); c.Flags&router.FlagUnsure == 0 {
			t.Fatalf("Classify(%q) = %v, want unsure", q, c)
		}
	}

	// Besides the built-ins, the keywords that the classifier lets stand
	// before '(' without counting a call.
	names := append(router.BuiltinFunctions(), strings.Fields(keywordsBeforeParen)...)
	slices.Sort(names)
	names = slices.Compact(names)
	made, skipped := 0, 0
	var wrong []string // names the classifier takes for built-ins where the server does not
	for _, name := range names {
		var bad []string // this name's calls that ran the stored function, classified sure
		for n := 0; n <= 3; n++ {
			created, ran := calls(name, n)
			if !created {
				skipped++
				continue
			}
			made++
			for q, stored := range ran {
				if c := router.ClassifyMode(q, mode); stored && c.Flags&router.FlagUnsure == 0 {
					bad = append(bad, fmt.Sprintf("ClassifyMode(%q, %v) = %v", q, mode, c))
				}
			}
		}
		if len(bad) > 0 {
			slices.Sort(bad)
			wrong = append(wrong, name)
			t.Errorf("%s: %s is not a built-in there: the server called the stored function %s.%s in %d calls the classifier is sure of, such as %s",
				version, name, scratch, name, len(bad), bad[0])
		}
	}
	if len(wrong) > 0 {
		t.Errorf("%s: %d names the classifier takes for built-ins call stored functions there: %s",
			version, len(wrong), strings.Join(wrong, " "))
	}
	t.Logf("%s: %d names, %d stored functions created and called, %d refused", version, len(names), made, skipped)
	if made < len(names) {
		t.Errorf("only %d stored functions created for %d names", made, len(names))
	}
}
