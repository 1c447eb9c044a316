package proxy

import "testing"

func TestGTIDCoversMariaDB(t *testing.T) {
	for _, tc := range []struct {
		pos, want string
		covers    bool
	}{
		{"0-1-5", "0-1-5", true},
		{"0-1-6", "0-1-5", true},
		{"0-1-4", "0-1-5", false},
		{"0-2-9", "0-1-5", true},  // sequence numbers count per domain, whatever server wrote them
		{"0-1-10", "0-1-9", true}, // compared as numbers, not text
		{"0-1-9", "0-1-10", false},
		{"0-1-18446744073709551615", "0-1-18446744073709551614", true},
		{"0-1-5", "0-1-18446744073709551616", false}, // overflows: not a GTID
		{"1-1-9", "0-1-5", false},                    // another domain
		{"0-1-5,1-1-7", "1-1-7", true},
		{"0-1-5,1-1-7", "0-1-3,1-1-7", true},
		{"0-1-5,1-1-7", "0-1-3,1-1-8", false},
		{"0-1-5", "0-1-5,2-1-1", false}, // a domain the server has not seen
		{"", "0-1-5", false},
		{"0-1-5", "", false}, // no GTID to wait for is not one the replica has
		{"0-1-5", "garbage", false},
		{"garbage", "0-1-5", false},
		{"0-1", "0-1-5", false},
		{"0-1-5-7", "0-1-5", false},
		{"0-1-x", "0-1-5", false},
		{"0-1-5,", "0-1-5", false}, // not what a server writes: not trusted
		{"0-1-5", "0-1-5,", false},
		{"c1d77ffd-f17b-11f1-9daa-02fc00000001:1-5", "0-1-5", false}, // a MySQL set
	} {
		got := parseGTIDSet(tc.pos, true).covers(parseGTIDSet(tc.want, true))
		if got != tc.covers {
			t.Errorf("MariaDB %q covers %q = %v, want %v", tc.pos, tc.want, got, tc.covers)
		}
	}
}

func TestGTIDCoversMySQL(t *testing.T) {
	const a, b = "c1d77ffd-f17b-11f1-9daa-02fc00000001", "d2e88000-f17b-11f1-9daa-02fc00000002"
	for _, tc := range []struct {
		pos, want string
		covers    bool
	}{
		{a + ":1-5", a + ":5", true},
		{a + ":1-5", a + ":3", true},
		{a + ":1-5", a + ":6", false},
		{a + ":1-5", a + ":1-5", true},
		{a + ":1-3:5-9", a + ":4", false}, // a gap: sets, not positions
		{a + ":1-3:5-9", a + ":5", true},
		{a + ":1-9", b + ":1", false},                // another server's transactions
		{a + ":1-9,\n" + b + ":1-4", b + ":4", true}, // gtid_executed as servers print it
		{a + ":1-9,\n" + b + ":1-4", a + ":1-9," + b + ":1-5", false},
		{a + ":1-5", a + ":tag:3", false}, // tagged GTIDs are other transactions
		{a + ":1-5:tag:1-3", a + ":tag:3", true},
		{"", a + ":1", false},
		{a + ":1-5", "", false},
		{a + ":1-5", "garbage", false},
		{"garbage", a + ":1", false},
		{"0-1-5", a + ":1", false}, // a MariaDB position
	} {
		got := parseGTIDSet(tc.pos, false).covers(parseGTIDSet(tc.want, false))
		if got != tc.covers {
			t.Errorf("MySQL %q covers %q = %v, want %v", tc.pos, tc.want, got, tc.covers)
		}
	}
}

// TestGTIDFlavorsDoNotMix: a position parsed for one engine never covers a
// GTID parsed for the other, even when both texts parse.
func TestGTIDFlavorsDoNotMix(t *testing.T) {
	if parseGTIDSet("0-1-5", true).covers(parseGTIDSet("0-1-5", false)) {
		t.Error("a MariaDB position covers a GTID parsed as MySQL's")
	}
}

// TestIsMariaDB checks the engine test on greeting versions.
func TestIsMariaDB(t *testing.T) {
	for v, want := range map[string]bool{
		"5.5.5-10.11.19-MariaDB-0+deb12u1-log": true,
		"11.4.2-MariaDB":                       true,
		fakeVersion:                            true,
		"9.7.4":                                false,
		"8.0.35-switchyard":                    false,
		"8.4.0-commercial":                     false,
	} {
		if got := isMariaDB(v); got != want {
			t.Errorf("isMariaDB(%q) = %v, want %v", v, got, want)
		}
	}
}
