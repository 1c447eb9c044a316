package proxy

import (
	"slices"
	"testing"

	"github.com/switchyard-db/switchyard/replication"
)

// scheduleNames lists the backends of a schedule's slots by name.
func scheduleNames(rs *replicaSchedule) []string {
	var out []string
	for _, b := range rs.slots {
		out = append(out, b.Name)
	}
	return out
}

func TestReplicaScheduleWeights(t *testing.T) {
	for _, tc := range []struct {
		name        string
		backends    []*Backend
		withPrimary bool
		want        []string
	}{
		{"equal weights", []*Backend{
			{Name: "p", Role: replication.RolePrimary, Weight: 1}, {Name: "r1", Weight: 1}, {Name: "r2", Weight: 1},
		}, false, []string{"r1", "r2"}},
		{"weights interleave", []*Backend{
			{Name: "r1", Weight: 1}, {Name: "r2", Weight: 3},
		}, false, []string{"r1", "r2", "r2", "r2"}},
		{"common divisor reduced", []*Backend{
			{Name: "r1", Weight: 20}, {Name: "r2", Weight: 40}, {Name: "r3", Weight: 60},
		}, false, []string{"r1", "r2", "r3", "r2", "r3", "r3"}},
		{"divisor over readers only", []*Backend{
			{Name: "p", Role: replication.RolePrimary, Weight: 7}, {Name: "r1", Weight: 2}, {Name: "r2", Weight: 4},
		}, false, []string{"r1", "r2", "r2"}},
		{"weight 0 takes no reads", []*Backend{
			{Name: "r1", Weight: 0}, {Name: "r2", Weight: 5},
		}, false, []string{"r2"}},
		{"configured primary with read_from_primary", []*Backend{
			{Name: "p", Role: replication.RolePrimary, Weight: 2}, {Name: "r1", Weight: 2}, {Name: "r2", Weight: 4},
		}, true, []string{"p", "r1", "r2", "r2"}},
		{"primary by discovery stays in", []*Backend{
			{Name: "a", Weight: 1}, {Name: "b", Weight: 1},
		}, false, []string{"a", "b"}},
		{"only a primary", []*Backend{{Name: "p", Role: replication.RolePrimary, Weight: 1}}, false, nil},
		{"no weights", []*Backend{{Name: "r1"}, {Name: "r2"}}, false, nil},
	} {
		got := scheduleNames(newReplicaSchedule(tc.backends, tc.withPrimary))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: schedule %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReplicaScheduleBounded checks that weights without a common divisor
// do not make a schedule of their sum's size without end.
func TestReplicaScheduleBounded(t *testing.T) {
	rs := newReplicaSchedule([]*Backend{{Name: "r1", Weight: 1}, {Name: "r2", Weight: 1 << 30}}, false)
	if n := len(rs.slots); n == 0 || n > 10002 {
		t.Fatalf("schedule of %d slots, want at most about 10000", n)
	}
}

// scheduleServer is a Server over backends with nothing running (New starts
// nothing until Serve), for routing decisions.
func scheduleServer(t *testing.T, backends []*Backend, mod func(*Options)) *Server {
	t.Helper()
	opts := testOptions(t)
	opts.Backends = backends
	if mod != nil {
		mod(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// picks returns how often pickReplica chose each backend in n picks ("" for none).
func picks(s *Server, n int) map[string]int {
	got := map[string]int{}
	for range n {
		name := ""
		if b := s.pickReplica(); b != nil {
			name = b.Name
		}
		got[name]++
	}
	return got
}

func TestPickReplica(t *testing.T) {
	backends := func() []*Backend {
		return []*Backend{
			{Name: "p", Addr: "127.0.0.1:1", Role: replication.RolePrimary, Weight: 1},
			{Name: "r1", Addr: "127.0.0.1:2", Role: replication.RoleReplica, Weight: 1},
			{Name: "r2", Addr: "127.0.0.1:3", Role: replication.RoleReplica, Weight: 3},
		}
	}
	eq := func(a, b map[string]int) bool {
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if b[k] != v {
				return false
			}
		}
		return true
	}
	t.Run("by weight", func(t *testing.T) {
		s := scheduleServer(t, backends(), nil)
		if got, want := picks(s, 400), map[string]int{"r1": 100, "r2": 300}; !eq(got, want) {
			t.Errorf("400 picks: %v, want %v", got, want)
		}
	})
	t.Run("unhealthy skipped", func(t *testing.T) {
		s := scheduleServer(t, backends(), func(o *Options) {
			o.Health = func(name string) bool { return name != "r2" }
		})
		if got, want := picks(s, 40), map[string]int{"r1": 40}; !eq(got, want) {
			t.Errorf("40 picks with r2 unhealthy: %v, want %v", got, want)
		}
	})
	t.Run("drained and failed skipped", func(t *testing.T) {
		bs := backends()
		s := scheduleServer(t, bs, nil)
		bs[2].drained.Store(true)
		if got, want := picks(s, 40), map[string]int{"r1": 40}; !eq(got, want) {
			t.Errorf("40 picks with r2 drained: %v, want %v", got, want)
		}
		bs[1].markFailed()
		if got, want := picks(s, 4), map[string]int{"": 4}; !eq(got, want) {
			t.Errorf("4 picks with r2 drained and r1 failed: %v, want %v", got, want)
		}
	})
	t.Run("primary by discovery skipped", func(t *testing.T) {
		bs := backends()
		bs[0].Role = replication.RoleAuto
		primary := "r2" // the monitor found r2 writable
		s := scheduleServer(t, bs, func(o *Options) { o.Primary = func() string { return primary } })
		got := picks(s, 40)
		if got["r2"] != 0 || got["p"] == 0 || got["r1"] == 0 || got[""] != 0 {
			t.Errorf("40 picks with r2 the primary: %v, want p and r1 only", got)
		}
	})
	t.Run("unusable share spread by weight", func(t *testing.T) {
		// r2 is out: its reads should go to the others as their weights
		// say (1:1), not all to the backend after it in the schedule.
		bs := []*Backend{
			{Name: "p", Addr: "127.0.0.1:1", Role: replication.RolePrimary, Weight: 1},
			{Name: "r1", Addr: "127.0.0.1:2", Role: replication.RoleReplica, Weight: 1},
			{Name: "r2", Addr: "127.0.0.1:3", Role: replication.RoleReplica, Weight: 1},
			{Name: "r3", Addr: "127.0.0.1:4", Role: replication.RoleReplica, Weight: 1},
		}
		s := scheduleServer(t, bs, func(o *Options) {
			o.Health = func(name string) bool { return name != "r2" }
		})
		if got, want := picks(s, 300), map[string]int{"r1": 150, "r3": 150}; !eq(got, want) {
			t.Errorf("300 picks with r2 unhealthy: %v, want %v", got, want)
		}
	})
	t.Run("read_from_primary", func(t *testing.T) {
		s := scheduleServer(t, backends(), func(o *Options) { o.ReadFromPrimary = true })
		if got, want := picks(s, 500), map[string]int{"p": 100, "r1": 100, "r2": 300}; !eq(got, want) {
			t.Errorf("500 picks with read_from_primary: %v, want %v", got, want)
		}
	})
	t.Run("only the primary", func(t *testing.T) {
		s := scheduleServer(t, backends()[:1], nil)
		if b := s.pickReplica(); b != nil {
			t.Errorf("pickReplica() = %s with only a primary, want nil", b.Name)
		}
	})
}
