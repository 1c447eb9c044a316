package replication

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-sql-driver/mysql"
)

// observation is the result of one probe of one backend. Once sent to the Run goroutine
// it is never modified.
type observation struct {
	index int       // backend index
	start time.Time // when the probe began
	took  time.Duration
	err   error // the server could not be reached or did not answer in time

	server   serverInfo
	readOnly bool
	gtid     gtidPositions
	repl     *replicaStatus // nil when the server has no replication configured
	replErr  string         // the server refused SHOW REPLICA STATUS (privileges)
	row      heartbeatRow   // heartbeat enabled only
}

// prober probes one backend on its own single connection. Only its run goroutine uses it.
type prober struct {
	index      int
	db         *sql.DB // at most one connection, never shared
	timeout    time.Duration
	interval   time.Duration
	maxBackoff time.Duration
	hbSelect   string // "" when the heartbeat is off
	nudge      <-chan struct{}
}

// newConnector returns a driver connector for the monitor account on b, over TLS when
// b.TLS or Options.TLS says so, with Options.Timeout as its dial and I/O timeout,
// logging driver noise at debug level.
func newConnector(b Server, o Options, log *slog.Logger) (driver.Connector, error) {
	c := mysql.NewConfig()
	c.User, c.Passwd = o.User, o.Password
	c.Net, c.Addr = "tcp", b.Addr
	c.TLS = o.TLS
	if b.TLS != nil {
		c.TLS = b.TLS
		c.AllowFallbackToPlaintext = b.TLSPreferred
		// The driver forgets TLS on the connector's shared config when it falls
		// back; a hook, even one doing nothing, gives each connection a copy, so
		// that a server that offers TLS later gets it.
		if err := c.Apply(mysql.BeforeConnect(func(context.Context, *mysql.Config) error { return nil })); err != nil {
			return nil, err
		}
	}
	c.Timeout, c.ReadTimeout, c.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
	c.InterpolateParams = true // one round trip per statement; the only argument is an integer
	c.Logger = driverLogger{log}
	return mysql.NewConnector(c)
}

// driverLogger sends go-sql-driver's messages (broken connections and the like, which the
// monitor reports itself) to the debug level.
type driverLogger struct{ log *slog.Logger }

func (d driverLogger) Print(v ...any) { d.log.Debug(fmt.Sprint(v...), "source", "mysql driver") }

// openSingle opens a pool of at most one connection, kept open between uses.
func openSingle(c driver.Connector) *sql.DB {
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return db
}

// run probes until ctx ends, sending each observation to out, then closes the
// connection. Probes start every interval, backing off while the server is unreachable;
// a nudge starts one at once.
func (p *prober) run(ctx context.Context, out chan<- *observation) {
	defer p.db.Close()
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-p.nudge:
		}
		obs := p.probe(ctx)
		if ctx.Err() != nil {
			return // a probe cut short by shutdown says nothing about the server
		}
		select {
		case out <- obs:
		case <-ctx.Done():
			return
		}
		if obs.err != nil {
			failures++
		} else {
			failures = 0
		}
		timer.Reset(max(0, probeDelay(p.interval, p.maxBackoff, failures)-time.Since(obs.start)))
	}
}

// probe runs one check under the probe deadline. Errors the server returns for a single
// statement (privileges, a missing heartbeat table) are recorded and the probe goes on;
// any other error means the server is unreachable.
func (p *prober) probe(ctx context.Context) *observation {
	obs := &observation{index: p.index, start: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	obs.err = p.check(ctx, obs)
	obs.took = time.Since(obs.start)
	// Judged by the clock rather than ctx.Err: the driver's own I/O deadline may end a
	// read before the context's timer has fired.
	if obs.err != nil && obs.took >= p.timeout {
		obs.err = fmt.Errorf("no answer within %s: %w", p.timeout, obs.err)
	}
	return obs
}

func (p *prober) check(ctx context.Context, obs *observation) error {
	// Connecting before the first statement tells a refused login (wrong password,
	// missing account, too many connections) from a server that does not answer.
	conn, err := p.db.Conn(ctx)
	if err != nil {
		if isServerError(err) {
			return fmt.Errorf("%w: %w", errLoginRefused, err)
		}
		return err
	}
	defer conn.Close() // back to p.db, which keeps it for the next probe

	var version, comment, ro string
	err = conn.QueryRowContext(ctx, "SELECT @@version, @@version_comment, @@GLOBAL.read_only").
		Scan(&version, &comment, &ro)
	if err != nil {
		return err
	}
	if obs.server, err = parseServerInfo(version, comment); err != nil {
		return err
	}
	obs.readOnly = parseReadOnly(ro)

	if err := readGTID(ctx, conn, obs); err != nil && !isServerError(err) {
		return err
	}
	switch rs, err := readReplicaStatus(ctx, conn, obs.server); {
	case err == nil:
		obs.repl = rs
	case isServerError(err):
		obs.replErr = err.Error()
	default:
		return err
	}
	if p.hbSelect != "" {
		var us int64
		err := conn.QueryRowContext(ctx, p.hbSelect).Scan(&us)
		obs.row.readAt = time.Now()
		switch {
		case err == nil:
			obs.row.ok, obs.row.ts = true, time.UnixMicro(us)
		case errors.Is(err, sql.ErrNoRows):
			obs.row.err = "no heartbeat row"
		case isServerError(err):
			obs.row.err = err.Error()
		default:
			return err
		}
	}
	return nil
}

func readGTID(ctx context.Context, conn *sql.Conn, obs *observation) error {
	g := &obs.gtid
	var a, b, c sql.NullString
	if obs.server.flavor == FlavorMariaDB {
		if err := conn.QueryRowContext(ctx, obs.server.gtidSQL()).Scan(&a, &b, &c); err != nil {
			return err
		}
		g.binlogPos, g.currentPos, g.slavePos = a.String, b.String, c.String
		return nil
	}
	if err := conn.QueryRowContext(ctx, obs.server.gtidSQL()).Scan(&a); err != nil {
		return err
	}
	g.executed = a.String
	return nil
}

// readReplicaStatus returns the server's replica status, or nil when it has none. Only the
// default replication connection is read (MariaDB multi-source connections are not).
func readReplicaStatus(ctx context.Context, conn *sql.Conn, si serverInfo) (*replicaStatus, error) {
	rows, err := conn.QueryContext(ctx, si.replicaStatusSQL())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	row := make(map[string]string, len(cols))
	for i, col := range cols {
		if vals[i].Valid {
			row[col] = vals[i].String
		}
	}
	rs := parseReplicaStatus(row)
	return &rs, rows.Close()
}

// errLoginRefused marks a probe whose login the server refused.
var errLoginRefused = errors.New("login refused")

// isServerError reports whether err is an error packet from the server, which answered.
func isServerError(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me)
}

// serverErrorNumber returns the MySQL error number of err, or 0.
func serverErrorNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}
