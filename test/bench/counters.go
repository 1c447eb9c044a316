package main

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"
)

// statusCounters are a server's Questions and Com_* counters.
type statusCounters map[string]int64

// readCounters reads Questions and every Com_* counter of b.
func readCounters(ctx context.Context, b backendServer) (statusCounters, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := b.db.QueryContext(ctx,
		`SHOW GLOBAL STATUS WHERE Variable_name = 'Questions' OR Variable_name LIKE 'Com\_%'`)
	if err != nil {
		return nil, fmt.Errorf("read status of %s: %w", b.Name, err)
	}
	defer rows.Close()
	c := statusCounters{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("read status of %s: %w", b.Name, err)
		}
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			c[name] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read status of %s: %w", b.Name, err)
	}
	return c, nil
}

// delta returns after minus before, keeping only counters that moved. The SHOW STATUS
// that read after counts itself, so one Questions and one Com_show_status are taken
// off.
func delta(before, after statusCounters) statusCounters {
	d := statusCounters{}
	for k, v := range after {
		d[k] = v - before[k]
	}
	d["Questions"]--
	d["Com_show_status"]--
	maps.DeleteFunc(d, func(_ string, v int64) bool { return v <= 0 })
	return d
}

// backendDelta is where statements ran during one run, on one server.
type backendDelta struct {
	Name     string         `json:"name"`
	Role     string         `json:"role"`
	Counters statusCounters `json:"counters"` // nonzero deltas of Questions and Com_*
}

// Questions counts statements the server executed for clients (prepared executions
// included).
func (d backendDelta) Questions() int64 { return d.Counters["Questions"] }

// Reads counts SELECTs, text and prepared.
func (d backendDelta) Reads() int64 { return d.Counters["Com_select"] }

// Writes counts row-changing statements.
func (d backendDelta) Writes() int64 {
	var n int64
	for _, k := range []string{"Com_insert", "Com_update", "Com_delete", "Com_replace"} {
		n += d.Counters[k]
	}
	return n
}

// snapshot reads the counters of every server.
func snapshot(ctx context.Context, servers []backendServer) ([]statusCounters, error) {
	out := make([]statusCounters, len(servers))
	for i, b := range servers {
		c, err := readCounters(ctx, b)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

func deltas(servers []backendServer, before, after []statusCounters) []backendDelta {
	out := make([]backendDelta, len(servers))
	for i, b := range servers {
		out[i] = backendDelta{Name: b.Name, Role: b.Role, Counters: delta(before[i], after[i])}
	}
	return out
}
