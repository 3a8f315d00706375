// Package testlog routes slog output to a test's log (t.Log), so that a
// test's own logs show only when it fails or runs with -v. For tests and
// the test launchers in internal/.
package testlog

import (
	"log/slog"
	"strings"
	"testing"
)

// New returns a text logger at level writing each record to t.Log.
func New(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(writer{t}, &slog.HandlerOptions{Level: level}))
}

// writer is an io.Writer that logs each write through t.Log.
type writer struct{ t testing.TB }

func (w writer) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
