package replication

import (
	"errors"
	"strings"
	"testing"
)

func TestCompareGTIDs(t *testing.T) {
	cases := []struct {
		flavor, a, b string
		order        int
		sameOrder    bool
	}{
		{FlavorMariaDB, "0-1-10", "0-1-9", 1, true},
		{FlavorMariaDB, "0-1-9", "0-1-10", -1, true},
		{FlavorMariaDB, "0-1-10", "0-1-10", 0, true},
		// A domain's sequence numbers order its transactions whichever
		// server wrote them.
		{FlavorMariaDB, "0-2-11", "0-1-10", 1, true},
		{FlavorMariaDB, "0-1-10,1-1-5", "0-1-10", 1, true},
		// Each has a domain the other lacks: by size.
		{FlavorMariaDB, "0-1-10,1-1-5", "0-1-12", 1, false},
		{FlavorMariaDB, "", "0-1-1", -1, true},
		{FlavorMySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9", 1, true},
		{FlavorMySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10", 0, true},
		// An errant transaction on b: neither contains the other.
		{FlavorMySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-10",
			"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9,4e11fa47-71ca-11e1-9e33-c80aa9429562:1", 0, false},
		{FlavorMySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-12",
			"3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9,4e11fa47-71ca-11e1-9e33-c80aa9429562:1", 1, false},
		{FlavorMySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9", -1, true},
	}
	for _, c := range cases {
		a, err := parseGTIDs(c.flavor, c.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := parseGTIDs(c.flavor, c.b)
		if err != nil {
			t.Fatal(err)
		}
		if order, same := compareGTIDs(a, b); order != c.order || same != c.sameOrder {
			t.Errorf("%s %q vs %q = %d, %v; want %d, %v", c.flavor, c.a, c.b, order, same, c.order, c.sameOrder)
		}
	}
	if g, _ := parseGTIDs(FlavorMySQL, "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9,4e11fa47-71ca-11e1-9e33-c80aa9429562:3"); g.count != 9 {
		t.Errorf("count = %d, want 9", g.count)
	}
	if _, err := parseGTIDs(FlavorMariaDB, "0-1"); err == nil {
		t.Error("a malformed MariaDB GTID parsed")
	}
}

// snapshotOf builds a snapshot with primary p from backend statuses.
func snapshotOf(p string, bs ...BackendStatus) *Snapshot {
	s := &Snapshot{Primary: p, Backends: bs, index: map[string]int{}}
	for i, b := range bs {
		s.index[b.Name] = i
	}
	return s
}

func TestPlanSwitchover(t *testing.T) {
	primary := BackendStatus{Name: "db1", State: Usable, Flavor: FlavorMariaDB, GTIDCurrentPos: "0-1-100"}
	replica := func(name, pos string) BackendStatus {
		return BackendStatus{Name: name, State: Usable, Flavor: FlavorMariaDB, Replicating: true, ReadOnly: true, GTIDCurrentPos: pos}
	}
	behind, ahead, level := replica("db2", "0-1-90"), replica("db3", "0-1-99"), replica("db4", "0-1-99")

	// The most advanced replica; the first listed among equals.
	if from, to, err := planSwitchover(snapshotOf("db1", primary, behind, ahead, level), ""); err != nil || from != "db1" || to != "db3" {
		t.Errorf("plan = %s -> %s, %v; want db1 -> db3", from, to, err)
	}
	if _, to, err := planSwitchover(snapshotOf("db1", primary, behind, ahead), "db2"); err != nil || to != "db2" {
		t.Errorf("plan with target db2 = %s, %v", to, err)
	}
	lagging := ahead
	lagging.State = Lagging
	pinned := behind
	pinned.Hint = RoleReplica
	notReplicating := behind
	notReplicating.Replicating = false
	mysql := behind
	mysql.Flavor = FlavorMySQL
	pinnedPrimary := primary
	pinnedPrimary.Hint = RolePrimary
	downPrimary := primary
	downPrimary.State = Down
	refused := []struct {
		name   string
		s      *Snapshot
		target string
		want   string
	}{
		{"lagging target", snapshotOf("db1", primary, lagging), "db3", "db3 cannot become the primary: it is lagging"},
		{"role replica", snapshotOf("db1", primary, pinned), "db2", "its role is replica"},
		{"not replicating", snapshotOf("db1", primary, notReplicating), "db2", "it does not replicate"},
		{"other flavour", snapshotOf("db1", primary, mysql), "db2", "it runs mysql and the primary mariadb"},
		{"the primary itself", snapshotOf("db1", primary, behind), "db1", "it is the primary"},
		{"unknown", snapshotOf("db1", primary, behind), "db9", `unknown backend "db9"`},
		{"none usable", snapshotOf("db1", primary, lagging, pinned), "", "no usable replica"},
		{"pinned primary", snapshotOf("db1", pinnedPrimary, behind), "", "pinned as the primary"},
		{"primary down", snapshotOf("db1", downPrimary, behind), "", "the primary db1 is down"},
		{"no primary", snapshotOf("", primary, behind), "", "there is no primary"},
		{"conflict", &Snapshot{Primary: "db1", Conflict: true, Writable: []string{"db1", "db2"}}, "", "several servers are writable"},
	}
	for _, c := range refused {
		_, _, err := planSwitchover(c.s, c.target)
		if !errors.Is(err, ErrSwitchoverRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a refusal containing %q", c.name, err, c.want)
		}
	}
}

func TestDivergence(t *testing.T) {
	maria := []struct {
		pos, state string
		diverged   bool
	}{
		// The old primary's last GTID is in the new primary's binlog.
		{"0-1-500", "0-1-500,0-2-520", false},
		{"0-1-498", "0-1-500,0-2-520", false},
		// It wrote 0-1-499 and 0-1-500, which never reached the new primary:
		// sequence numbers alone (520 > 500) would hide it.
		{"0-1-500", "0-1-498,0-2-520", true},
		{"0-1-10,1-1-3", "0-1-10", true},
		{"", "0-1-10", false},
	}
	for _, c := range maria {
		why, err := mariaDBDivergence(c.pos, c.state)
		if err != nil {
			t.Fatal(err)
		}
		if (why != "") != c.diverged {
			t.Errorf("MariaDB pos %q against state %q: %q, want diverged %v", c.pos, c.state, why, c.diverged)
		}
	}
	const a, b = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4e11fa47-71ca-11e1-9e33-c80aa9429562"
	mysqlCases := []struct {
		own, all string
		diverged bool
	}{
		{a + ":1-10", a + ":1-12," + b + ":1-3", false},
		{a + ":1-13", a + ":1-12," + b + ":1-3", true},
		{a + ":1-10," + b + ":1", a + ":1-12", true},
	}
	for _, c := range mysqlCases {
		why, err := mySQLDivergence(c.own, c.all)
		if err != nil {
			t.Fatal(err)
		}
		if (why != "") != c.diverged {
			t.Errorf("MySQL %q against %q: %q, want diverged %v", c.own, c.all, why, c.diverged)
		}
	}
	if _, err := mariaDBDivergence("0-1", "0-1-1"); err == nil {
		t.Error("a malformed position gave no error")
	}
}
