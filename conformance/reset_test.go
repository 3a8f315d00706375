//go:build !race

// The SDK v2.3.5 has a data race in its own reconnect path
// (RpcClient.reconnect vs notifyConnectionEvent, fixed upstream after
// v2.3.5, nacos-sdk-go #833), so under -race this test would fail on the
// SDK, not on Ferry: it runs in plain `go test` only
// (cd conformance && go test -run ConnectReset ./...).

package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestConnectResetMovesSDKClient: ConnectResetRequest with a server address
// makes the SDK reconnect (a new connection id) and redo its registration.
func TestConnectResetMovesSDKClient(t *testing.T) {
	s := startRegistry(t)
	c := newClient(t, s)
	check(t)(c.RegisterInstance(reg("10.0.0.1", 1, "reset")))
	conns := s.GRPC().Connections()
	if len(conns) != 1 {
		t.Fatalf("connections: %+v", conns)
	}
	old := conns[0].ID
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.GRPC().ResetConnection(ctx, old, "127.0.0.1", int(port(s.HTTPAddr()))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new connection with the instance redone", func() (bool, string) {
		now := s.GRPC().Connections()
		for _, ci := range now {
			if ci.ID == old {
				return false, "old connection still open"
			}
		}
		h := serverHosts(s, "reset", false)
		return len(now) == 1 && h == "10.0.0.1:1", fmt.Sprintf("%d connections, hosts %q", len(now), h)
	})
}
