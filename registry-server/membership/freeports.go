package membership

import (
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
)

// ErrNoPorts: no free set of member ports was found.
var ErrNoPorts = errors.New("membership: no free member ports")

// FreePorts finds n main ports on host, prefer first (0: any), spaced 10
// apart, whose derived ports (SDK gRPC, cluster, Raft) can all be bound
// now: for tests and the demo's local cluster. The ports are free when
// checked, not reserved.
func FreePorts(host string, n, prefer int) ([]int, error) {
	free := func(p int) bool {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	try := func(base int) []int {
		var out []int
		for i := 0; i < n; i++ {
			p := base + 10*i
			if CheckPort(p) != nil {
				return nil
			}
			for _, q := range []int{p, p + SDKGRPCOffset, p + ClusterOffset, p + RaftOffset} {
				if !free(q) {
					return nil
				}
			}
			out = append(out, p)
		}
		return out
	}
	if prefer != 0 {
		if out := try(prefer); out != nil {
			return out, nil
		}
	}
	for i := 0; i < 200; i++ {
		if out := try(21000 + rand.IntN(20000)); out != nil {
			return out, nil
		}
	}
	return nil, ErrNoPorts
}
