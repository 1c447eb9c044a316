package test

import "github.com/switchyard-db/switchyard/internal/sandbox"

// SQL that differs between the sandbox's engines, for workloads that must
// prove the same thing on both. Each difference is the server's, not
// Switchyard's: direct runs on the same engine are the reference.

// inTransactionSQL returns an expression that is 1 while the session has a
// transaction open (START TRANSACTION, BEGIN, or autocommit off after a
// statement) and 0 otherwise. MariaDB has @@in_transaction. MySQL has no such
// variable; performance_schema records the session's current transaction, and
// an explicit one is the ACTIVE transaction that did not start in autocommit
// mode (the statement reading it runs in an autocommitted one of its own).
func inTransactionSQL(sb *sandbox.Sandbox) string {
	if sb.Flavor == sandbox.FlavorMySQL {
		return "(SELECT COUNT(*) FROM performance_schema.events_transactions_current " +
			"WHERE thread_id = PS_CURRENT_THREAD_ID() AND state = 'ACTIVE' AND autocommit = 'NO')"
	}
	return "@@in_transaction"
}
