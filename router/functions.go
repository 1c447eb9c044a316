package router

import (
	"slices"
	"strings"
)

// functions.go: what the classifier knows about names followed by '(' and
// about system variables.
//
// A call to a function that is not a known built-in may be a stored function
// or a UDF, which can write; such a read is not decided on the fast path, and
// if the parser confirms the call it becomes KindWrite with FlagUnsure. So a
// name may be listed here only if MariaDB 10.11 resolves it to a built-in:
// test/builtins_test.go creates a stored function of every listed name and
// checks that the server does not call it where the classifier believes in
// the built-in. Names that are built-ins only on MySQL are unknown here, which
// sends their calls to the primary.
//
// How MariaDB resolves a name before '(' (sql_lex.cc, sql_yacc.yy, and the
// MySQL manual's "Function Name Parsing and Resolution",
// https://dev.mysql.com/doc/refman/8.0/en/function-resolution.html):
//   - Most built-ins are "native": the name means the built-in whatever
//     follows it, and a stored function of that name is called only when
//     qualified (db.name()).
//   - Some are grammar keywords (COUNT, SUM, NOW, SUBSTRING, TRIM, window
//     functions...) that are keywords only when '(' follows the name at
//     once: "count (x)" and "count/**/(x)" call a stored function named
//     count (funcInfo.adjacent). With sql_mode IGNORE_SPACE they are
//     built-ins again; taking them for stored functions is the safe error.
//   - The geometry constructors are grammar rules of fixed shapes: POINT(x, y)
//     with two arguments, LINESTRING(...) and the other collections with at
//     least one. Any other call, point() or point(1), calls a stored function
//     (funcInfo.args).
//
// Choices made here:
//   - SLEEP and BENCHMARK are writes with FlagSideEffect: a session can use
//     them as a delay or a lock of sorts, and a read-only transaction on a
//     replica would not stop them.
//   - UUID_SHORT is FlagServerLocal: its value is built from the server id
//     and a per-server counter, so callers expecting one server's sequence
//     must stay on the primary. UUID() and RAND() are plain reads.
//   - IS_FREE_LOCK and IS_USED_LOCK are FlagServerLocal: named locks live on
//     the primary, a replica would always say "free".
//   - The replication wait functions (MASTER_GTID_WAIT, MASTER_POS_WAIT) are
//     writes with FlagServerLocal: they observe the position of the server
//     that runs them, and the proxy sends them to the primary.
//   - LOAD_FILE reads a file of the server that runs it: FlagServerLocal.

type funcInfo struct {
	flags Flags
	// write makes the statement a KindWrite.
	write bool
	// lastInsertID marks LAST_INSERT_ID: with no argument it reads the
	// session's last generated id, with one it sets it (a side effect).
	lastInsertID bool
	// adjacent: the name is the built-in only when '(' follows it at once.
	adjacent bool
	// args: the argument counts for which the name is the built-in.
	args argCount
	// keyword: a keyword or type name that may stand before '(' without
	// being a call (notFunctions); not a built-in function.
	keyword bool
	// notOnMySQL: a built-in of MariaDB only (mariaDBOnly), a stored
	// function call on MySQL.
	notOnMySQL bool
}

type argCount uint8

const (
	argsAny  argCount = iota
	argsSome          // at least one
	argsTwo           // exactly two
)

// fits reports whether a call with n arguments is the built-in.
func (a argCount) fits(n int) bool {
	switch a {
	case argsSome:
		return n > 0
	case argsTwo:
		return n == 2
	}
	return true
}

// pureFunctions are built-in functions of MariaDB 10.11 without side effects,
// aggregate and window functions included.
const pureFunctions = `
abs acos add_months adddate addtime aes_decrypt aes_encrypt area asbinary ascii asin astext aswkb aswkt
atan atan2 avg bin bit_and bit_count bit_length bit_or bit_xor boundary buffer cast ceil ceiling centroid
char char_length character_length charset chr coalesce coercibility collation compress concat concat_ws
contains conv convert convert_tz convexhull cos cot count crc32 crc32c crosses cume_dist curdate
current_date current_role current_time current_timestamp current_user curtime database date date_add
date_format date_sub datediff day dayname dayofmonth dayofweek dayofyear decode decode_histogram
degrees dense_rank des_decrypt des_encrypt dimension disjoint elt encode encrypt endpoint envelope equals
exp export_set exteriorring extract extractvalue field find_in_set first_value floor format from_base64
from_days from_unixtime geomcollfromtext geomcollfromwkb geometrycollectionfromtext
geometrycollectionfromwkb geometryfromtext geometryfromwkb geometryn geometrytype geomfromtext geomfromwkb
get_format glength greatest group_concat hex hour if ifnull inet6_aton inet6_ntoa inet_aton inet_ntoa
insert instr interiorringn intersects interval is_ipv4 is_ipv4_compat is_ipv4_mapped is_ipv6 isclosed
isempty isnull isring issimple lag last_day last_value lcase lead least left length lengthb linefromtext
linefromwkb ln localtime localtimestamp locate log log10 log2 lower lpad ltrim make_set makedate maketime
max md5 median microsecond mid min minute mlinefromtext mlinefromwkb mod month monthname mpointfromtext
mpointfromwkb mpolyfromtext mpolyfromwkb multilinestringfromtext multilinestringfromwkb multipointfromtext
multipointfromwkb multipolygonfromtext multipolygonfromwkb name_const natural_sort_key now nth_value ntile
nullif numgeometries numinteriorrings numpoints nvl nvl2 oct octet_length old_password ord overlaps
password percent_rank percentile_cont percentile_disc period_add period_diff pi pointfromtext pointfromwkb
pointn pointonsurface polyfromtext polyfromwkb polygonfromtext polygonfromwkb position pow power quarter
quote radians rand random_bytes rank repeat replace reverse right round row_number rpad rtrim schema
sec_to_time second session_user sformat sha sha1 sha2 sign sin soundex space sqrt srid std stddev
stddev_pop stddev_samp str_to_date strcmp subdate substr substring substring_index subtime sum sys_guid
sysdate system_user tan time time_format time_to_sec timediff timestamp timestampadd timestampdiff
to_base64 to_char to_days to_seconds touches trim trim_oracle truncate ucase uncompress uncompressed_length
unhex unix_timestamp updatexml upper user utc_date utc_time utc_timestamp uuid var_pop var_samp variance
version week weekday weekofyear weight_string within x y year yearweek

json_array json_array_append json_array_insert json_arrayagg json_compact json_contains json_contains_path
json_detailed json_equals json_exists json_extract json_insert json_keys json_length json_loose json_merge
json_merge_patch json_merge_preserve json_normalize json_object json_objectagg json_overlaps json_pretty
json_query json_quote json_remove json_replace json_search json_set json_type json_unquote json_valid
json_value

mbrcontains mbrdisjoint mbrequal mbrequals mbrintersects mbroverlaps mbrtouches mbrwithin st_area
st_asbinary st_asgeojson st_astext st_aswkb st_aswkt st_boundary st_buffer st_centroid st_contains
st_convexhull st_crosses st_difference st_dimension st_disjoint st_distance st_distance_sphere st_endpoint
st_envelope st_equals st_exteriorring st_geomcollfromtext st_geomcollfromwkb st_geometrycollectionfromtext
st_geometrycollectionfromwkb st_geometryfromtext st_geometryfromwkb st_geometryn st_geometrytype
st_geomfromgeojson st_geomfromtext st_geomfromwkb st_interiorringn st_intersection st_intersects
st_isclosed st_isempty st_isring st_issimple st_length st_linefromtext st_linefromwkb st_linestringfromtext
st_linestringfromwkb st_mlinefromtext st_mlinefromwkb st_mpointfromtext st_mpointfromwkb st_mpolyfromtext
st_mpolyfromwkb st_multilinestringfromtext st_multilinestringfromwkb st_multipointfromtext
st_multipointfromwkb st_multipolygonfromtext st_multipolygonfromwkb st_numgeometries st_numinteriorrings
st_numpoints st_overlaps st_pointfromtext st_pointfromwkb st_pointn st_pointonsurface st_polyfromtext
st_polyfromwkb st_polygonfromtext st_polygonfromwkb st_relate st_srid st_startpoint st_symdifference
st_touches st_union st_within st_x st_y

column_add column_check column_create column_delete column_exists column_get column_json column_list
regexp_instr regexp_replace regexp_substr
`

// adjacentFunctions are the built-ins of pureFunctions that are keywords
// only when '(' follows the name at once.
const adjacentFunctions = `
adddate bit_and bit_or bit_xor cast count cume_dist curdate curtime date_add date_sub dense_rank extract
first_value group_concat json_arrayagg json_objectagg lag lead max median mid min now nth_value ntile
percent_rank percentile_cont percentile_disc position rank session_user std stddev stddev_pop stddev_samp
subdate substr substring sum system_user trim trim_oracle var_pop var_samp variance
`

// notFunctions are keywords and type names that may stand before '(' in a
// query without being a function call, and that a stored function cannot
// take over there. AGAINST, COLUMNS, OF and JSON_TABLE are keywords only in
// some places (contextKeyword); elsewhere "against(1)" calls a stored
// function, and so do array(), escape(), lateral(), member(), nested() and
// path() everywhere on MariaDB.
const notFunctions = `
all and any as between bigint binary blob bool boolean by case char character cross dec decimal distinct
distinctrow double each else except exists fixed float for from group having in index inner int integer
intersect is join key left like limit match mediumint natural nchar not numeric offset on or order outer
over partition precision real recursive regexp rlike row rows select set signed smallint some
straight_join then tinyint union unsigned using value values varbinary varchar varcharacter when where
window with xor year datetime div bit json
`

// parserInternalNames are names the TiDB parser or planner gives constructs
// internally (CHAR(x USING cs) is char_func in the parser's tree, INSERT(s,
// p, l, t) insert_func, x MEMBER OF (y) json_memberof; the planner has
// firstrow, istrue, getvar...). No server has functions of these names, so
// a statement whose text calls one calls a stored function, even where the
// parser's tree looks like a built-in (suspectCall). grammarFunctions in
// slowpath.go lists the ones the tree may hold.
var parserInternalNames = map[string]bool{
	"char_func": true, "insert_func": true, "dateliteral": true, "timeliteral": true,
	"timestampliteral": true, "json_memberof": true, "default_func": true, "firstrow": true,
	"istrue": true, "isfalse": true, "istrue_with_null": true, "getvar": true, "setvar": true,
	"getparam": true,
}

var funcs = func() map[string]funcInfo {
	m := make(map[string]funcInfo, 600)
	for _, name := range strings.Fields(pureFunctions) {
		m[name] = funcInfo{}
	}
	for _, name := range strings.Fields(adjacentFunctions) {
		fi, ok := m[name]
		if !ok {
			panic("router: adjacent function " + name + " is not in pureFunctions")
		}
		fi.adjacent = true
		m[name] = fi
	}
	for _, name := range strings.Fields("linestring polygon multipoint multilinestring multipolygon geometrycollection") {
		m[name] = funcInfo{args: argsSome}
	}
	m["point"] = funcInfo{args: argsTwo}
	for _, name := range strings.Fields(notFunctions) {
		if _, ok := m[name]; !ok {
			m[name] = funcInfo{keyword: true}
		}
	}
	writes := func(f Flags, names ...string) {
		for _, n := range names {
			m[n] = funcInfo{flags: f, write: true}
		}
	}
	writes(FlagSideEffect|FlagLockFunc, "get_lock")
	writes(FlagSideEffect|FlagReleaseLockFunc, "release_lock")
	writes(FlagSideEffect|FlagReleaseLockFunc|FlagReleaseAllLocks, "release_all_locks")
	writes(FlagSideEffect, "nextval", "setval", "sleep", "benchmark")
	writes(FlagServerLocal, "master_gtid_wait", "master_pos_wait")
	for _, n := range []string{"connection_id", "uuid_short", "is_free_lock", "is_used_lock",
		"load_file", "binlog_gtid_pos"} {
		m[n] = funcInfo{flags: FlagServerLocal}
	}
	m["found_rows"] = funcInfo{flags: FlagNeedsPrevious}
	m["row_count"] = funcInfo{flags: FlagNeedsPrevious}
	m["lastval"] = funcInfo{flags: FlagLastInsertID}
	m["last_insert_id"] = funcInfo{lastInsertID: true}
	for _, n := range mariaDBOnly {
		fi, ok := m[n]
		if !ok {
			panic("router: mariaDBOnly lists " + n + ", which is no built-in here")
		}
		fi.notOnMySQL = true
		m[n] = fi
	}
	return m
}()

// BuiltinFunctions returns the names, in lower case and sorted, of the
// functions the classifier takes for built-ins of the server (MariaDB 10.11):
// a call of any other name may be a stored function and goes to the primary.
// Some are built-ins only when '(' follows the name at once, or for some
// argument counts (POINT takes two); other calls of them are unknown to the
// classifier too. Keywords that may stand before '(' (IN, VALUES, CHAR as a
// type...) are not listed.
func BuiltinFunctions() []string {
	names := make([]string, 0, len(funcs))
	for name, fi := range funcs {
		if !fi.keyword {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// lookupFunc reports what calling name does; ok is false for a name that is
// not a known built-in or keyword. The caller checks adjacent and args. It
// does not allocate.
func lookupFunc(name string) (funcInfo, bool) {
	var buf [48]byte
	low, fits := lowerInto(buf[:], name)
	if !fits {
		return funcInfo{}, false
	}
	fi, ok := funcs[string(low)]
	return fi, ok
}

// contextKeyword reports whether the word t, followed by '(', is a keyword
// given the token p1 before it: MATCH (...) AGAINST (...), JSON_TABLE(... path
// COLUMNS (...)), FOR SYSTEM_TIME AS OF (...), FROM JSON_TABLE(...). Anywhere
// else these names before '(' call stored functions.
func contextKeyword(t, p1 token) bool {
	switch {
	case t.kw("AGAINST"):
		return p1.is(")")
	case t.kw("COLUMNS"):
		return p1.kind == tokString
	case t.kw("OF"):
		return p1.kw("AS")
	case t.kw("JSON_TABLE"):
		return p1.kw("FROM") || p1.kw("JOIN")
	}
	return false
}

// suspectCall reports whether the name t, followed by the token paren ('('),
// calls something the parser's tree would hide: one of parserInternalNames;
// a name that is a built-in only when '(' follows at once, written with a
// space or comment before the '(' (the parser does not keep whitespace); or
// a quoted built-in name (`count`(x) is no keyword to the server).
func suspectCall(t, paren token, mode Mode) bool {
	name := t.text
	if t.kind == tokQuoted {
		name = unquote(t, mode)
	}
	var buf [48]byte
	low, fits := lowerInto(buf[:], name)
	if !fits {
		return false
	}
	if parserInternalNames[string(low)] {
		return true
	}
	fi, ok := funcs[string(low)]
	if !ok {
		return false
	}
	if mode&ModeMySQL != 0 && fi.notOnMySQL {
		return true
	}
	if t.kind == tokQuoted {
		return !fi.keyword
	}
	return fi.adjacent && paren.pos != t.pos+len(t.text)
}

// sysVars are the system variables whose value depends on the previous
// statement, the session's writes or the server that answers.
var sysVars = func() map[string]Flags {
	m := map[string]Flags{
		"warning_count":  FlagNeedsPrevious,
		"error_count":    FlagNeedsPrevious,
		"identity":       FlagLastInsertID,
		"last_insert_id": FlagLastInsertID,
		"insert_id":      FlagLastInsertID,
	}
	for _, n := range strings.Fields(`server_id server_uuid hostname read_only super_read_only
		innodb_read_only gtid_binlog_pos gtid_binlog_state gtid_current_pos gtid_slave_pos gtid_executed
		gtid_purged gtid_domain_id pseudo_thread_id log_bin`) {
		m[n] = FlagServerLocal
	}
	return m
}()

// sysVarFlags returns the flags for reading the system variable token t
// (@@name, @@global.name, @@session.name, @@local.name).
func sysVarFlags(text string) Flags {
	name := sysVarName(text)
	var buf [48]byte
	low, fits := lowerInto(buf[:], name)
	if !fits {
		return 0
	}
	return sysVars[string(low)]
}

// sysVarName strips the @@ and the scope from a system variable token.
func sysVarName(text string) string {
	name, _ := sysVarScope(text)
	return name
}

// sysVarScope splits a system variable token into its name and whether its
// scope is GLOBAL.
func sysVarScope(text string) (name string, global bool) {
	name = strings.TrimPrefix(text, "@@")
	if i := strings.IndexByte(name, '.'); i > 0 {
		switch scope := name[:i]; {
		case eqFold(scope, "GLOBAL"):
			name, global = name[i+1:], true
		case eqFold(scope, "SESSION"), eqFold(scope, "LOCAL"):
			name = name[i+1:]
		}
	}
	if len(name) >= 2 && name[0] == '`' && name[len(name)-1] == '`' {
		name = name[1 : len(name)-1]
	}
	return name, global
}

// mariaDBOnly are the names in funcs that are no built-in on MySQL 9.7: a
// call of one there calls a stored function of that name
// (test/builtins_test.go finds them by creating one of each on the server).
var mariaDBOnly = strings.Fields(`add_months area asbinary astext aswkb aswkt binlog_gtid_pos boundary buffer
		centroid chr column_add column_check column_create column_delete column_exists column_get column_json
		column_list convexhull crc32c crosses decode decode_histogram des_decrypt des_encrypt dimension disjoint
		encode encrypt endpoint envelope equals exteriorring geomcollfromtext geomcollfromwkb
		geometrycollectionfromtext geometrycollectionfromwkb geometryfromtext geometryfromwkb geometryn
		geometrytype geomfromtext geomfromwkb glength interiorringn intersects isclosed isempty isring issimple
		json_compact json_detailed json_equals json_exists json_loose json_normalize json_query lastval lengthb
		linefromtext linefromwkb master_gtid_wait mbrequal md5 median mlinefromtext mlinefromwkb mpointfromtext
		mpointfromwkb mpolyfromtext mpolyfromwkb multilinestringfromtext multilinestringfromwkb
		multipointfromtext multipointfromwkb multipolygonfromtext multipolygonfromwkb natural_sort_key nextval
		numgeometries numinteriorrings numpoints nvl nvl2 old_password overlaps percentile_cont percentile_disc
		pointfromtext pointfromwkb pointn pointonsurface polyfromtext polyfromwkb polygonfromtext polygonfromwkb
		setval sformat sha sha1 st_boundary st_isring st_pointonsurface st_relate sys_guid sysdate to_char
		touches trim_oracle within x y`)
