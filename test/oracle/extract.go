package oracle

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Statement is one SQL statement of a script.
type Statement struct {
	SQL  string
	Line int // line of the statement's first character, from 1
}

// Extracted is what ExtractMysqltest found in one mysqltest file.
type Extracted struct {
	Statements []Statement
	// LeftOut counts SQL statements the extractor recognised but does not return:
	// those inside if/while blocks or between disable_parsing and enable_parsing,
	// the query of a send, and statements holding $variables.
	LeftOut int
}

// maxDelimiter is mysqltest's limit on a delimiter's length.
const maxDelimiter = 16

// mysqltestCommands are the words that start a mysqltest command rather than a query
// (the command table of MariaDB's mysqltest, lower case). A query whose first word is
// one of them is that command; a "--" line whose first word is not one is a comment.
var mysqltestCommands = wordSet(`
	connection query connect sleep real_sleep inc dec source disconnect let echo while
	end break system result require save_master_pos sync_with_master
	sync_slave_with_master error send reap dirty_close replace_result replace_column
	ping eval evalp eval_result enable_query_log disable_query_log enable_result_log
	disable_result_log enable_connect_log disable_connect_log wait_for_slave_to_stop
	enable_warnings disable_warnings enable_info disable_info enable_session_track_info
	disable_session_track_info enable_metadata disable_metadata enable_column_names
	disable_column_names exec delimiter disable_abort_on_error enable_abort_on_error
	vertical_results horizontal_results query_vertical query_horizontal sorted_result
	partially_sorted_result lowercase_result start_timer end_timer character_set
	disable_ps_protocol enable_ps_protocol disable_ps2_protocol enable_ps2_protocol
	disable_view_protocol enable_view_protocol disable_cursor_protocol
	enable_cursor_protocol disable_service_connection enable_service_connection
	enable_non_blocking_api disable_non_blocking_api disable_reconnect enable_reconnect
	if disable_parsing enable_parsing replace_regex remove_file file_exists write_file
	write_line copy_file perl die exit skip chmod append_file cat_file diff_files
	send_quit change_user mkdir rmdir list_files list_files_write_file
	list_files_append_file send_shutdown shutdown_server result_format move_file
	remove_files_wildcard copy_files_wildcard send_eval enable_prepare_warnings
	disable_prepare_warnings reset_connection optimizer_trace ps_prepare ps_bind
	ps_execute ps_close exec_in_background execw`)

func wordSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// ExtractMysqltest returns the SQL statements of a mysqltest script (a .test file of
// MariaDB's mysql-test suite) in the order mysqltest would send them, reading the
// file the way mysqltest's read_line does:
//
//   - A command ends at the current delimiter (";" until a delimiter command changes
//     it: "delimiter //;" or "--delimiter //"), outside '...', "..." and `...`
//     quotes; a backslash escapes the next character in '...' and "...".
//   - A command whose first character is '#' or '-' is one line: '#' lines and "--"
//     lines that do not name a command are comments, "--cmd args" is a command.
//   - "if (...)" and "while (...)" end at '{' and open a block that a '}' at the
//     start of a command closes. Blocks are skipped: whether they run depends on
//     variables.
//   - perl, write_file and append_file are followed by a text up to a terminator
//     ("EOF" unless given), which is skipped.
//   - A query whose first word is a mysqltest command (let, echo, connect, ...) is
//     that command, not SQL; query, query_vertical and query_horizontal carry
//     one, and character_set X becomes SET NAMES X.
//   - Under NO_BACKSLASH_ESCAPES a backslash escapes nothing, under ANSI_QUOTES
//     nothing in "...": mysqltest learns the session's sql_mode from the server,
//     the extractor from the SET statements it passes (see trackSQLMode). After
//     character_set sjis, cp932, gbk or big5, two-byte characters are read whole.
//
// Statements holding $variables are left out (mysqltest only expands them in
// eval, which is skipped too), as is everything after a top-level exit. An error
// means the file cannot be split reliably (an unterminated quote or text, an
// unbalanced block, a bad delimiter); callers should skip the whole file.
func ExtractMysqltest(src []byte) (Extracted, error) {
	x := extractor{scanner: scanner{src: src, line: 1, delim: ";"}}
	if err := x.run(); err != nil {
		return Extracted{}, fmt.Errorf("line %d: %w", x.line, err)
	}
	return x.out, nil
}

// extractor turns the scanner's commands into statements.
type extractor struct {
	scanner
	out         Extracted
	depth       int  // open if/while blocks
	disabled    bool // between disable_parsing and enable_parsing
	skipNext    bool // a bare send: the next query is its argument
	expectBrace bool // an if/while without '{': the block opens at the next '{'
}

var errBlockEnd = errors.New("'}' without an open block")

func (x *extractor) run() error {
	for {
		if x.expectBrace {
			x.expectBrace = false
			x.skipSpace()
			if x.pos < len(x.src) && x.src[x.pos] == '{' {
				x.pos++
			}
		}
		c, err := x.next()
		if err != nil {
			return err
		}
		switch c.kind {
		case cmdEOF:
			if x.depth > 0 {
				return fmt.Errorf("%d block(s) still open at the end of the file", x.depth)
			}
			return nil
		case cmdEmpty:
		case cmdBlockEnd:
			if x.disabled {
				continue
			}
			if x.depth == 0 {
				return errBlockEnd
			}
			x.depth--
		case cmdLine:
			if !strings.HasPrefix(c.text, "--") {
				continue // a '#' or single '-' comment
			}
			stop, err := x.command(strings.TrimSpace(c.text[2:]), c.line, true)
			if err != nil || stop {
				return err
			}
		case cmdQuery:
			stop, err := x.command(c.text, c.line, false)
			if err != nil || stop {
				return err
			}
		}
	}
}

// command handles one command: text is a query or what follows "--" on a line.
// It reports stop at a top-level exit.
func (x *extractor) command(text string, line int, dashed bool) (stop bool, err error) {
	word, rest := firstWord(text)
	if !mysqltestCommands[word] {
		if dashed {
			return false, nil // "-- some words": a comment
		}
		x.sql(text, line)
		return false, nil
	}
	if x.disabled {
		if word == "enable_parsing" {
			x.disabled = false
		}
		return false, nil
	}
	switch word {
	case "delimiter":
		d := strings.TrimSpace(rest)
		switch {
		case d == "":
			return false, errors.New("empty delimiter")
		case len(d) > maxDelimiter:
			return false, fmt.Errorf("delimiter %q is longer than %d bytes", d, maxDelimiter)
		}
		x.delim = d
	case "if", "while":
		x.depth++
		x.expectBrace = !strings.HasSuffix(strings.TrimSpace(text), "{")
	case "end":
		if x.depth > 0 {
			x.depth--
		}
	case "disable_parsing":
		x.disabled = true
	case "exit":
		return x.depth == 0, nil
	case "perl", "write_file", "append_file":
		// perl [terminator]; write_file|append_file file [terminator]
		args, i, term := commandArgs(rest), 1, "EOF"
		if word == "perl" {
			i = 0
		}
		if len(args) > i {
			term = args[i]
		}
		return false, x.skipText(term, dashed)
	case "send":
		if strings.TrimSpace(rest) == "" {
			x.skipNext = true
		} else {
			x.out.LeftOut++
		}
	case "query", "query_vertical", "query_horizontal":
		if q := strings.TrimSpace(rest); q != "" {
			x.sql(q, line)
		}
	case "character_set":
		cs := strings.ToLower(strings.TrimSpace(rest))
		x.mbLead = mbLeadFunc(cs)
		if x.depth == 0 && cs != "" {
			// mysqltest switches the connection's character set too.
			x.out.Statements = append(x.out.Statements, Statement{SQL: "SET NAMES " + cs, Line: line})
		}
	case "eval", "evalp", "send_eval":
		x.out.LeftOut++
	}
	return false, nil
}

// sql records a query, unless it is left out.
func (x *extractor) sql(text string, line int) {
	text = strings.TrimSpace(text)
	if text == "" {
		return
	}
	if x.disabled {
		return
	}
	if x.depth > 0 || x.skipNext || hasVariable(text) {
		x.skipNext = false
		x.out.LeftOut++
		return
	}
	x.out.Statements = append(x.out.Statements, Statement{SQL: text, Line: line})
	x.noBackslash, x.ansiQuotes = trackSQLMode(text, x.noBackslash, x.ansiQuotes)
}

// trackSQLMode returns the NO_BACKSLASH_ESCAPES and ANSI_QUOTES bits of the
// session's sql_mode after the statement sql, guessed from its text: SET
// [SESSION] sql_mode = 'modes' sets them, CONCAT(@@sql_mode, ...) adds to them,
// anything else assigned (DEFAULT, @saved) restores the default, where both are off.
func trackSQLMode(sql string, noBackslash, ansiQuotes bool) (bool, bool) {
	toks := tokenize(sql)
	if len(toks) < 3 || !toks[0].word("SET") || toks[1].word("STATEMENT") {
		return noBackslash, ansiQuotes
	}
	for i := 1; i+2 < len(toks); i++ {
		t := toks[i]
		if !t.word("SQL_MODE") && !(t.kind == tokVar && strings.EqualFold(t.text, "@@sql_mode")) {
			continue
		}
		if toks[i-1].word("GLOBAL") || toks[i-1].text == "." && strings.EqualFold(toks[i-2].text, "@@global") {
			return noBackslash, ansiQuotes
		}
		if eq := toks[i+1].text; eq != "=" && eq != ":" {
			continue
		}
		value := sql[toks[i+1].end:]
		if toks[i+1].text == ":" {
			value = strings.TrimPrefix(value, "=")
		}
		nb, aq := sqlModeWords(value)
		if strings.Contains(strings.ToLower(value), "@@") {
			return noBackslash || nb, ansiQuotes || aq // CONCAT(@@sql_mode, ',...')
		}
		return nb, aq
	}
	return noBackslash, ansiQuotes
}

// sqlModeWords reports which of the two modes a list of sql_mode names turns on,
// counting the combination modes that include ANSI_QUOTES.
func sqlModeWords(value string) (noBackslash, ansiQuotes bool) {
	for _, w := range strings.FieldsFunc(strings.ToUpper(value), func(r rune) bool {
		return !(r == '_' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		switch w {
		case "NO_BACKSLASH_ESCAPES":
			noBackslash = true
		case "ANSI_QUOTES", "ANSI", "ORACLE", "MSSQL", "DB2", "POSTGRESQL", "MAXDB":
			ansiQuotes = true
		}
	}
	return noBackslash, ansiQuotes
}

// skipText skips the text that follows perl, write_file or append_file, up to and
// including term. The text starts on the line after the command; mysqltest stops
// at the first occurrence of term, wherever it is.
func (x *extractor) skipText(term string, dashed bool) error {
	if !dashed {
		x.skipLine() // the rest of the command's own line
	}
	i := bytes.Index(x.src[x.pos:], []byte(term))
	if i < 0 {
		return fmt.Errorf("no %q ends the text that starts here", term)
	}
	end := x.pos + i + len(term)
	x.line += bytes.Count(x.src[x.pos:end], []byte{'\n'})
	x.pos = end
	return nil
}

// commandArgs splits the arguments of a mysqltest command at white space outside
// "..." and '...'.
func commandArgs(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune
	in := false
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// firstWord returns the lower-cased leading word of text ([A-Za-z0-9_]) and what
// follows it.
func firstWord(text string) (word, rest string) {
	i := 0
	for i < len(text) && isWordByte(text[i]) {
		i++
	}
	return strings.ToLower(text[:i]), text[i:]
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// hasVariable reports whether sql holds a mysqltest variable ($name) outside quotes.
func hasVariable(sql string) bool {
	var quote byte
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case quote != 0:
			if c == '\\' && quote != '`' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '$' && i+1 < len(sql) && (isWordByte(sql[i+1]) || sql[i+1] == '{') &&
			(i == 0 || !isWordByte(sql[i-1])):
			return true
		}
	}
	return false
}

// ExtractSQLScript returns the statements of a script for the mariadb command-line
// client, such as test/testdata/workload.sql: statements end with the delimiter
// outside quotes, "delimiter X" on a line of its own changes it, and lines that
// start with "--" or '#' between statements are comments.
func ExtractSQLScript(src []byte) ([]Statement, error) {
	s := scanner{src: src, line: 1, delim: ";", cli: true}
	var out []Statement
	for {
		c, err := s.next()
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", s.line, err)
		}
		switch c.kind {
		case cmdEOF:
			return out, nil
		case cmdQuery:
			if w, rest := firstWord(c.text); w == "delimiter" {
				if s.delim = strings.TrimSpace(rest); s.delim == "" {
					return nil, fmt.Errorf("line %d: empty delimiter", c.line)
				}
				continue
			}
			if text := strings.TrimSpace(c.text); text != "" {
				out = append(out, Statement{SQL: text, Line: c.line})
			}
		}
	}
}
