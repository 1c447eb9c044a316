package proxy

import "testing"

// TestSQLValue checks how tracked session variable values are written back
// into SET statements: numbers bare, everything else a quoted string that
// the server reads back as the same value.
func TestSQLValue(t *testing.T) {
	for _, tc := range []struct {
		name, value, want string
	}{
		{"max_join_size", "42", "42"},
		{"long_query_time", "10.000000", "10.000000"},
		{"div_precision_increment", "-1", "-1"},
		{"x", ".5", ".5"},
		{"time_zone", "+01:00", "'+01:00'"},
		{"time_zone", "SYSTEM", "'SYSTEM'"},
		{"x", "+5", "'+5'"},   // a leading plus is not a number's spelling the server reports
		{"x", "1e5", "'1e5'"}, // a string that looks like a float stays a string
		{"x", "1E5", "'1E5'"},
		{"x", "inf", "'inf'"}, // ParseFloat takes these; SQL does not
		{"x", "Infinity", "'Infinity'"},
		{"x", "NaN", "'NaN'"},
		{"sql_mode", "STRICT_TRANS_TABLES,ANSI_QUOTES", "'STRICT_TRANS_TABLES,ANSI_QUOTES'"},
		{"x", "it's", "'it''s'"},
		{"x", `a\b`, `'a\\b'`},
		{"x", `\'`, `'\\'''`},
		{"x", `''`, `''''''`},
		{"character_set_results", "", "NULL"},
		{"sql_path", "", "NULL"},
		{"time_zone", "", "''"},
		{"x", "utf8mb4", "'utf8mb4'"},
		{"x", "0x1p4", "'0x1p4'"}, // ParseFloat reads hexadecimal floats; the server reads 0x1 and a name
		{"x", "1_000", "'1_000'"}, // ParseFloat allows Go's digit separators; the server reads a name
		{"x", "1.2.3", "'1.2.3'"},
		{"x", "-", "'-'"},
		{"x", ".", "'.'"},
	} {
		if got := sqlValue(tc.name, tc.value, false); got != tc.want {
			t.Errorf("sqlValue(%q, %q) = %s, want %s", tc.name, tc.value, got, tc.want)
		}
	}
}
