package router

// slowpath.go: statements the scanner cannot decide go to the TiDB parser,
// which knows the MySQL grammar (not all of MariaDB's: sequences, RETURNING,
// SELECT ... INTO @var fail to parse and become KindWrite + FlagUnsure; the
// fast path handles those forms).

import (
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // value expressions for the parser
)

// maxParse bounds the statements given to the parser; longer ones that the
// fast path cannot decide are KindWrite + FlagUnsure. So is nesting deeper
// than maxParseDepth, which the parser's recursive AST walk would follow.
const (
	maxParse      = 256 << 10
	maxParseDepth = 200
)

// A Parser is not safe for concurrent use: each call takes one from the pool.
var parsers = sync.Pool{New: func() any {
	p := parser.New()
	p.SetMariaDB(true)
	return p
}}

// slowStatement classifies one statement (no top-level ';') with the parser.
func slowStatement(text string, mode Mode, depth int) (c Class) {
	if len(text) > maxParse || depth > maxDepth {
		return unsure
	}
	ptext, trusted := parserText(text, mode)
	if !trusted {
		return unsure
	}
	p := parsers.Get().(*parser.Parser)
	ok := false
	defer func() {
		// The parser is third-party code fed untrusted text: a panic in it
		// must not take the proxy's session down. A parser that panicked is
		// not reused.
		if recover() != nil || !ok {
			c = unsure
			return
		}
		parsers.Put(p)
	}()
	sqlMode, _ := mysql.GetSQLMode(mysql.DefaultSQLMode)
	if mode&ModeNoBackslashEscapes != 0 {
		sqlMode |= mysql.ModeNoBackslashEscapes
	}
	if mode&ModeANSIQuotes != 0 {
		sqlMode |= mysql.ModeANSIQuotes
	}
	p.SetSQLMode(sqlMode)
	stmts, _, err := p.ParseSQL(ptext)
	ok = true
	if err != nil || len(stmts) != 1 {
		return unsure
	}
	return classifyNode(stmts[0], mode, depth)
}

// parserEdits are what parserText changes in a statement's text.
type parserEdits struct {
	blank []int // [start, end) pairs: comments and executable comment markers
	mb    []int // [start, end) pairs: multi-byte characters of the client charset
}

// parserText returns the text the parser should read for the statement
// text, so that it sees the tokens the lexer saw: every comment and the
// markers of executable comments are blanked (the parser ignores /*M!, reads
// only five version digits, and does not nest comments as MariaDB does), and
// the multi-byte characters of a client charset such as gbk are replaced by
// UTF-8 characters of the same length, whose bytes are all 0x80 and up.
//
// ok is false when the text must not be trusted to the parser: it nests
// parentheses deeper than the parser should be asked to walk, or it calls a
// function in a way the parser's tree does not show (see suspectCall).
func parserText(text string, mode Mode) (string, bool) {
	var edits parserEdits
	var lx lexer
	lx.init(text, mode)
	lx.edits = &edits
	var p1 token
	for {
		t := lx.next()
		if t.kind == tokEOF {
			break
		}
		if lx.maxDepth > maxParseDepth {
			return "", false
		}
		isName := t.kind == tokWord || t.kind == tokQuoted
		if isName && !p1.is(".") && lx.peek().is("(") && suspectCall(t, lx.peek(), mode) {
			return "", false
		}
		p1 = t
	}
	if len(edits.blank) == 0 && len(edits.mb) == 0 {
		return text, true
	}
	buf := []byte(text)
	for i := 0; i+1 < len(edits.blank); i += 2 {
		for j := edits.blank[i]; j < edits.blank[i+1]; j++ {
			buf[j] = ' '
		}
	}
	for i := 0; i+1 < len(edits.mb); i += 2 {
		if edits.mb[i+1]-edits.mb[i] == 4 {
			copy(buf[edits.mb[i]:], "\U00010000")
		} else {
			copy(buf[edits.mb[i]:], "\u00e9")
		}
	}
	return string(buf), true
}

// classifyNode classifies a parsed statement.
func classifyNode(n ast.StmtNode, mode Mode, depth int) Class {
	switch s := n.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.DoStmt:
		return readNode(s)
	case *ast.ShowStmt:
		flags := showFlags(s)
		if s.Where != nil {
			// SHOW ... WHERE evaluates expressions, stored functions too.
			var v visitor
			s.Where.Accept(&v)
			if v.unknown || v.write {
				return Class{Kind: KindWrite, Flags: flags | v.flags | FlagUnsure}
			}
			flags |= v.flags
		}
		return Class{Kind: KindRead, Flags: flags}
	case *ast.ExplainStmt:
		if _, ok := s.Stmt.(*ast.ShowStmt); ok {
			return Class{Kind: KindRead} // DESCRIBE table
		}
		if s.Stmt == nil || depth >= maxDepth {
			return unsure
		}
		return classifyNode(s.Stmt, mode, depth+1)
	case *ast.SetStmt:
		return setNode(s)
	case *ast.KillStmt:
		// The fast path decides every KILL; this one, given no Name, is
		// never served (see KindKill).
		c := Class{Kind: KindKill}
		if s.Query {
			c.Flags |= FlagKillQuery
		}
		return c
	case *ast.SetPwdStmt, *ast.SetDefaultRoleStmt:
		return Class{Kind: KindWrite, Flags: FlagImplicitCommit}
	case *ast.SetRoleStmt:
		return Class{Kind: KindSet, Flags: FlagSessionVar}
	case *ast.BeginStmt:
		c := Class{Kind: KindBegin, Flags: FlagImplicitCommit}
		if s.ReadOnly {
			c.Flags |= FlagTxReadOnly
		}
		return c
	case *ast.CommitStmt:
		return Class{Kind: KindCommit, Flags: completionFlags(s.CompletionType)}
	case *ast.RollbackStmt:
		if s.SavepointName != "" {
			return Class{Kind: KindRollbackToSavepoint, Name: s.SavepointName}
		}
		return Class{Kind: KindRollback, Flags: completionFlags(s.CompletionType)}
	case *ast.SavepointStmt:
		return Class{Kind: KindSavepoint, Name: s.Name}
	case *ast.ReleaseSavepointStmt:
		return Class{Kind: KindReleaseSavepoint, Name: s.Name}
	case *ast.UseStmt:
		return Class{Kind: KindUse, Name: s.DBName}
	case *ast.PrepareStmt:
		c := Class{Kind: KindPrepare, Name: s.Name, InnerKind: KindWrite, InnerFlags: FlagUnsure}
		if s.SQLVar == nil {
			inner := classify(s.SQLText, mode, depth+1)
			c.InnerKind, c.InnerFlags = inner.Kind, inner.Flags&^FlagFastPath
		} else {
			c.Flags |= FlagUserVarRead
		}
		return c
	case *ast.ExecuteStmt:
		c := Class{Kind: KindExecute, Name: s.Name}
		if len(s.UsingVars) > 0 {
			c.Flags |= FlagUserVarRead
		}
		return c
	case *ast.DeallocateStmt:
		return Class{Kind: KindDeallocate, Name: s.Name}
	case *ast.LockTablesStmt:
		return Class{Kind: KindLockTables, Flags: FlagImplicitCommit}
	case *ast.UnlockTablesStmt:
		return Class{Kind: KindUnlockTables, Flags: FlagImplicitCommit}
	case *ast.FlushStmt:
		if s.ReadLock {
			return Class{Kind: KindLockTables, Flags: FlagImplicitCommit}
		}
		return Class{Kind: KindWrite, Flags: FlagImplicitCommit}
	case *ast.CreateTableStmt:
		if s.TemporaryKeyword != ast.TemporaryNone {
			return Class{Kind: KindWrite, Flags: FlagTempTableCreate}
		}
		return Class{Kind: KindWrite, Flags: FlagImplicitCommit}
	case *ast.DropTableStmt:
		if s.TemporaryKeyword != ast.TemporaryNone {
			return Class{Kind: KindWrite, Flags: FlagTempTableDrop}
		}
		return Class{Kind: KindWrite, Flags: FlagImplicitCommit}
	case *ast.HelpStmt:
		return Class{Kind: KindRead}
	case ast.DDLNode:
		return Class{Kind: KindWrite, Flags: FlagImplicitCommit}
	case *ast.InsertStmt, *ast.UpdateStmt, *ast.DeleteStmt, *ast.LoadDataStmt, *ast.CallStmt:
		return writeNode(s)
	}
	// A statement the parser knows and this classifier does not: TiDB
	// extensions, mostly. It goes to the primary, counted.
	return unsure
}

func completionFlags(t ast.CompletionType) Flags {
	switch t {
	case ast.CompletionTypeChain:
		return FlagChain
	case ast.CompletionTypeRelease:
		return FlagRelease
	}
	return 0
}

// grammarFunctions are the names the parser gives grammar constructs that
// are built-ins on the server: CHAR(x USING cs), INSERT(s, p, l, t), DATE
// 'literal' and the like, and x MEMBER OF (y) (MySQL only; MariaDB rejects
// it). A statement that calls one of them by name never gets this far
// (suspectCall).
var grammarFunctions = map[string]bool{
	ast.CharFunc: true, ast.InsertFunc: true, ast.DateLiteral: true, ast.TimeLiteral: true,
	ast.TimestampLiteral: true, ast.JSONMemberOf: true,
}

// readNode classifies a query by walking it.
func readNode(n ast.Node) Class {
	var v visitor
	n.Accept(&v)
	if v.unknown {
		return Class{Kind: KindWrite, Flags: v.flags | FlagUnsure}
	}
	if v.write {
		return Class{Kind: KindWrite, Flags: v.flags}
	}
	return Class{Kind: KindRead, Flags: v.flags}
}

// writeNode classifies DML by walking it for session facts.
func writeNode(n ast.Node) Class {
	var v visitor
	n.Accept(&v)
	return Class{Kind: KindWrite, Flags: v.flags}
}

// visitor collects the same facts as the fast path's scan.
type visitor struct {
	flags   Flags
	write   bool
	unknown bool
}

func (v *visitor) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.SelectStmt:
		if x.LockInfo != nil && x.LockInfo.LockType != ast.SelectLockNone {
			v.flags |= FlagLocking
			v.write = true
		}
		if x.SelectIntoOpt != nil {
			v.flags |= FlagInto
			v.write = true
		}
		if x.SelectStmtOpts != nil && x.SelectStmtOpts.CalcFoundRows {
			v.flags |= FlagCalcFoundRows
		}
	case *ast.SetOprStmt:
		// Locking and INTO on a set operation are on its members.
	case *ast.FuncCallExpr:
		if x.Schema.L != "" {
			v.unknown = true
			break
		}
		fi, ok := lookupFunc(x.FnName.L)
		switch {
		case !ok && grammarFunctions[x.FnName.L]:
			// A grammar construct; parserText made sure that the text
			// does not call the name.
		case !ok, !fi.args.fits(len(x.Args)):
			v.unknown = true
		case fi.lastInsertID:
			if len(x.Args) == 0 {
				v.flags |= FlagLastInsertID
			} else {
				v.flags |= FlagSideEffect
				v.write = true
			}
		default:
			v.flags |= fi.flags
			v.write = v.write || fi.write
		}
	case *ast.DefaultExpr:
		// DEFAULT(col) evaluates the column's default, which may take the
		// next value of a sequence.
		v.unknown = true
	case *ast.AggregateFuncExpr:
		// The parser knows aggregates the server does not
		// (APPROX_COUNT_DISTINCT): those are stored function calls there.
		if _, ok := lookupFunc(x.F); !ok {
			v.unknown = true
		}
	case *ast.WindowFuncExpr:
		if _, ok := lookupFunc(x.Name); !ok {
			v.unknown = true
		}
	case *ast.ColumnNameExpr:
		if x.Name != nil && x.Name.Table.L != "" {
			f := sequenceColumn(token{kind: tokWord, text: x.Name.Name.O})
			v.flags |= f
			v.write = v.write || f&FlagSideEffect != 0
		}
	case *ast.VariableExpr:
		switch {
		case x.IsSystem:
			v.flags |= sysVarFlags(x.Name)
		case x.Value != nil:
			v.flags |= FlagUserVarWrite
		default:
			v.flags |= FlagUserVarRead
		}
	}
	return n, false
}

func (v *visitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// showFlags mirrors the fast path's SHOW rules.
func showFlags(s *ast.ShowStmt) Flags {
	switch s.Tp {
	case ast.ShowWarnings, ast.ShowErrors, ast.ShowProfile, ast.ShowProfiles:
		return FlagNeedsPrevious
	case ast.ShowProcessList, ast.ShowStatus, ast.ShowMasterStatus, ast.ShowBinlogStatus,
		ast.ShowReplicaStatus, ast.ShowOpenTables:
		return FlagServerLocal
	case ast.ShowVariables:
		if s.GlobalScope {
			return FlagServerLocal
		}
	}
	return 0
}

// setNode classifies a parsed SET. The parser loses some distinctions the
// fast path keeps (SET TRANSACTION vs SET SESSION TRANSACTION), so only odd
// forms that the fast path gave up on come here.
func setNode(s *ast.SetStmt) Class {
	var flags Flags
	write := false
	for _, a := range s.Variables {
		var v visitor
		if a.Value != nil {
			a.Value.Accept(&v)
		}
		flags |= v.flags
		if v.unknown {
			flags |= FlagUnsure
			write = true
		}
		write = write || v.write
		switch {
		case !a.IsSystem && a.Name != ast.SetNames && a.Name != ast.SetCharset:
			flags |= FlagUserVarWrite
		case a.IsGlobal:
			flags |= FlagGlobalSet
			write = true
		case eqFold(a.Name, "AUTOCOMMIT"):
			flags |= FlagUnsure // the fast path reads every literal value
		default:
			flags |= FlagSessionVar
		}
	}
	if write {
		return Class{Kind: KindWrite, Flags: flags}
	}
	return Class{Kind: KindSet, Flags: flags}
}
