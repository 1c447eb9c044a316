// Package replication watches the backend servers and tells the proxy which one is the
// primary and which replicas may serve reads.
//
// A Monitor runs one prober per backend, each on its own connection (one connection per
// backend, never shared with the proxy's pools) and on its own schedule, so a hung server
// delays nobody else. Every probe has a deadline (Options.Timeout) and reads
// @@read_only, the version, the GTID positions (MariaDB gtid_binlog_pos, gtid_current_pos,
// gtid_slave_pos; MySQL gtid_executed), the replica status (SHOW REPLICA STATUS on MariaDB
// >= 10.5 and MySQL >= 8.0.22, SHOW SLAVE STATUS before that, with either column naming)
// and, when the heartbeat is on, the heartbeat row. One goroutine, the one running
// Monitor.Run, turns those observations into a Snapshot and publishes it atomically;
// readers load it without locks.
//
// # Topology
//
// The writable server (read_only = 0) is the primary; on MySQL, super_read_only = 1
// forces read_only = 1, so read_only tells a replica from the primary there too. When an
// operator promotes a replica and demotes the old primary, the monitor follows at the
// next probe of each. It never names as primary a server whose latest probe saw
// read_only = 1 (unless configured as the primary, below). The rules, applied after
// every probe once every backend has answered a first probe:
//
//   - exactly one reachable writable server: it is the primary;
//   - none: the last primary stays if it is unreachable (its read_only is unknown),
//     otherwise there is no primary until one appears (writes have nowhere to go);
//   - two or more (split brain): the monitor refuses to guess. It keeps the last
//     primary if that one is still writable (no primary otherwise), sets
//     Snapshot.Conflict, logs an error and counts Stats.Conflicts. The conflict ends
//     when a probe sees one of them read-only; the last primary missing a probe does
//     not end it, since it may still be writable.
//
// Server.Role overrides the election: RolePrimary pins a backend as the primary and
// RoleReplica keeps a backend from ever becoming it.
//
// # Health states
//
// Every backend is in one of three states; only Usable backends get traffic.
//
//   - Usable: reachable and, for a replica, replicating with lag at most Options.MaxLag.
//   - Lagging: a replica that is reachable and replicating (both threads running, or
//     the I/O thread reconnecting) but whose lag is above MaxLag or unknown. It gets no
//     new reads. It is readmitted only after Options.ReadmitAfter consecutive checks
//     with lag at most MaxLag, so a replica hovering around the threshold does not flap.
//     Exclusion is immediate: the first check above the threshold excludes it.
//   - Down: the probe failed (connection refused, deadline passed, or the server
//     refused the monitor's login: LastError "login refused: ..."), or a replica's
//     replication is broken (a thread stopped with an error), stopped (either thread
//     stopped without an error; LastError names it) or not configured at all. An
//     unreachable server is re-probed with a backoff that doubles from Options.Interval
//     up to Options.MaxBackoff; a reachable one keeps the normal interval. A replica is
//     readmitted after ReadmitAfter consecutive good checks, like a lagging one; the
//     primary is readmitted at its first good check, since writes have nowhere else to
//     go.
//
// Until every backend has answered a first probe (Monitor.Ready), all are Down ("not
// checked yet"); those first verdicts then apply directly, without hysteresis. The
// primary is never Lagging.
//
// A proxy that gets a read-only error (1290) from what the snapshot calls the primary
// should call Monitor.Recheck: the primary was demoted since its last probe, and the
// recheck makes the monitor see it at once instead of at the next interval.
//
// # Lag
//
// With the heartbeat off, lag is Seconds_Behind_Master (one-second resolution), believed
// only while the I/O thread is connected (MySQL may report 0 while it reconnects). With
// it on, the monitor writes the time (Unix microseconds, its own clock) into a one-row
// table on the primary every Heartbeat.Interval and reads the row on each replica: lag
// is the age of the row the replica has applied, to within one heartbeat interval,
// whatever Seconds_Behind_Master says. The monitor
// creates the schema and table on the primary if they are missing; its user then needs
// CREATE, INSERT and UPDATE on that schema. Heartbeat lag is used while writes succeed,
// once the replica has applied a row written by this monitor (before that, the time
// since this monitor's first write is a lower bound, used when it exceeds
// Seconds_Behind_Master); otherwise the monitor falls back to Seconds_Behind_Master.
// When the writer runs late by more than Heartbeat.Interval + MaxLag/2 (a primary slow
// to commit), every row's age would grow alike and exclude every replica at once, so the
// lag is then how far the replica's row trails the last one written.
//
// While the primary is unreachable no client can write, so a replica is as fresh as it
// can be once it has applied everything it received: heartbeat lag is then measured
// against the last heartbeat written, and without a heartbeat a replica whose SQL thread
// has applied its whole relay log counts as caught up (LagCaughtUp). Replicas thus keep
// serving reads while the primary is down. Before the monitor has found the primary
// down, a replica whose I/O thread lost it but which has applied everything it received
// lags at most what was last measured plus the time since (LagBound): it stays in
// rotation for up to MaxLag rather than leave it for the moment between the two probes.
package replication
