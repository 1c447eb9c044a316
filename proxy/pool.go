package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// poolKey selects interchangeable connections: same user, same
// protocol-shaping capabilities and same connection character set.
type poolKey struct {
	user      string
	caps      uint32
	collation uint8
}

// PoolOptions bound the connections to one backend for one user. Zero
// means the default for every field; a negative value means none or never
// where the field says so, and the default elsewhere.
type PoolOptions struct {
	// MaxOpen bounds the connections in use plus idle; 0 means 100.
	MaxOpen int
	// MaxIdle bounds the idle connections kept (at most MaxOpen); 0 means
	// 16, negative means none: every connection handed back is closed.
	MaxIdle int
	// IdleTimeout closes idle connections older than this; 0 means 5m,
	// negative means never.
	IdleTimeout time.Duration
	// WaitTimeout bounds how long a session waits for a free slot; 0
	// means 5s.
	WaitTimeout time.Duration
	// Connect bounds dial plus login; 0 means 5s.
	Connect time.Duration
	// ReleaseIdle hands a session's backend connections back to the pool
	// once its client has been idle this long, when the session holds no
	// state that lives only on them (multiplexing). Zero means 50ms;
	// negative means never. While sessions wait for a connection, such
	// sessions hand theirs back after every statement regardless.
	ReleaseIdle time.Duration

	// roundTrip bounds Switchyard's own round trips on the pool's
	// connections (Options.BackendTimeout, set by Options.normalize).
	roundTrip time.Duration
}

// withDefaults applies the defaults PoolOptions documents. Applying them
// twice changes nothing (Update normalizes options New already did).
func (o PoolOptions) withDefaults() PoolOptions {
	if o.MaxOpen <= 0 {
		o.MaxOpen = 100
	}
	if o.MaxIdle == 0 {
		o.MaxIdle = 16
	}
	o.MaxIdle = min(o.MaxIdle, o.MaxOpen) // negative stays: none
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 5 * time.Minute // negative stays: never
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 5 * time.Second
	}
	if o.Connect <= 0 {
		o.Connect = 5 * time.Second
	}
	if o.ReleaseIdle == 0 {
		o.ReleaseIdle = 50 * time.Millisecond
	}
	return o
}

// userPool holds one user's connections to one backend. slots bounds the
// connections open (idle or in use).
type userPool struct {
	backend *Backend
	opts    PoolOptions
	slots   chan struct{}
	// returned wakes a waiter when a connection no waiter can use comes
	// back idle: it may make room by closing it.
	returned chan struct{}
	// waiting counts sessions waiting for a connection: while there are
	// some, sessions hand theirs back after every statement they can.
	waiting atomic.Int32
	// writable: 1 when the server was last seen writable by this pool's
	// user (checkWritable), 0 when not, -1 before the first check;
	// writableAt is when it was checked (unix nanos).
	writable   atomic.Int32
	writableAt atomic.Int64
	user       string

	mu      sync.Mutex
	idle    []*backendConn            // most recently used last
	inUse   map[*backendConn]*session // handed out by acquire, to whom, not yet put back
	waiters []*waiter                 // in acquire, first come first served
	// aimed counts the KILLs on their way to a connection's server thread
	// (see aim): put closes such a connection rather than let it change
	// hands.
	aimed map[*backendConn]int
}

func (b *Backend) pool(user string, opts PoolOptions) *userPool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pools == nil {
		b.pools = make(map[string]*userPool)
	}
	p := b.pools[user]
	if p == nil {
		p = &userPool{backend: b, opts: opts, user: user, slots: make(chan struct{}, opts.MaxOpen), returned: make(chan struct{}, 1)}
		p.writable.Store(-1)
		b.pools[user] = p
	}
	return p
}

// errPoolTimeout is wrapped when no connection slot frees up in time.
var errPoolTimeout = errors.New("backend connection pool exhausted")

// acquire returns a connection for key, idle or new. The caller owns it until
// it hands it back with put. When none is free it waits in line: put hands
// a returned connection straight to the first waiter that can use it.
func (p *userPool) acquire(ctx context.Context, key poolKey, cred *credential, db string, owner *session) (*backendConn, error) {
	var (
		timer *time.Timer
		w     *waiter
	)
	for {
		// An idle connection already holds a slot.
		if bc := p.takeIdle(key, db, owner); bc != nil {
			p.backend.gauge(+1, 0)
			return bc, nil
		}
		select {
		case p.slots <- struct{}{}:
			return p.dial(ctx, key, cred, db, owner)
		default:
		}
		if bc := p.evictUnsuitable(key, db); bc != nil {
			bc.Close()
			<-p.slots
			continue
		}
		if timer == nil {
			timer = time.NewTimer(p.opts.WaitTimeout)
			defer timer.Stop()
			waitStart := time.Now()
			p.backend.countWait()
			p.waiting.Add(1)
			poolWaiters.Add(1)
			defer func() {
				p.waiting.Add(-1)
				poolWaiters.Add(-1)
				p.backend.waited(time.Since(waitStart))
			}()
		}
		if w == nil {
			w = &waiter{key: key, db: db, owner: owner, ch: make(chan *backendConn, 1)}
			if !p.enqueue(w) {
				w = nil
				continue // one came back meanwhile
			}
			p.nudge()
		}
		select {
		case bc := <-w.ch:
			return bc, nil
		case p.slots <- struct{}{}:
			if bc := p.dequeue(w); bc != nil {
				<-p.slots // handed one meanwhile: keep it, give the slot back
				return bc, nil
			}
			return p.dial(ctx, key, cred, db, owner)
		case <-p.returned:
			// A connection of another key came back idle: look again.
			if bc := p.dequeue(w); bc != nil {
				return bc, nil
			}
			w = nil
		case <-timer.C:
			if bc := p.dequeue(w); bc != nil {
				return bc, nil
			}
			return nil, newSQLError(mysql.ER_CON_COUNT_ERROR,
				"switchyard: %w: no connection to %s for user %s freed up within %s (pool.max_open=%d)",
				errPoolTimeout, p.backend.Addr, key.user, p.opts.WaitTimeout, p.opts.MaxOpen)
		case <-ctx.Done():
			if bc := p.dequeue(w); bc != nil {
				p.put(bc)
			}
			return nil, ctx.Err()
		}
	}
}

// waiter is a session waiting in acquire for a connection.
type waiter struct {
	key   poolKey
	db    string
	owner *session
	ch    chan *backendConn // put hands the connection over here
}

// suits reports whether bc can serve w: same key, and no database when w
// has none (a server cannot leave a database once chosen).
func (w *waiter) suits(bc *backendConn) bool {
	return bc.key == w.key && (w.db != "" || bc.db == "")
}

// enqueue puts w in line, unless a suitable idle connection is there now
// (it came back between takeIdle and here): then it reports false.
func (p *userPool) enqueue(w *waiter) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, bc := range p.idle {
		if w.suits(bc) {
			return false
		}
	}
	p.waiters = append(p.waiters, w)
	return true
}

// dequeue takes w out of line. If put handed it a connection meanwhile, it
// returns that connection, which the caller now owns.
func (p *userPool) dequeue(w *waiter) *backendConn {
	p.mu.Lock()
	for i, x := range p.waiters {
		if x == w {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.mu.Unlock()
			return nil
		}
	}
	p.mu.Unlock()
	return <-w.ch // no longer in line: put has sent, or is about to
}

// handOff gives bc, coming back from its session, to the first waiter it
// suits; p.mu is held. It reports whether one took it.
func (p *userPool) handOff(bc *backendConn) bool {
	for i, w := range p.waiters {
		if w.suits(bc) {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			p.use(bc, w.owner)
			w.ch <- bc
			return true
		}
	}
	return false
}

// use records bc as handed out to owner (nil: no session); p.mu is held.
func (p *userPool) use(bc *backendConn, owner *session) {
	if p.inUse == nil {
		p.inUse = make(map[*backendConn]*session)
	}
	p.inUse[bc] = owner
}

// poolWaiters counts the sessions waiting in acquire, over every pool of
// the process: while none wait, a session learns it from one load instead
// of asking each pool it holds a connection of, before every command.
var poolWaiters atomic.Int32

// contended reports whether sessions are waiting for a connection.
func (p *userPool) contended() bool { return p.waiting.Load() > 0 }

// nudge wakes one session that holds a connection of the pool while it
// waits for its client's next command, so that it hands the connection back
// now rather than after pool.release_idle (see handBackWhenIdle).
// Lock order: p.mu, then a session's parkMu (wakeParked).
func (p *userPool) nudge() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.inUse {
		if s != nil && s.wakeParked() {
			return
		}
	}
}

// dial opens a new connection in a slot the caller took; the slot is given
// back if the dial fails.
func (p *userPool) dial(ctx context.Context, key poolKey, cred *credential, db string, owner *session) (*backendConn, error) {
	ctx, cancel := p.backend.dialContext(ctx)
	defer cancel()
	bc, err := dialBackend(ctx, p.backend, key, cred, db, p.opts.Connect)
	if err == nil {
		bc.timeout = p.opts.roundTrip
		if key.caps&mysql.CLIENT_SESSION_TRACK != 0 {
			err = bc.setupTracking()
		}
		if err == nil {
			err = p.backend.learnSQLMode(bc)
		}
		if err != nil {
			bc.Close()
		}
	}
	if err != nil {
		<-p.slots
		return nil, err
	}
	bc.pool = p
	p.mu.Lock()
	p.use(bc, owner)
	p.mu.Unlock()
	p.backend.gauge(+1, 0)
	return bc, nil
}

// takeIdle pops the most recent idle connection for key that is still alive,
// preferring one already in database db. A server cannot leave a database
// once chosen, so a session without one only gets connections without one.
func (p *userPool) takeIdle(key poolKey, db string, owner *session) *backendConn {
	for {
		p.mu.Lock()
		var bc *backendConn
		pick := -1
		for i := len(p.idle) - 1; i >= 0; i-- {
			c := p.idle[i]
			if c.key != key || (db == "" && c.db != "") {
				continue
			}
			if pick < 0 || c.db == db {
				pick = i
			}
			if c.db == db {
				break
			}
		}
		if pick >= 0 {
			bc = p.idle[pick]
			p.idle = append(p.idle[:pick], p.idle[pick+1:]...)
			p.use(bc, owner)
		}
		p.mu.Unlock()
		if bc == nil {
			return nil
		}
		p.backend.gauge(0, -1)
		if bc.alive() {
			return bc
		}
		p.mu.Lock()
		delete(p.inUse, bc)
		p.mu.Unlock()
		bc.Close()
		<-p.slots
	}
}

// evictUnsuitable takes an idle connection that cannot serve a session
// with key and database db out of the pool, to make room: one of another
// key, or one in a database when db is empty (a server cannot leave a
// database). The caller closes it and gives back its slot.
func (p *userPool) evictUnsuitable(key poolKey, db string) *backendConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, bc := range p.idle {
		if bc.key != key || (db == "" && bc.db != "") {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.backend.gauge(0, -1)
			return bc
		}
	}
	return nil
}

// put takes back a connection. Broken connections, and any beyond MaxIdle,
// are closed. The caller has reset the others (resetAndPut), or left them
// as they are for the next session to sync (handBack).
func (p *userPool) put(bc *backendConn) {
	p.mu.Lock()
	delete(p.inUse, bc)
	// A connection a KILL is aimed at must not run the next session's
	// statement when the KILL arrives.
	reusable := !bc.broken && !bc.noPool && p.aimed[bc] == 0
	if reusable && p.handOff(bc) {
		p.mu.Unlock()
		return // still in use, by the next session
	}
	idle := reusable && len(p.idle) < p.opts.MaxIdle
	if idle {
		bc.idleAt = time.Now()
		bc.shrinkBuf()
		p.idle = append(p.idle, bc)
	}
	waiting := len(p.waiters) > 0
	p.mu.Unlock()
	p.backend.gauge(-1, 0)
	if !idle {
		bc.Close()
		<-p.slots
		return
	}
	p.backend.gauge(0, +1)
	if waiting {
		select {
		case p.returned <- struct{}{}:
		default:
		}
	}
}

// discard closes a connection taken with acquire without pooling it.
func (p *userPool) discard(bc *backendConn) {
	bc.broken = true
	p.put(bc)
}

// reap closes idle connections older than the idle timeout, and all of them
// when all is set.
func (p *userPool) reap(now time.Time, all bool) {
	p.mu.Lock()
	var old []*backendConn
	keep := p.idle[:0]
	for _, bc := range p.idle {
		if all || (p.opts.IdleTimeout > 0 && now.Sub(bc.idleAt) > p.opts.IdleTimeout) {
			old = append(old, bc)
		} else {
			keep = append(keep, bc)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	for _, bc := range old {
		p.backend.gauge(0, -1)
		bc.Close()
		<-p.slots
	}
}

// reapIdle runs reap over every pool of the backend.
func (b *Backend) reapIdle(now time.Time, all bool) {
	for _, p := range b.userPools() {
		p.reap(now, all)
	}
}

// userPools returns the backend's pools, one per user, as they are now.
func (b *Backend) userPools() []*userPool {
	b.mu.Lock()
	defer b.mu.Unlock()
	pools := make([]*userPool, 0, len(b.pools))
	for _, p := range b.pools {
		pools = append(pools, p)
	}
	return pools
}

// counts returns the connections in use and idle, over all users.
func (b *Backend) counts() (inUse, idle int) {
	for _, p := range b.userPools() {
		p.mu.Lock()
		n := len(p.idle)
		p.mu.Unlock()
		idle += n
		inUse += len(p.slots) - n
	}
	return inUse, idle
}
