package zkwatch

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestPathQueueCoalescesAndRequeues(t *testing.T) {
	q := newPathQueue()
	q.add("/a")
	q.add("/b")
	q.add("/a") // coalesced
	p, ok := q.get()
	if !ok || p != "/a" {
		t.Fatalf("get = %q %v", p, ok)
	}
	q.add("/a") // while being listed: listed again after done
	p2, _ := q.get()
	if p2 != "/b" {
		t.Fatalf("second get = %q, want /b (a is being processed)", p2)
	}
	q.done("/b")
	q.done("/a")
	p3, _ := q.get()
	if p3 != "/a" {
		t.Fatalf("re-queued = %q", p3)
	}
	q.done("/a")
	if q.busy() != 0 {
		t.Fatalf("busy = %d", q.busy())
	}
	q.close()
	if _, ok := q.get(); ok {
		t.Fatal("get after close")
	}
	q.add("/c") // ignored after close
}

func TestNotifierCoalescesWithoutBlocking(t *testing.T) {
	n := newNotifier()
	quit := make(chan struct{})
	done := make(chan struct{})
	sent := 0
	// Nobody reads: marks must not block.
	for i := 0; i < 1000; i++ {
		n.mark("svc")
		n.mark("other")
	}
	go func() { defer close(done); n.run(quit, func() { sent++ }) }()
	got := map[string]int{}
	for i := 0; i < 2; i++ {
		select {
		case name := <-n.out:
			got[name]++
		case <-time.After(10 * time.Second):
			t.Fatal("no notification")
		}
	}
	if got["svc"] != 1 || got["other"] != 1 {
		t.Fatalf("got %v", got)
	}
	// A mark after delivery is delivered again.
	n.mark("svc")
	if name := <-n.out; name != "svc" {
		t.Fatalf("got %q", name)
	}
	close(quit)
	<-done
	if sent != 3 {
		t.Fatalf("sent = %d", sent)
	}
}

func TestStopLeavesNoGoroutines(t *testing.T) {
	e := newEnv(t)
	addProvider(t, e.c, "dubbo", "com.foo.Leak", provURL("com.foo.Leak", "10.13.0.1", 20880, 1700000000000, ""), true)
	ignore := goleak.IgnoreCurrent()
	cfg := DefaultConfig()
	cfg.Servers = []string{e.srv.Addr()}
	w, err := New(cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "synced", w.Synced)
	gone := make(chan struct{})
	defer close(gone) // the reader ends with the test (TestMain's goleak check)
	// A reader that goes away.
	go func() {
		select {
		case <-w.Changes():
		case <-gone:
		}
	}()
	if err := w.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, ignore, goleak.IgnoreAnyFunction("github.com/ferrysync/ferry/zkwatch.TestStopLeavesNoGoroutines.func1"))
}
