package leaktest

import (
	"sync"
	"testing"
	"time"
)

// TestTestCodeIsNotOurs: a goroutine running only test code is no leak of
// ours (the synthetic stacks of TestRunsOwnCode cover the goroutines that
// are; the proxy and cmd TestMains use Leaked on real ones).
func TestTestCodeIsNotOurs(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { <-stop })
	defer func() { close(stop); wg.Wait() }()
	if left := Leaked("", 100*time.Millisecond); len(left) != 0 {
		t.Errorf("Leaked found %d goroutines of test code:\n%v", len(left), left)
	}
}

// TestRunsOwnCode: frames in test files do not count; a created-by line does.
func TestRunsOwnCode(t *testing.T) {
	for _, tc := range []struct {
		stack string
		want  bool
	}{
		{"goroutine 7 [IO wait]:\nnet.(*conn).Read(...)\n\t/go/src/net/net.go:1 +0x1\nexample.com/m/proxy.(*session).serve()\n\t/m/proxy/session.go:12 +0x2", true},
		{"goroutine 8 [chan receive]:\nexample.com/m/proxy.startFake.func1()\n\t/m/proxy/fake_test.go:40 +0x3", false},
		{"goroutine 9 [select]:\nmain.loop()\n\t/m/cmd/x/loop_test.go:3 +0x1\ncreated by example.com/m/proxy.New in goroutine 1\n\t/m/proxy/server.go:99 +0x4", true},
		{"goroutine 10 [sleep]:\ntime.Sleep(0x1)\n\t/go/src/runtime/time.go:5 +0x1", false},
	} {
		if got := runsOwnCode(tc.stack, "/m/proxy/"); got != tc.want {
			t.Errorf("runsOwnCode(%q) = %v, want %v", tc.stack, got, tc.want)
		}
	}
}
