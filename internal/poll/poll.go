// Package poll is the tests' one way to wait for a condition: check it at
// an interval until it holds or a deadline passes, never a bare sleep as
// synchronisation. Every package's tests use it (directly, or through a
// one-line wrapper that fixes their usual deadline).
package poll

import (
	"testing"
	"time"
)

// Interval is how often Until checks.
const Interval = 10 * time.Millisecond

// Until checks cond every Interval until it holds and returns how long
// that took; once d has passed it fails t (Fatalf, naming what). Call it
// from the test's goroutine.
func Until(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Every(t, d, Interval, what, cond)
}

// Every is Until checking every interval instead (a checker that samples
// a registry as consumers do, every 100 ms; a benchmark that measures with
// the wait).
func Every(t testing.TB, d, interval time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(interval) // the polling interval, not synchronisation
	}
	return time.Since(start)
}
