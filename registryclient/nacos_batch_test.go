package registryclient

import (
	"errors"
	"testing"
	"time"

	registryserver "github.com/ferrysync/ferry/registry-server"
)

// TestRealServerWithoutBatchBeatRedoesBatches: against the in-repo server
// with the batch-beat extension off (as a real Nacos 2.x), the client knows
// from the server check that merged beats are unavailable; BatchRegister'd
// lists are bound to the connection, so the server drops them when the
// connection goes, and the client's redo registers them again on the next
// connection. A list emptied with BatchRegister is not redone.
func TestRealServerWithoutBatchBeatRedoesBatches(t *testing.T) {
	r := startRealWith(t, func(c *registryserver.Config) { c.GRPC.FerryBatchBeat = false })
	c := startClient(t, testConfig(t, r.addr))
	ctx := ctxT(t, 30*time.Second)
	eventually(t, "connected", func() bool { return c.ConnectionID() != "" })
	if ok, known := c.BatchBeatSupported(); ok || !known {
		t.Fatalf("capability = %v (known %v), want known unsupported", ok, known)
	}
	if err := c.Keep(ctx, demo, instances(1, "10.1")); !errors.Is(err, ErrNoBatchBeat) {
		t.Fatalf("Keep = %v, want ErrNoBatchBeat", err)
	}
	a, b := ServiceRef{Name: "providers:a"}, ServiceRef{Name: "providers:b"}
	if err := c.BatchRegister(ctx, a, instances(3, "10.2")); err != nil {
		t.Fatal(err)
	}
	if err := c.BatchRegister(ctx, b, instances(2, "10.3")); err != nil {
		t.Fatal(err)
	}
	if err := c.BatchRegister(ctx, b, nil); err != nil { // empty: deregisters b's batch
		t.Fatal(err)
	}
	if got := r.hosts(t, a); got != 3 {
		t.Fatalf("a has %d hosts, want 3", got)
	}
	if got := r.hosts(t, b); got != 0 {
		t.Fatalf("b has %d hosts after an empty batch, want 0", got)
	}

	// The server closes the connection (ConnectResetRequest): the batch goes
	// with it and comes back by the redo on the next connection.
	for round := 0; round < 3; round++ {
		old := c.ConnectionID()
		if err := r.s.GRPC().ResetConnection(ctx, old, "", 0); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a new connection", func() bool { id := c.ConnectionID(); return id != "" && id != old })
		eventually(t, "old connection dropped", func() bool {
			for _, conn := range r.s.GRPC().Connections() {
				if conn.ID == old {
					return false
				}
			}
			return true
		})
		eventually(t, "the batch redone on the new connection", func() bool { return r.hosts(t, a) == 3 })
		if got := r.hosts(t, b); got != 0 {
			t.Fatalf("round %d: the emptied batch of b came back: %d hosts", round, got)
		}
	}
}
