package replication

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// gtids is what a server has applied, parsed: a MariaDB position (one GTID
// per replication domain) or a MySQL GTID set.
type gtids struct {
	set   mysql.GTIDSet
	count uint64 // transactions: sequence numbers summed over domains, or set size
}

// parseGTIDs parses text as the flavour writes it; "" is the empty set.
func parseGTIDs(flavor, text string) (gtids, error) {
	f := mysql.MySQLFlavor
	if flavor == FlavorMariaDB {
		f = mysql.MariaDBFlavor
	}
	set, err := mysql.ParseGTIDSet(f, text)
	if err != nil {
		return gtids{}, fmt.Errorf("GTIDs %q: %w", text, err)
	}
	g := gtids{set: set}
	switch s := set.(type) {
	case *mysql.MariadbGTIDSet:
		for _, id := range s.Sets {
			g.count += id.SequenceNumber
		}
	case *mysql.MysqlGTIDSet:
		for _, tags := range *s {
			for _, intervals := range tags {
				for _, iv := range intervals {
					g.count += uint64(iv.Stop - iv.Start) // Stop is exclusive
				}
			}
		}
	}
	return g, nil
}

// compareGTIDs orders two servers by what they have applied: 1 when a has
// everything b has and more, -1 the other way round, 0 when they hold the
// same. Sets where each has something the other lacks (errant
// transactions) are ordered by size; sameOrder reports whether one set
// contains the other.
func compareGTIDs(a, b gtids) (order int, sameOrder bool) {
	ab, ba := a.set.Contain(b.set), b.set.Contain(a.set)
	switch {
	case ab && ba:
		return 0, true
	case ab:
		return 1, true
	case ba:
		return -1, true
	case a.count > b.count:
		return 1, false
	case a.count < b.count:
		return -1, false
	}
	return 0, false
}

// applied returns the GTIDs a backend has applied, as the monitor last read
// them: MariaDB's gtid_current_pos (its own binlog and what it replicated),
// else gtid_slave_pos; MySQL's gtid_executed.
func (b BackendStatus) applied() string {
	if b.Flavor == FlavorMariaDB {
		if b.GTIDCurrentPos != "" {
			return b.GTIDCurrentPos
		}
		return b.GTIDSlavePos
	}
	return b.GTIDExecuted
}
