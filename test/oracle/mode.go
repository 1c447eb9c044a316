package oracle

import "github.com/switchyard-db/switchyard/router"

// sessionMode returns the router.Mode for a session whose @@sql_mode and
// @@character_set_client are given, as the proxy passes it to ClassifyMode.
func sessionMode(sqlMode, charset string) router.Mode {
	return router.ModeForSQLMode(sqlMode) | router.ModeForCharset(charset)
}
