package zkwatch

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// TestDialerUnansweredHandshake: a server that accepts and never answers
// (a ZooKeeper still starting) costs the client one receive timeout per
// try, not ten, so it redials while its session lives.
func TestDialerUnansweredHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	raw, err := Dialer(300*time.Millisecond)("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if got := raw.(cappedConn).limit; got != minHandshake {
		t.Fatalf("cap for a 300 ms session = %v, want the floor %v", got, minHandshake)
	}
	if got := Dialer(30 * time.Second); got == nil {
		t.Fatal("no dialer")
	}
	c := cappedConn{Conn: raw.(cappedConn).Conn, limit: 200 * time.Millisecond}
	// What go-zookeeper's handshake sets: ten receive timeouts.
	if err := c.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(make([]byte, 4))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from a silent server: %v, want a deadline error", err)
	}
	// No deadline stays no deadline; an earlier one is kept.
	if !c.capped(time.Time{}).IsZero() {
		t.Fatal("the zero deadline was capped")
	}
	early := time.Now().Add(time.Millisecond)
	if got := c.capped(early); !got.Equal(early) {
		t.Fatalf("an earlier deadline moved: %v -> %v", early, got)
	}
	var _ zk.Dialer = Dialer(time.Second)
}
