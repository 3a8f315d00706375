package procstat

import (
	"os"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	pid := os.Getpid()
	c0, err := CPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); { // burn CPU to see it counted
	}
	c1, err := CPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if c1 < c0 || c1 == 0 {
		t.Fatalf("CPU went %v → %v", c0, c1)
	}
	rss, peak, err := Mem(pid)
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 1<<20 || peak < rss {
		t.Fatalf("rss %d peak %d", rss, peak)
	}
	if _, err := CPU(1 << 30); err == nil {
		t.Fatal("CPU of no process: no error")
	}
}
