package ratelimit

import (
	"testing"
	"time"
)

func TestKeyedBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	k := NewKeyed(2, 3, 2)
	for i := 0; i < 3; i++ {
		if !k.Allow("a", t0) {
			t.Fatalf("burst token %d refused", i)
		}
	}
	if k.Allow("a", t0) {
		t.Fatal("4th token at once allowed")
	}
	for i := 0; i < 3; i++ {
		if !k.Allow("b", t0) {
			t.Fatal("another key shares a's bucket")
		}
	}
	if !k.Allow("a", t0.Add(500*time.Millisecond)) || k.Allow("a", t0.Add(500*time.Millisecond)) {
		t.Fatal("refill at 2/s: one token after 500ms")
	}
	// Two keys tracked, both partly empty: a third key is refused...
	if k.Allow("c", t0.Add(500*time.Millisecond)) {
		t.Fatal("key beyond MaxKeys allowed while no bucket is full")
	}
	// ...until the others have refilled and can be forgotten.
	if !k.Allow("c", t0.Add(3*time.Second)) || k.Len() != 1 {
		t.Fatalf("after refill: len %d", k.Len())
	}
	if !NewKeyed(0, 1, 1).Allow("x", t0) {
		t.Fatal("rate 0 is unlimited")
	}
}
