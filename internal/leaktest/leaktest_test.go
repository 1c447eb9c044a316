package leaktest

import (
	"sync"
	"testing"
	"time"
)

// TestFindsOwnGoroutines runs this package's own code on two goroutines:
// each runs Leaked, which sees the other and so waits out its time. Own
// finds both; once they have returned, nothing.
func TestFindsOwnGoroutines(t *testing.T) {
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { Leaked("internal/leaktest/", 300*time.Millisecond) })
	}
	time.Sleep(50 * time.Millisecond)
	if left := Own("internal/leaktest/"); len(left) != 2 {
		t.Errorf("Own found %d goroutines running this package's code, want the 2 running Leaked:\n%v", len(left), left)
	}
	wg.Wait()
	if left := Leaked("internal/leaktest/", time.Second); len(left) != 0 {
		t.Errorf("after they returned, Leaked found %d goroutines:\n%v", len(left), left)
	}
	if left := Own("no/such/dir/"); len(left) != 0 {
		t.Errorf("Own of a directory without code found %v", left)
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
