package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"
)

// request is one kind of request the steady load sends.
type request struct {
	method, path string
	status       int
}

// mixedRequests reads and writes through both frameworks.
var mixedRequests = []request{
	{http.MethodGet, "/", http.StatusOK},
	{http.MethodPost, "/visits", http.StatusCreated},
	{http.MethodGet, "/django/", http.StatusOK},
	{http.MethodPost, "/django/visits", http.StatusCreated},
}

// outcome is one request's result.
type outcome struct {
	req     request
	at      time.Time
	latency time.Duration
	resp    *appResponse
	err     error
}

// load sends a steady stream of requests to the site from a few workers,
// each waiting pause between its requests, until stopped.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	outcomes []outcome
}

// startLoad starts workers that cycle through reqs with the given
// per-request timeout. Stop it with stop.
func startLoad(workers int, pause, timeout time.Duration, reqs []request) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			c := newSiteClient(timeout)
			for i := w; ctx.Err() == nil; i++ {
				r := reqs[i%len(reqs)]
				start := time.Now()
				resp, err := siteDo(ctx, c, r.method, r.path, r.status)
				if ctx.Err() != nil {
					return // stopped mid-request: not a result
				}
				l.mu.Lock()
				l.outcomes = append(l.outcomes, outcome{req: r, at: start, latency: time.Since(start), resp: resp, err: err})
				l.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}(w)
	}
	return l
}

// stop ends the load and returns every outcome in start order.
func (l *load) stop() []outcome {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]outcome(nil), l.outcomes...)
	sort.Slice(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// count returns how many requests have finished so far and how many failed.
func (l *load) count() (total, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.outcomes {
		if o.err != nil {
			failed++
		}
	}
	return len(l.outcomes), failed
}

// waitRequests waits until at least n more requests have finished.
func (l *load) waitRequests(n int, timeout time.Duration) error {
	start, _ := l.count()
	return eventually(timeout, 50*time.Millisecond, func() error {
		if total, _ := l.count(); total < start+n {
			return fmt.Errorf("%d of %d requests finished", total-start, n)
		}
		return nil
	})
}

// summary describes a run of outcomes.
type summary struct {
	total, failed int
	maxLatency    time.Duration
	firstErrors   []string
	// longestGap is the longest time between two successful requests.
	longestGap time.Duration
	// appServers, webServers and loadBalancers count who served the successes.
	appServers, webServers, loadBalancers map[string]int
}

func summarize(outs []outcome) summary {
	s := summary{appServers: map[string]int{}, webServers: map[string]int{}, loadBalancers: map[string]int{}}
	var lastOK time.Time
	for _, o := range outs {
		s.total++
		if o.latency > s.maxLatency {
			s.maxLatency = o.latency
		}
		if o.err != nil {
			s.failed++
			if len(s.firstErrors) < 5 {
				s.firstErrors = append(s.firstErrors, o.at.Format("15:04:05.000")+" "+o.err.Error())
			}
			continue
		}
		end := o.at.Add(o.latency)
		if !lastOK.IsZero() && end.Sub(lastOK) > s.longestGap {
			s.longestGap = end.Sub(lastOK)
		}
		if end.After(lastOK) {
			lastOK = end
		}
		s.appServers[o.resp.AppServer]++
		s.webServers[o.resp.WebServer]++
		s.loadBalancers[o.resp.LoadBalancer]++
	}
	return s
}

func (s summary) String() string {
	return fmt.Sprintf("%s, %d failed, max latency %s, longest gap between successes %s; app %v, web %v, lb %v",
		plural(s.total, "request"), s.failed, s.maxLatency.Round(time.Millisecond), s.longestGap.Round(time.Millisecond),
		s.appServers, s.webServers, s.loadBalancers)
}

// plural counts n of noun, a noun whose plural takes an s: "1 request",
// "0 requests", "2 requests".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// dockerOutput runs `docker ARGS...` and returns its standard output.
func dockerOutput(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return string(out), nil
}
