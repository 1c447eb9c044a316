package router

import "strings"

// functions.go: what the classifier knows about names followed by '(' and
// about system variables.
//
// A call to a function that is not a known built-in may be a stored function
// or a UDF, which can write; such a read is not decided on the fast path, and
// if the parser confirms the call it becomes KindWrite with FlagUnsure.
//
// Choices made here:
//   - SLEEP and BENCHMARK are plain reads: they only waste time, and a
//     replica can waste it as well as the primary.
//   - UUID_SHORT is FlagServerLocal: its value is built from the server id
//     and a per-server counter, so callers expecting one server's sequence
//     must stay on the primary. UUID() and RAND() are plain reads.
//   - IS_FREE_LOCK and IS_USED_LOCK are FlagServerLocal: named locks live on
//     the primary, a replica would always say "free".
//   - The replication wait functions (MASTER_GTID_WAIT, MASTER_POS_WAIT, ...)
//     are writes with FlagServerLocal: they observe the position of the
//     server that runs them, and the proxy sends them to the primary.
//   - LOAD_FILE reads a file of the server that runs it: FlagServerLocal.

type funcInfo struct {
	flags Flags
	// write makes the statement a KindWrite.
	write bool
	// lastInsertID marks LAST_INSERT_ID: with no argument it reads the
	// session's last generated id, with one it sets it (a side effect).
	lastInsertID bool
}

// pureFunctions are built-in functions without side effects (including
// aggregate and window functions), in MariaDB 10.11 and MySQL 8.0, with the
// internal names the TiDB parser gives some of them (char_func, insert_func,
// default_func, dateliteral...).
const pureFunctions = `
abs acos adddate addtime aes_decrypt aes_encrypt any_value area asbinary ascii asin astext aswkb aswkt
atan atan2 avg benchmark bin bin_to_uuid bit_and bit_count bit_length bit_or bit_xor boundary buffer
cast ceil ceiling centroid char char_func char_length character_length charset chr coalesce coercibility
collation compress concat concat_ws contains conv convert convert_tz convexhull cos cot count crc32
crc32c crosses cume_dist curdate current_date current_role current_time current_timestamp current_user
curtime database date date_add date_format date_sub datediff day dayname dayofmonth dayofweek dayofyear
decode decode_histogram default default_func degrees dense_rank des_decrypt des_encrypt dimension
disjoint distance elt encode encrypt endpoint envelope equals exp export_set exteriorring extract
extractvalue field find_in_set first_value firstrow floor format format_bytes format_pico_time
from_base64 from_days from_unixtime geomcollfromtext geomcollfromwkb geometrycollection
geometrycollectionfromtext geometrycollectionfromwkb geometryfromtext geometryfromwkb geometryn
geometrytype geomfromtext geomfromwkb get_format glength greatest group_concat grouping gtid_subset
gtid_subtract hex hour icu_version if ifnull inet6_aton inet6_ntoa inet_aton inet_ntoa insert
insert_func instr interiorringn intersects interval is_ipv4 is_ipv4_compat is_ipv4_mapped is_ipv6
is_uuid isclosed isempty isnull isring issimple kdf lag last_day last_value lcase lead least left length
lengthb linefromtext linefromwkb linestring ln localtime localtimestamp locate log log10 log2 lower lpad
ltrim make_set makedate maketime max md5 median microsecond mid min minute mlinefromtext mlinefromwkb
mod month monthname mpointfromtext mpointfromwkb mpolyfromtext mpolyfromwkb multilinestring
multilinestringfromtext multilinestringfromwkb multipoint multipointfromtext multipointfromwkb
multipolygon multipolygonfromtext multipolygonfromwkb name_const natural_sort_key now nth_value ntile
nullif numgeometries numinteriorrings numpoints nvl nvl2 oct octet_length old_password ord overlaps
password percent_rank percentile_cont percentile_disc period_add period_diff pi point pointfromtext
pointfromwkb pointn pointonsurface polyfromtext polyfromwkb polygon polygonfromtext polygonfromwkb
position pow power quarter quote radians rand random_bytes rank repeat replace reverse right roles_graphml
round row_number rpad rtrim schema sec_to_time second session_user sformat sha sha1 sha2 sign sin sleep
soundex space sqrt srid statement_digest statement_digest_text std stddev stddev_pop stddev_samp
str_to_date strcmp subdate substr substring substring_index subtime sum sys_guid sysdate system_user tan
time time_format time_to_sec timediff timestamp timestampadd timestampdiff to_base64 to_char to_days
to_seconds touches translate trim trim_oracle truncate ucase uncompress uncompressed_length unhex
unix_timestamp updatexml upper user utc_date utc_time utc_timestamp uuid uuid_to_bin var_pop var_samp
variance version week weekday weekofyear weight_string within x y year yearweek add_months
months_between dateliteral timeliteral timestampliteral istrue isfalse
`

// pureFunctionPrefixes are families of built-in functions: spatial (st_,
// mbr), JSON, dynamic columns and regular expressions.
var pureFunctionPrefixes = [...]string{"st_", "mbr", "json_", "column_", "regexp_"}

// notFunctions are keywords and type names that may stand before '(' in a
// query without being a function call.
const notFunctions = `
all and any as against array between bigint binary blob bool boolean by case char character columns
cross dec decimal distinct distinctrow double each else escape except exists fixed float for from
group having in index inner int integer intersect is join key lateral left like limit match mediumint
member natural nchar not numeric of offset on or order outer over partition path precision real
recursive regexp rlike row rows select set signed smallint some straight_join then tinyint union
unsigned using value values varbinary varchar varcharacter when where window with xor year datetime
div bit json nested
`

var funcs = func() map[string]funcInfo {
	m := make(map[string]funcInfo, 600)
	for _, name := range strings.Fields(pureFunctions) {
		m[name] = funcInfo{}
	}
	for _, name := range strings.Fields(notFunctions) {
		m[name] = funcInfo{}
	}
	writes := func(f Flags, names ...string) {
		for _, n := range names {
			m[n] = funcInfo{flags: f, write: true}
		}
	}
	writes(FlagSideEffect|FlagLockFunc, "get_lock")
	writes(FlagSideEffect|FlagReleaseLockFunc, "release_lock")
	writes(FlagSideEffect|FlagReleaseLockFunc|FlagReleaseAllLocks, "release_all_locks")
	writes(FlagSideEffect, "nextval", "setval", "setvar")
	writes(FlagServerLocal, "master_gtid_wait", "master_pos_wait", "source_pos_wait",
		"wait_for_executed_gtid_set", "wait_until_sql_thread_after_gtids")
	for _, n := range []string{"connection_id", "uuid_short", "is_free_lock", "is_used_lock",
		"load_file", "binlog_gtid_pos", "ps_current_thread_id", "ps_thread_id"} {
		m[n] = funcInfo{flags: FlagServerLocal}
	}
	m["found_rows"] = funcInfo{flags: FlagNeedsPrevious}
	m["row_count"] = funcInfo{flags: FlagNeedsPrevious}
	m["lastval"] = funcInfo{flags: FlagLastInsertID}
	m["getvar"] = funcInfo{flags: FlagUserVarRead}
	m["last_insert_id"] = funcInfo{lastInsertID: true}
	return m
}()

// lookupFunc reports what calling name does; ok is false for a name that is
// not a known built-in. It does not allocate.
func lookupFunc(name string) (funcInfo, bool) {
	var buf [48]byte
	low, fits := lowerInto(buf[:], name)
	if !fits {
		return funcInfo{}, false
	}
	if fi, ok := funcs[string(low)]; ok {
		return fi, true
	}
	for _, p := range pureFunctionPrefixes {
		if len(low) > len(p) && string(low[:len(p)]) == p {
			return funcInfo{}, true
		}
	}
	return funcInfo{}, false
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
