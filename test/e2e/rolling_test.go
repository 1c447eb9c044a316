package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRollingRestartZeroDowntime replaces both application servers, one at a
// time, with deploy/scripts/rolling-restart.sh while a steady loop of reads
// and writes (Flask and Django) runs through the virtual IP. This is the
// zero-downtime deployment claim: no request may fail.
func TestRollingRestartZeroDowntime(t *testing.T) {
	requireStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	defer ensureRunning(t, "app1")
	defer ensureRunning(t, "app2")

	before := map[string]string{}
	for _, svc := range []string{"app1", "app2"} {
		id, err := composeOutput(ctx, "ps", "-q", svc)
		if err != nil {
			t.Fatal(err)
		}
		before[svc] = strings.TrimSpace(id)
	}

	l := startLoad(2, 20*time.Millisecond, 10*time.Second, mixedRequests)
	if err := l.waitRequests(20, 30*time.Second); err != nil {
		l.stop()
		t.Fatal(err)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot, "deploy/scripts/rolling-restart.sh"), "app1", "app2")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "COMPOSE_BAKE=false")
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		l.stop()
		t.Fatalf("rolling-restart.sh: %v\n%s", err, out)
	}
	// Both new application servers take their share after the restart.
	if err := l.waitRequests(40, time.Minute); err != nil {
		l.stop()
		t.Fatal(err)
	}
	outs := l.stop()
	s := summarize(outs)
	t.Logf("ROLLING RESTART of app1 and app2 took %s under load: %s", took.Round(100*time.Millisecond), s)
	t.Logf("rolling-restart.sh output:\n%s", out)
	if s.failed > 0 {
		t.Errorf("%d of %d requests failed during the rolling restart; first: %s", s.failed, s.total, strings.Join(s.firstErrors, "; "))
	}
	for svc, old := range before {
		id, err := composeOutput(ctx, "ps", "-q", svc)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(id) == old {
			t.Errorf("%s still runs container %.12s: it was not replaced", svc, old)
		}
	}
	var after []outcome
	for _, o := range outs {
		if o.at.After(start.Add(took)) {
			after = append(after, o)
		}
	}
	if sa := summarize(after); sa.appServers["app1"] == 0 || sa.appServers["app2"] == 0 {
		t.Errorf("after the restart, application servers used: %v, want both app1 and app2", sa.appServers)
	}
}
