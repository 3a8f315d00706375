package syncer

import (
	"context"
	"testing"
	"time"
)

// Retire deregisters what the remove predicate selects and only releases
// the rest (left registered for the task that takes them over).
func TestEngineRetire(t *testing.T) {
	h := newHarness(t, nil)
	h.start()
	h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 20880, 100), prov("org.Foo", "10.0.0.2", 20880, 100))
	h.src.set("org.Bar", prov("org.Bar", "10.0.0.3", 20880, 100))
	const barName = "providers:org.Bar::"
	eventually(t, "all registered", func() bool { return h.reg.count(fooName) == 2 && h.reg.count(barName) == 1 })
	h.idle()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.e.Retire(ctx, func(s string) bool { return s == "org.Foo" }); err != nil {
		t.Fatal(err)
	}
	if n := h.reg.count(fooName); n != 0 {
		t.Fatalf("after Retire, %s has %d instances, want 0 (deregistered)", fooName, n)
	}
	if n := h.reg.count(barName); n != 1 {
		t.Fatalf("after Retire, %s has %d instances, want 1 (released, not deregistered)", barName, n)
	}
	if h.reg.beatCount() != 0 {
		t.Fatalf("after Retire the client still beats %d instances", h.reg.beatCount())
	}
	// Stop after Retire does nothing more.
	if err := h.e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// A Keep that failed may still be beaten by the client (it keeps the set
// and retries): Retire deregisters that set and Stop releases it.
func TestEngineRetireAfterFailedKeep(t *testing.T) {
	for _, retire := range []bool{true, false} {
		h := newHarness(t, nil)
		h.reg.mu.Lock()
		h.reg.keepFailKept = 1
		h.reg.mu.Unlock()
		h.start()
		h.src.set("org.Foo", prov("org.Foo", "10.0.0.1", 20880, 100))
		eventually(t, "the failed Keep", func() bool { return h.events.count(EventApplyFailed) == 1 })
		h.idle()
		if h.reg.beatCount() != 1 {
			t.Fatalf("the fake client beats %d instances after the failed Keep, want 1", h.reg.beatCount())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		if retire {
			err = h.e.Retire(ctx, func(string) bool { return true })
		} else {
			err = h.e.Stop(ctx)
		}
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if h.reg.beatCount() != 0 {
			t.Fatalf("retire=%v: the client still beats %d instances of a failed Keep", retire, h.reg.beatCount())
		}
		if n := h.reg.count(fooName); (retire && n != 0) || (!retire && n != 1) {
			t.Fatalf("retire=%v: %d instances registered after the stop", retire, n)
		}
	}
}
