package oracle

import (
	"strings"
)

// The oracle runs statements from a test suite as root on a scratch server shared by
// several scripts at once. Two rules keep that safe:
//
//   - neverRun: statements that act on the whole server (SHUTDOWN, KILL, SET GLOBAL,
//     accounts, FLUSH, locks, plugins, files, replication, XA, HANDLER) are never
//     sent, whatever the router says about them. A read-only transaction does not
//     stop them.
//   - setupAllowed: of the statements the router keeps on the primary, only those
//     that build a script's own data are run (tables, views, indexes, routines,
//     triggers and sequences; INSERT, UPDATE, DELETE, REPLACE; USE of the script's
//     database; session SETs), and none that names another schema.
//
// Both read the statement's words with tokenize, which knows quotes and comments
// but no grammar; when in doubt they refuse, which costs coverage, not safety.

// tokKind classifies the tokens of tokenize.
type tokKind uint8

const (
	tokWord   tokKind = iota // a keyword or bare identifier
	tokIdent                 // a `quoted` identifier
	tokString                // '...' or "..." (an identifier under ANSI_QUOTES)
	tokVar                   // @name or @@name, without what follows a '.'
	tokPunct                 // any other byte
)

type token struct {
	kind tokKind
	text string // words and variables as written; quoted tokens without quotes
	end  int    // offset just past the token in the statement
}

// word reports whether t is the keyword w (upper case).
func (t token) word(w string) bool { return t.kind == tokWord && strings.EqualFold(t.text, w) }

// name reports whether t can name a schema or table.
func (t token) name() bool { return t.kind == tokWord || t.kind == tokIdent || t.kind == tokString }

// tokenize splits sql into tokens. The text of executable comments (/*! ... */ and
// /*M! ... */) is read as SQL, as the server reads it.
func tokenize(sql string) []token {
	var out []token
	exec := 0 // open executable comments
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case isSpace(c):
			i++
		case c == '#' || c == '-' && strings.HasPrefix(sql[i:], "--") && (i+2 == len(sql) || sql[i+2] <= ' '):
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			j := i + 2
			if strings.HasPrefix(sql[j:], "!") || strings.HasPrefix(sql[j:], "M!") {
				j += strings.IndexByte(sql[j:], '!') + 1
				for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
					j++
				}
				exec++
				i = j
				continue
			}
			if k := strings.Index(sql[j:], "*/"); k >= 0 {
				i = j + k + 2
			} else {
				i = len(sql)
			}
		case c == '*' && exec > 0 && strings.HasPrefix(sql[i:], "*/"):
			exec--
			i += 2
		case c == '\'' || c == '"' || c == '`':
			j, text := quoted(sql, i)
			k := tokString
			if c == '`' {
				k = tokIdent
			}
			out = append(out, token{kind: k, text: text, end: j})
			i = j
		case c == '@':
			j := i + 1
			if j < len(sql) && sql[j] == '@' {
				j++
			}
			if j < len(sql) && (sql[j] == '\'' || sql[j] == '"' || sql[j] == '`') {
				j, _ = quoted(sql, j)
			} else {
				for j < len(sql) && isNameByte(sql[j]) {
					j++
				}
			}
			out = append(out, token{kind: tokVar, text: sql[i:j], end: j})
			i = j
		case isNameByte(c):
			j := i
			for j < len(sql) && isNameByte(sql[j]) {
				j++
			}
			out = append(out, token{kind: tokWord, text: sql[i:j], end: j})
			i = j
		default:
			out = append(out, token{kind: tokPunct, text: sql[i : i+1], end: i + 1})
			i++
		}
	}
	return out
}

func isNameByte(c byte) bool { return isWordByte(c) || c == '$' || c >= 0x80 }

// quoted returns the end of the quoted token starting at sql[i] and its text.
// Backslashes escape in '...' and "..."; a doubled quote stands for itself.
func quoted(sql string, i int) (end int, text string) {
	q := sql[i]
	j := i + 1
	for j < len(sql) {
		switch c := sql[j]; {
		case c == '\\' && q != '`':
			j += 2
			continue
		case c == q && j+1 < len(sql) && sql[j+1] == q:
			j += 2
			continue
		case c == q:
			return j + 1, sql[i+1 : j]
		}
		j++
	}
	return len(sql), sql[i+1:]
}

// neverRunFirst are the first words of statements the oracle never sends.
var neverRunFirst = wordSet(`SHUTDOWN KILL GRANT REVOKE FLUSH LOCK INSTALL UNINSTALL LOAD RESET
	PURGE BINLOG XA HANDLER BACKUP CHANGE RESTART`)

// neverRun returns why the oracle must not send sql to the server at all, or "".
func neverRun(sql string) string {
	return neverRunTokens(sql, tokenize(sql), 0)
}

func neverRunTokens(sql string, toks []token, depth int) string {
	for _, t := range toks {
		if t.word("OUTFILE") || t.word("DUMPFILE") {
			return "writes a file (INTO " + strings.ToUpper(t.text) + ")"
		}
	}
	if len(toks) == 0 || toks[0].kind != tokWord {
		return ""
	}
	first := strings.ToUpper(toks[0].text)
	if neverRunFirst[first] {
		return first + " acts on the server"
	}
	switch first {
	case "START", "STOP":
		if len(toks) > 1 && (toks[1].word("SLAVE") || toks[1].word("REPLICA") || toks[1].word("ALL")) {
			return first + " " + strings.ToUpper(toks[1].text) + " acts on replication"
		}
	case "CREATE", "DROP", "ALTER", "RENAME":
		for _, t := range toks[1:min(len(toks), 6)] {
			if t.word("USER") || t.word("ROLE") || t.word("SERVER") {
				return first + " " + strings.ToUpper(t.text) + " changes accounts or servers"
			}
		}
	case "SET":
		if len(toks) > 1 && (toks[1].word("PASSWORD") || toks[1].word("ROLE") || toks[1].word("DEFAULT")) {
			return "SET " + strings.ToUpper(toks[1].text) + " acts beyond the session"
		}
		statement := len(toks) > 1 && toks[1].word("STATEMENT")
		for _, t := range toks[1:] {
			if statement && t.word("FOR") {
				// SET STATEMENT var=value[, ...] FOR statement: judge the statement.
				if depth >= 4 {
					return "SET STATEMENT nested too deep"
				}
				return neverRunTokens(sql[t.end:], tokenize(sql[t.end:]), depth+1)
			}
			if t.word("GLOBAL") || t.word("PERSIST") || t.word("PERSIST_ONLY") ||
				t.kind == tokVar && strings.EqualFold(t.text, "@@global") {
				return "SET " + strings.ToUpper(t.text) + " acts beyond the session"
			}
		}
	case "EXECUTE":
		if len(toks) > 2 && toks[1].word("IMMEDIATE") && toks[2].kind == tokString {
			if depth >= 4 {
				return "EXECUTE IMMEDIATE nested too deep"
			}
			return neverRunTokens(toks[2].text, tokenize(toks[2].text), depth+1)
		}
	}
	return ""
}

// setupObjects are the objects CREATE, ALTER and DROP may build.
var setupObjects = wordSet(`TABLE TABLES VIEW INDEX FUNCTION PROCEDURE TRIGGER SEQUENCE`)

// routineDenied are words that make a routine, trigger or view unsafe to create:
// whatever calls it later would run them. (Tables may have columns named so.)
var routineDenied = wordSet(`SHUTDOWN KILL GRANT REVOKE FLUSH INSTALL UNINSTALL PURGE RESET BINLOG
	GLOBAL PERSIST PASSWORD SLAVE REPLICA MASTER XA HANDLER LOAD LOCK BACKUP USER ROLE EVENT
	PREPARE EXECUTE`)

// sessionDenied are session variables setup must not change: the oracle's own
// limits, and settings that change how its transactions end.
var sessionDenied = wordSet(`AUTOCOMMIT MAX_STATEMENT_TIME LOCK_WAIT_TIMEOUT INNODB_LOCK_WAIT_TIMEOUT
	COMPLETION_TYPE WAIT_TIMEOUT INTERACTIVE_TIMEOUT NET_READ_TIMEOUT NET_WRITE_TIMEOUT DEBUG
	DEBUG_DBUG DEBUG_SYNC STATEMENT`)

// systemSchemas are the schemas of the scratch server that scripts must not touch
// ("test" is mysql-test's default database, which the oracle replaces with one
// database per script).
var systemSchemas = wordSet(`MYSQL INFORMATION_SCHEMA PERFORMANCE_SCHEMA SYS TEST`)

// setupAllowed reports whether the oracle runs sql, a statement the router keeps on
// the primary, to build the data of the script whose database is db; if not, why.
func setupAllowed(sql, db string) (ok bool, why string) {
	if r := neverRun(sql); r != "" {
		return false, r
	}
	toks := tokenize(sql)
	if len(toks) == 0 || toks[0].kind != tokWord {
		return false, "not a setup statement"
	}
	if s := otherSchema(toks, db); s != "" {
		return false, "names schema " + s
	}
	first := strings.ToUpper(toks[0].text)
	switch first {
	case "INSERT", "UPDATE", "DELETE", "REPLACE":
		return true, ""
	case "USE":
		if len(toks) == 2 && toks[1].name() && toks[1].text == db {
			return true, ""
		}
		return false, "USE of another database"
	case "SET":
		for _, t := range toks[1:] {
			name := strings.TrimPrefix(t.text, "@@")
			if (t.kind == tokWord || t.kind == tokVar && strings.HasPrefix(t.text, "@@")) &&
				sessionDenied[strings.ToUpper(name)] {
				return false, "SET " + name + " would change the oracle's own session rules"
			}
		}
		return true, ""
	case "CREATE", "ALTER", "DROP":
		obj := objectWord(toks)
		if !setupObjects[obj] || first == "ALTER" && (obj == "INDEX" || obj == "TRIGGER" || obj == "TABLES") {
			return false, first + " " + obj + " is not a setup statement"
		}
		for _, t := range toks {
			w := strings.ToUpper(t.text)
			switch {
			case t.kind != tokWord || first == "DROP":
			case w == "DIRECTORY" || w == "SONAME":
				// DATA/INDEX DIRECTORY puts files outside the datadir; SONAME loads a library.
				return false, first + " " + obj + " with " + w
			case routineDenied[w] && obj != "TABLE" && obj != "INDEX" && obj != "SEQUENCE":
				return false, first + " " + obj + " mentions " + w
			}
		}
		return true, ""
	}
	return false, first + " is not a setup statement"
}

// objectWord returns the object of CREATE, ALTER or DROP, upper case: the first word
// after the options that may come before it (OR REPLACE, DEFINER = user, SQL
// SECURITY x, ALGORITHM = x, TEMPORARY, UNIQUE, ONLINE, ...).
func objectWord(toks []token) string {
	i := 1
	for i < len(toks) {
		t := toks[i]
		switch {
		case t.word("OR") || t.word("TEMPORARY") || t.word("UNIQUE") || t.word("FULLTEXT") ||
			t.word("SPATIAL") || t.word("AGGREGATE") || t.word("ONLINE") || t.word("OFFLINE") ||
			t.word("IGNORE") || t.word("REPLACE") && i > 1 && toks[i-1].word("OR"):
			i++
		case t.word("SQL") && i+2 < len(toks) && toks[i+1].word("SECURITY"):
			i += 3
		case t.word("ALGORITHM") && i+2 < len(toks) && toks[i+1].text == "=":
			i += 3
		case t.word("DEFINER") && i+1 < len(toks) && toks[i+1].text == "=":
			i += 2
			for i < len(toks) && !isObjectStart(toks[i]) {
				i++
			}
		default:
			if t.kind == tokWord {
				return strings.ToUpper(t.text)
			}
			return ""
		}
	}
	return ""
}

// isObjectStart reports whether t ends a DEFINER clause.
func isObjectStart(t token) bool {
	return t.kind == tokWord && (setupObjects[strings.ToUpper(t.text)] || t.word("SQL") || t.word("ALGORITHM") ||
		t.word("AGGREGATE") || t.word("EVENT"))
}

// otherSchema returns the first schema other than db that toks qualify a name with
// (schema.name), or "".
func otherSchema(toks []token, db string) string {
	for i := 0; i+2 < len(toks); i++ {
		if !toks[i].name() || toks[i+1].text != "." || toks[i+1].kind != tokPunct {
			continue
		}
		if i > 0 && toks[i-1].kind == tokPunct && toks[i-1].text == "." {
			continue // the table of schema.table.column
		}
		s := toks[i].text
		if s != db && (systemSchemas[strings.ToUpper(s)] || strings.HasPrefix(strings.ToLower(s), dbPrefix)) {
			return s
		}
	}
	return ""
}
