package proxy

import "testing"

func TestSplitGTID(t *testing.T) {
	for _, tc := range []struct {
		in     string
		domain string
		seq    uint64
		ok     bool
	}{
		{"0-1-5", "0", 5, true},
		{"12-100-18446744073709551615", "12", 1<<64 - 1, true},
		{"0-1-18446744073709551616", "0", 0, false}, // overflows
		{"0-1", "", 0, false},
		{"0-1-5-7", "", 0, false},
		{"0-1-x", "0", 0, false},
		{"0-1--5", "", 0, false},
		{"", "", 0, false},
	} {
		d, seq, ok := splitGTID(tc.in)
		if ok != tc.ok || (ok && (d != tc.domain || seq != tc.seq)) {
			t.Errorf("splitGTID(%q) = %q, %d, %v, want %q, %d, %v", tc.in, d, seq, ok, tc.domain, tc.seq, tc.ok)
		}
	}
}

func TestGTIDCovers(t *testing.T) {
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
		{"1-1-9", "0-1-5", false}, // another domain
		{"0-1-5,1-1-7", "1-1-7", true},
		{"0-1-5,1-1-7", "0-1-3,1-1-7", true},
		{"0-1-5,1-1-7", "0-1-3,1-1-8", false},
		{"0-1-5, 1-1-7", "1-1-7 ,0-1-5", true}, // spaces around the commas
		{"0-1-5", "0-1-5,2-1-1", false},        // a domain the server has not seen
		{"", "0-1-5", false},
		{"0-1-5", "", false},
		{"0-1-5", "garbage", false},
		{"garbage", "0-1-5", false},
		{"0-1-5,", "0-1-5", true},
		{"0-1-5", "0-1-5,", false},
	} {
		if got := gtidCovers(tc.pos, tc.want); got != tc.covers {
			t.Errorf("gtidCovers(%q, %q) = %v, want %v", tc.pos, tc.want, got, tc.covers)
		}
	}
}
