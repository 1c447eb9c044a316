package proxy

import (
	"slices"
	"testing"
)

// TestSessionsListAttributes logs in with go-sql-driver and its connection
// attributes and finds them, with the user, in the session list; a session
// that has gone is no longer listed.
func TestSessionsListAttributes(t *testing.T) {
	fp := startFakeProxy(t, 0, nil)
	db := fp.db(t, "connectionAttributes=app_role:checkout,build:42")
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	sessions := fp.Sessions()
	if len(sessions) != 1 {
		t.Fatalf("Sessions() = %+v, want one session", sessions)
	}
	s := sessions[0]
	if s.User != appUser || s.ID == 0 || s.Since.IsZero() || s.Client == "" || s.TLS {
		t.Errorf("session %+v, want user %s, an id, a login time, a client address, no TLS", s, appUser)
	}
	for _, want := range []Attribute{{"app_role", "checkout"}, {"build", "42"}, {"_client_name", "Go-MySQL-Driver"}} {
		if !slices.Contains(s.Attributes, want) {
			t.Errorf("attributes %v lack %v", s.Attributes, want)
		}
	}
	db.Close()
	waitFor(t, "the session to leave the list", func() bool { return len(fp.Sessions()) == 0 })
}

// TestParseAttributes decodes well-formed attributes and refuses lengths
// that do not fit.
func TestParseAttributes(t *testing.T) {
	good := []byte{8, 1, 'a', 1, 'b', 2, 'c', 'd', 0}
	attrs, err := parseAttributes(good)
	if err != nil || !slices.Equal(attrs, []Attribute{{"a", "b"}, {"cd", ""}}) {
		t.Errorf("parseAttributes(%v) = %v, %v", good, attrs, err)
	}
	for _, bad := range [][]byte{
		{10, 1, 'a'},        // total longer than the packet
		{3, 5, 'a', 'b'},    // a name longer than the total
		{4, 1, 'a', 3, 'b'}, // a value longer than the total
		{0xfb},              // NULL total
		{2, 1, 'a'},         // a name without its value
	} {
		if attrs, err := parseAttributes(bad); err == nil {
			t.Errorf("parseAttributes(%v) = %v, want an error", bad, attrs)
		}
	}
}

// TestAttributesRoundTrip decodes what Switchyard sends backends.
func TestAttributesRoundTrip(t *testing.T) {
	attrs, err := parseAttributes(backendAttributes)
	if err != nil || len(attrs) != 3 || attrs[0] != (Attribute{"_client_name", "switchyard"}) {
		t.Errorf("parseAttributes(backendAttributes) = %v, %v", attrs, err)
	}
}
