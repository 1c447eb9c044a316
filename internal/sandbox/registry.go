package sandbox

import (
	"context"
	"errors"
	"sync"
)

// errInterrupted fails a Start begun after CloseAll.
var errInterrupted = errors.New("sandbox: process is shutting down")

// registry tracks every sandbox of this process so a signal handler can remove them
// all, including private ones from New and ones still starting.
var registry = struct {
	mu          sync.Mutex
	live        map[*Sandbox]bool
	starting    sync.WaitGroup // Starts in progress
	interrupted bool           // CloseAll has begun; no new Starts
}{live: map[*Sandbox]bool{}}

// abortStarts is cancelled by CloseAll; every Start's context derives from it.
var abortStarts, abortAll = context.WithCancel(context.Background())

// beginStart registers a Start in progress and returns its context, which CloseAll
// cancels, and a function to call when Start returns.
func beginStart(ctx context.Context) (context.Context, func(), error) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.interrupted {
		return nil, nil, errInterrupted
	}
	registry.starting.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(abortStarts, cancel)
	return ctx, func() {
		stop()
		cancel()
		registry.starting.Done()
	}, nil
}

func register(sb *Sandbox) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	registry.live[sb] = true
}

func unregister(sb *Sandbox) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	delete(registry.live, sb)
}

// CloseAll aborts Starts in progress (which clean up after themselves), waits for them,
// then closes every open sandbox. Later Starts fail. Signal handlers call it before exit.
func CloseAll() error {
	registry.mu.Lock()
	registry.interrupted = true
	registry.mu.Unlock()
	abortAll()
	registry.starting.Wait()

	registry.mu.Lock()
	var open []*Sandbox
	for sb := range registry.live {
		open = append(open, sb)
	}
	registry.mu.Unlock()
	var errs []error
	for _, sb := range open {
		errs = append(errs, sb.Close())
	}
	return errors.Join(errs...)
}
