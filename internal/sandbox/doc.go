// Package sandbox starts a throwaway MariaDB replication topology for Switchyard's tests,
// benchmarks, demo and the `switchyard sandbox` command: one primary and N replicas, each a
// local mariadbd process with its own temporary data directory, listening on a free
// loopback port and replicating from the primary with GTIDs (MASTER_USE_GTID=slave_pos).
//
// Start returns once every replica's I/O and SQL threads run and every replica has applied
// the primary's binlog, so the users it creates (root, the replication user, the monitor
// user and the application users from Options) exist on every server. Close kills the
// servers and removes their directories.
//
// Nothing is left behind when a test fails or the process dies: servers run in their own
// process group with a parent-death signal (SIGKILL), Main installs a SIGINT/SIGTERM
// handler that tears down before exiting, and Start removes sandbox directories whose
// owning process (named in the directory) is gone.
//
// In tests, Main starts one shared sandbox per package and Require hands it to each test;
// when no server binaries are installed the tests skip, unless SWITCHYARD_REQUIRE_SANDBOX=1
// (set in CI) turns the skip into a failure.
package sandbox
