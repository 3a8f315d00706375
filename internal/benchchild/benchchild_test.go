package benchchild

import (
	"context"
	"errors"
	"testing"
)

func TestAskAndStop(t *testing.T) {
	c, err := Start(context.Background(), "sh", "-c", `echo hello; while read l; do echo "got $l"; done`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hello != "hello" || c.Pid() <= 0 {
		t.Fatalf("Hello %q, Pid %d", c.Hello, c.Pid())
	}
	if got, err := c.Ask("x"); err != nil || got != "got x" {
		t.Fatalf("Ask = %q, %v", got, err)
	}
	c.Stop()
	c.Stop() // idempotent
	if _, err := c.Ask("y"); err == nil {
		t.Fatal("Ask after Stop succeeded")
	}
}

// A child that ignores its stdin (as `ferry registry` does) ends on the
// SIGTERM that Stop sends.
func TestStopSignalsAChildIgnoringStdin(t *testing.T) {
	c, err := Start(context.Background(), "sh", "-c", `echo up; exec sleep 600`)
	if err != nil {
		t.Fatal(err)
	}
	c.Stop()
	select {
	case <-c.done:
	default:
		t.Fatal("child still running after Stop")
	}
}

func TestNoGreeting(t *testing.T) {
	_, err := Start(context.Background(), "sh", "-c", `exit 3`)
	if err == nil {
		t.Fatal("a child that printed nothing started")
	}
	if errors.Is(err, ErrGone) {
		t.Fatal("wrong error")
	}
}
