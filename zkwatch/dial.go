package zkwatch

import (
	"net"
	"time"

	"github.com/go-zookeeper/zk"
)

// Dialer is the go-zookeeper dialer for a session of sessionTimeout: a TCP
// dial whose connections cap every deadline the client sets at its receive
// timeout (2/3 of the session timeout, as go-zookeeper computes it).
//
// go-zookeeper gives the connect handshake ten receive timeouts (6.7× the
// session timeout). A server that accepts the connection and never answers
// the handshake, as a ZooKeeper whose JVM is still starting may, then holds
// the client far past its session's expiry instead of letting it redial:
// after a ZooKeeper restart on a loaded machine a 10 s session waited 67 s
// and expired, ephemeral nodes and all. With the cap the handshake gives up
// after one receive timeout and the client tries again while the session
// lives. The client's other deadlines are one receive timeout already, so
// the cap leaves them as they are. The cap is never below minHandshake, so
// that a short session on a loaded machine still completes a slow
// handshake.
func Dialer(sessionTimeout time.Duration) zk.Dialer {
	limit := max(sessionTimeout*2/3, minHandshake)
	return func(network, address string, timeout time.Duration) (net.Conn, error) {
		c, err := net.DialTimeout(network, address, timeout)
		if err != nil {
			return nil, err
		}
		return cappedConn{Conn: c, limit: limit}, nil
	}
}

// minHandshake is the least time a handshake is given.
const minHandshake = 5 * time.Second

// cappedConn is a connection whose deadlines are at most limit from the
// moment they are set (a zero deadline, none, stays none).
type cappedConn struct {
	net.Conn
	limit time.Duration
}

func (c cappedConn) capped(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	if latest := time.Now().Add(c.limit); t.After(latest) {
		return latest
	}
	return t
}

func (c cappedConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.capped(t)) }

func (c cappedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.capped(t))
}

func (c cappedConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.capped(t))
}
