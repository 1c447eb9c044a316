package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLoadBalancerFailover stops the load balancer that holds the virtual IP
// (lb1 on a fresh stack) under a steady request loop and measures how long
// the site is unreachable: first with `docker compose stop` (keepalived
// hands the address over and HAProxy finishes what it has), then with
// `docker compose kill` (a crash: the backup takes over when adverts stop).
// Each time, requests must succeed again through the other load balancer
// within maxFailover. Requests in flight on the stopped load balancer when
// the address moves are lost (their connections now lead to the other one),
// so failures are counted and reported, not forbidden.
func TestLoadBalancerFailover(t *testing.T) {
	requireStack(t)
	const maxFailover = 10 * time.Second
	waitHealthy(t, time.Minute, "lb1", "lb2")
	for _, how := range []string{"stop", "kill"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			holder, err := vipHolder(ctx)
			if err != nil {
				t.Fatalf("who holds the virtual IP: %v", err)
			}
			other := map[string]string{"lb1": "lb2", "lb2": "lb1"}[holder]
			if other == "" {
				t.Fatalf("virtual IP answered by %q, want lb1 or lb2", holder)
			}
			defer ensureRunning(t, holder)

			// Three workers: a request caught in flight on the stopped load
			// balancer (it times out) does not hide how soon others succeed.
			l := startLoad(3, 20*time.Millisecond, 2*time.Second, []request{mixedRequests[0], mixedRequests[1]})
			if err := l.waitRequests(20, 30*time.Second); err != nil {
				l.stop()
				t.Fatal(err)
			}
			// A prober asks on a fresh connection every 10ms, giving up on
			// each after 150ms: it sees when the address answers again,
			// which the load's requests may not show at once (a connection
			// attempt made while the address led nowhere waits out TCP's
			// one-second SYN retransmission).
			probed := make(chan time.Time, 1)
			pctx, pcancel := context.WithCancel(ctx)
			defer pcancel()
			go func() {
				defer close(probed)
				for pctx.Err() == nil {
					if lb, err := vipHolderWithin(pctx, 150*time.Millisecond); err == nil && lb == other {
						probed <- time.Now()
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
			cmdStart := time.Now()
			out, err := compose(ctx, how, holder)
			if err != nil {
				l.stop()
				t.Fatalf("docker compose %s %s: %v\n%s", how, holder, err, out)
			}
			cmdTook := time.Since(cmdStart)
			// Wait for the other load balancer to serve, then a little more.
			recovered := eventually(maxFailover+5*time.Second, 50*time.Millisecond, func() error {
				l.mu.Lock()
				defer l.mu.Unlock()
				for _, o := range l.outcomes {
					if o.err == nil && o.at.After(cmdStart) && o.resp.LoadBalancer == other {
						return nil
					}
				}
				return fmt.Errorf("no request served by %s yet", other)
			})
			if recovered == nil {
				recovered = l.waitRequests(20, 30*time.Second)
			}
			outs := l.stop()
			if recovered != nil {
				t.Fatalf("after docker compose %s %s: %v (%s)", how, holder, recovered, summarize(outs))
			}

			var firstByOther time.Time
			var failed int
			for _, o := range outs {
				if o.at.Before(cmdStart) {
					continue
				}
				if o.err != nil {
					failed++
				} else if firstByOther.IsZero() && o.resp.LoadBalancer == other {
					firstByOther = o.at.Add(o.latency)
				}
			}
			s := summarize(outs)
			failover := firstByOther.Sub(cmdStart)
			t.Logf("FAILOVER (%s %s -> %s): first success through %s %s after the %s command (which took %s); longest gap between successes %s; %s failed %v",
				how, holder, other, other, failover.Round(time.Millisecond), how, cmdTook.Round(time.Millisecond),
				s.longestGap.Round(time.Millisecond), plural(failed, "request"), s.firstErrors)
			// From the moment the load balancer's container ended (as the
			// daemon recorded it) to the prober's first answer through the
			// other one.
			pcancel()
			answered, ok := <-probed
			ended, err := containerEnded(ctx, holder)
			switch {
			case how != "kill": // a stopped one hands the address over before it ends
			case err != nil:
				t.Logf("when %s ended: %v", holder, err)
			case !ok:
				t.Logf("the prober never had an answer through %s", other)
			default:
				t.Logf("FAILOVER (%s %s -> %s): the address answered through %s %s after %s's container ended",
					how, holder, other, other, answered.Sub(ended).Round(time.Millisecond), holder)
			}
			if s.longestGap > maxFailover {
				t.Errorf("site unreachable for %s, want at most %s; first errors: %s", s.longestGap, maxFailover, strings.Join(s.firstErrors, "; "))
			}

			// The stopped load balancer comes back as the backup: the
			// address stays where it is (nopreempt), so no second move.
			if out, err := compose(ctx, "start", holder); err != nil {
				t.Fatalf("docker compose start %s: %v\n%s", holder, err, out)
			}
			waitHealthy(t, 2*time.Minute, holder)
			state, err := composeOutput(ctx, "exec", "-T", holder, "cat", "/run/keepalived.state")
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(state) != "BACKUP" {
				t.Errorf("%s restarted in keepalived state %q, want BACKUP", holder, strings.TrimSpace(state))
			}
			if now, err := vipHolder(ctx); err != nil || now != other {
				t.Errorf("after %s came back the virtual IP is answered by %q (%v), want %s", holder, now, err, other)
			}
		})
	}
}

// containerEnded returns when the service's container last stopped, as the
// Docker daemon recorded it.
func containerEnded(ctx context.Context, service string) (time.Time, error) {
	id, err := composeOutput(ctx, "ps", "-a", "-q", service)
	if err != nil {
		return time.Time{}, err
	}
	out, err := exec.CommandContext(ctx, "docker", "inspect", "-f", "{{.State.FinishedAt}}", strings.TrimSpace(id)).Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("docker inspect %s: %w", strings.TrimSpace(id), err)
	}
	return time.Parse(time.RFC3339Nano, strings.TrimSpace(string(out)))
}
