package apps

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-db/switchyard/internal/sandbox"
)

// A server's general log (enabled by TestMain) holds every statement every
// client sent it. The tests read the statements the application user sent
// during a phase, to see which server each reached.

// statement is one general log entry of the application user.
type statement struct {
	Thread  int
	Command string // Query, Init DB, Prepare, Execute, ...
	Text    string
}

// logEntryRE matches the first line of an entry: an optional timestamp
// (MariaDB's "261206 13:53:20", on the first entry of a second; MySQL's
// "2026-12-06T13:53:20.121234Z", on every entry), the thread id, the command
// and its argument.
var logEntryRE = regexp.MustCompile(`^(?:\d{6}\s+\d{1,2}:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))?` +
	`\t+\s*(\d+) ([A-Za-z][A-Za-z ]*)\t(.*)$`)

// logMark is where each server's general log ended at some moment.
type logMark map[*sandbox.Server]int64

func markLogs(t *testing.T, sb *sandbox.Sandbox) logMark {
	t.Helper()
	m := logMark{}
	for _, srv := range sb.Servers() {
		st, err := os.Stat(filepath.Join(srv.DataDir, generalLog))
		if err != nil {
			t.Fatalf("general log of %s: %v", srv.Name, err)
		}
		m[srv] = st.Size()
	}
	return m
}

// appStatements returns the statements the application user sent srv after
// mark. Connections are attributed to users by their Connect entries, which
// the log holds for every connection since the server started.
func appStatements(t *testing.T, srv *sandbox.Server, mark logMark) []statement {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(srv.DataDir, generalLog))
	if err != nil {
		t.Fatalf("general log of %s: %v", srv.Name, err)
	}
	users := map[int]string{}
	var out []statement
	var cur *statement // the entry continued by lines that are not entries
	var curAfter bool
	flush := func() {
		if cur != nil && curAfter && users[cur.Thread] == appUser.Name {
			out = append(out, *cur)
		}
		cur = nil
	}
	var off int64
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		lineOff := off
		off += int64(len(line)) + 1
		m := logEntryRE.FindStringSubmatch(line)
		if m == nil {
			if cur != nil {
				cur.Text += "\n" + line
			}
			continue
		}
		flush()
		id, _ := strconv.Atoi(m[1])
		cmd, arg := strings.TrimSpace(m[2]), m[3]
		if cmd == "Connect" {
			user, _, _ := strings.Cut(arg, "@")
			users[id] = user
		}
		cur, curAfter = &statement{Thread: id, Command: cmd, Text: arg}, lineOff >= mark[srv]
	}
	flush()
	if err := sc.Err(); err != nil {
		t.Fatalf("general log of %s: %v", srv.Name, err)
	}
	return out
}

// mustNotReachReplicasRE matches statements that change data or take locks:
// none of them may run on a replica.
var mustNotReachReplicasRE = regexp.MustCompile(`(?is)^\s*(?:/\*.*?\*/\s*)*` +
	`(?:INSERT|UPDATE|DELETE|REPLACE|CREATE|ALTER|DROP|TRUNCATE|RENAME|SAVEPOINT|RELEASE|ROLLBACK\s+(?:WORK\s+)?TO|LOCK|LOAD|XA)\b` +
	`|\bFOR\s+UPDATE\b|\bLOCK\s+IN\s+SHARE\s+MODE\b|\bFOR\s+SHARE\b`)

// checkLogs checks the statements the application sent during a phase: no
// replica ran one that writes or locks, and every pattern in onPrimary
// matched at least one statement the primary ran (the application's feature
// really went through Switchyard to the primary). On failure it logs the
// statements each server ran.
func checkLogs(t *testing.T, sb *sandbox.Sandbox, mark logMark, onPrimary ...string) {
	t.Helper()
	failed := false
	for _, r := range sb.Replicas {
		for _, st := range appStatements(t, r, mark) {
			if st.Command == "Query" || st.Command == "Prepare" {
				if mustNotReachReplicasRE.MatchString(st.Text) {
					t.Errorf("%s (a replica) ran %q from the application (thread %d)", r.Name, clip(st.Text), st.Thread)
					failed = true
				}
			}
		}
	}
	primary := appStatements(t, sb.Primary, mark)
	for _, pat := range onPrimary {
		re := regexp.MustCompile(pat)
		found := false
		for _, st := range primary {
			if re.MatchString(st.Text) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no statement matching %q reached the primary", pat)
			failed = true
		}
	}
	if failed || t.Failed() {
		for _, srv := range sb.Servers() {
			t.Logf("statements from %s on %s during the phase (last 60):\n%s", appUser.Name, srv.Name,
				formatStatements(appStatements(t, srv, mark), 60))
		}
	}
}

func formatStatements(sts []statement, n int) string {
	if len(sts) > n {
		sts = sts[len(sts)-n:]
	}
	var b strings.Builder
	for _, st := range sts {
		fmt.Fprintf(&b, "  [%d] %s %s\n", st.Thread, st.Command, clip(st.Text))
	}
	return b.String()
}

func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
