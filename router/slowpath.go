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
	if len(text) > maxParse || depth > maxDepth || nestingTooDeep(text, mode) {
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
	stmts, _, err := p.ParseSQL(openExecComments(text, mode))
	ok = true
	if err != nil || len(stmts) != 1 {
		return unsure
	}
	return classifyNode(stmts[0], mode, depth)
}

// nestingTooDeep reports whether text nests parentheses deeper than the
// parser should be asked to walk.
func nestingTooDeep(text string, mode Mode) bool {
	var lx lexer
	lx.init(text, mode)
	for lx.next().kind != tokEOF {
		if lx.maxDepth > maxParseDepth {
			return true
		}
	}
	return false
}

// openExecComments blanks the markers of executable comments (/*!NNNNN,
// /*M!NNNNNN and their closing */) so that the parser reads their content as
// MariaDB does: the parser ignores /*M! and reads only five version digits.
func openExecComments(text string, mode Mode) string {
	var marks []int
	var lx lexer
	lx.init(text, mode)
	lx.marks = &marks
	for lx.next().kind != tokEOF {
	}
	if len(marks) == 0 {
		return text
	}
	buf := []byte(text)
	for i := 0; i+1 < len(marks); i += 2 {
		for j := marks[i]; j < marks[i+1]; j++ {
			buf[j] = ' '
		}
	}
	return string(buf)
}

// classifyNode classifies a parsed statement.
func classifyNode(n ast.StmtNode, mode Mode, depth int) Class {
	switch s := n.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.DoStmt:
		return readNode(s)
	case *ast.ShowStmt:
		return Class{Kind: KindRead, Flags: showFlags(s)}
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
		case !ok:
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
