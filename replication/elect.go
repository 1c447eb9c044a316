package replication

// candidate is one backend as the election sees it.
type candidate struct {
	name     string
	hint     Role // configured role
	known    bool // the latest probe succeeded, so readOnly is current
	readOnly bool
}

// election is the outcome of elect.
type election struct {
	primary  string   // "" for none
	conflict bool     // two or more writable servers that may be primary
	writable []string // reachable writable servers that may be primary
}

// elect chooses the primary from the latest probes, given the previous primary prev
// ("" for none) and whether the previous election saw a conflict. The rules are in the
// package documentation: one writable server wins; with none, an unreachable previous
// primary keeps its place; with several, only a still-writable previous primary does.
// A conflict is not resolved by the previous primary becoming unreachable: it may still
// be writable, so it keeps its place and the conflict stands. A pinned primary (hint
// RolePrimary) always wins and a RoleReplica backend never does.
func elect(prev string, prevConflict bool, cs []candidate) election {
	var e election
	pinned := ""
	prevKnown, prevWritable := false, false
	for _, c := range cs {
		if c.hint == RolePrimary {
			pinned = c.name
		}
		writable := c.known && !c.readOnly
		if c.name == prev {
			prevKnown, prevWritable = c.known, writable
		}
		if writable && c.hint != RoleReplica {
			e.writable = append(e.writable, c.name)
		}
	}
	switch {
	case pinned != "":
		e.primary = pinned
	case len(e.writable) == 1 && prevConflict && prev != "" && !prevKnown && e.writable[0] != prev:
		e.primary, e.conflict = prev, true
	case len(e.writable) == 1:
		e.primary = e.writable[0]
	case len(e.writable) == 0:
		if prev != "" && !prevKnown {
			e.primary = prev
		}
	default:
		e.conflict = true
		if prevWritable {
			e.primary = prev
		}
	}
	return e
}
