// Package membership is the registry cluster's static member list and
// member health: the list (flags or a cluster.conf file) and its checks,
// the ports each member uses (Nacos' offsets), a pure failure detector
// (UP, SUSPICIOUS, DOWN, LEAVING), the probe loop over the cluster port,
// and Nacos' /v1/core/cluster routes.
package membership

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is a member's main port when a cluster.conf line gives only
// a host (Nacos' default).
const DefaultPort = 8848

// Port offsets from a member's main (HTTP) port, as Nacos.
const (
	SDKGRPCOffset = 1000  // Nacos SDK gRPC
	ClusterOffset = 1001  // member-to-member traffic
	RaftOffset    = -1000 // the Raft transport
)

// ErrConfig marks a bad member list or setting.
var ErrConfig = errors.New("membership: invalid config")

// Config is a member's view of the cluster.
type Config struct {
	// Self is this node's main-port address as the other members know it
	// (-advertise; default 127.0.0.1:PORT).
	Self string
	// Members is every member's main-port address, Self included: the
	// same list on every member.
	Members []string
	// ProbeInterval is how often each peer is asked for its state.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe.
	ProbeTimeout time.Duration
	// FailLimit consecutive failed probes make a member DOWN (one makes it
	// SUSPICIOUS), Nacos' maxFailAccessCnt.
	FailLimit int
}

// DefaultConfig has Nacos-like timings (Nacos reports every 2 s).
func DefaultConfig() Config {
	return Config{ProbeInterval: time.Second, ProbeTimeout: time.Second, FailLimit: 3}
}

// Validate checks the list: every address parses with ports in range,
// no duplicates, Self among them, and no port of one member on the same
// host as another's (naming the clashing port).
func (c Config) Validate() error {
	switch {
	case c.ProbeInterval <= 0:
		return fmt.Errorf("%w: ProbeInterval %v must be > 0", ErrConfig, c.ProbeInterval)
	case c.ProbeTimeout <= 0:
		return fmt.Errorf("%w: ProbeTimeout %v must be > 0", ErrConfig, c.ProbeTimeout)
	case c.FailLimit < 1:
		return fmt.Errorf("%w: FailLimit %d must be >= 1", ErrConfig, c.FailLimit)
	}
	return CheckMembers(c.Self, c.Members)
}

// Ports are the ports one member uses.
type Ports struct {
	Main, SDKGRPC, Cluster, Raft int
}

// PortsOf derives a member's ports from its main port.
func PortsOf(main int) Ports {
	return Ports{Main: main, SDKGRPC: main + SDKGRPCOffset, Cluster: main + ClusterOffset, Raft: main + RaftOffset}
}

// named lists the ports with their names, for messages.
func (p Ports) named() []struct {
	name string
	port int
} {
	return []struct {
		name string
		port int
	}{{"main", p.Main}, {"SDK gRPC", p.SDKGRPC}, {"cluster", p.Cluster}, {"Raft", p.Raft}}
}

// CheckPort says whether main leaves room for every derived port.
func CheckPort(main int) error {
	for _, np := range PortsOf(main).named() {
		if np.port < 1 || np.port > 65535 {
			return fmt.Errorf("%w: main port %d gives %s port %d, outside 1-65535 (main port must be in %d-%d)",
				ErrConfig, main, np.name, np.port, 1-RaftOffset, 65535-ClusterOffset)
		}
	}
	return nil
}

// SplitAddr parses a member address "host:port".
func SplitAddr(addr string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: member %q: %v", ErrConfig, addr, err)
	}
	if h == "" {
		return "", 0, fmt.Errorf("%w: member %q has no host", ErrConfig, addr)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("%w: member %q: port %q is not a number", ErrConfig, addr, p)
	}
	if err := CheckPort(n); err != nil {
		return "", 0, fmt.Errorf("member %s: %w", addr, err)
	}
	return h, n, nil
}

// CheckMembers validates a member list for member self.
func CheckMembers(self string, members []string) error {
	if len(members) == 0 {
		return fmt.Errorf("%w: empty member list", ErrConfig)
	}
	if _, _, err := SplitAddr(self); err != nil {
		return fmt.Errorf("this node (-advertise): %w", err)
	}
	type owner struct {
		member, name string
	}
	seen := map[string]bool{}
	used := map[string]owner{} // "host/port" → who uses it
	hasSelf := false
	for _, m := range members {
		host, port, err := SplitAddr(m)
		if err != nil {
			return err
		}
		if seen[m] {
			return fmt.Errorf("%w: member %s is listed twice", ErrConfig, m)
		}
		seen[m] = true
		hasSelf = hasSelf || m == self
		for _, np := range PortsOf(port).named() {
			k := host + "/" + strconv.Itoa(np.port)
			if o, ok := used[k]; ok {
				return fmt.Errorf("%w: member %s's %s port %d clashes with member %s's %s port on host %s",
					ErrConfig, m, np.name, np.port, o.member, o.name, host)
			}
			used[k] = owner{m, np.name}
		}
	}
	if !hasSelf {
		return fmt.Errorf("%w: the member list %s does not contain this node %s (set -advertise to this node's address in the list)",
			ErrConfig, strings.Join(members, ","), self)
	}
	return nil
}

// ParseList parses a comma-separated member list ("-members"); a host
// without a port gets DefaultPort. Order is kept.
func ParseList(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		out = append(out, withPort(f))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty member list", ErrConfig)
	}
	return out, nil
}

// ParseClusterConf reads Nacos' cluster.conf: one member a line (or
// several, comma-separated), "#" starts a comment, blank lines skipped, a
// host without a port gets DefaultPort.
func ParseClusterConf(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		for _, f := range strings.Split(line, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, withPort(f))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("membership: read cluster.conf: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: cluster.conf lists no member", ErrConfig)
	}
	return out, nil
}

func withPort(a string) string {
	if _, _, err := net.SplitHostPort(a); err != nil && !strings.Contains(strings.Trim(a, "[]"), ":") {
		return net.JoinHostPort(a, strconv.Itoa(DefaultPort))
	}
	return a
}

// Sorted returns a sorted copy of a member list (lists are compared
// sorted: order does not matter).
func Sorted(members []string) []string {
	out := append([]string(nil), members...)
	sort.Strings(out)
	return out
}

// SameList reports whether two member lists hold the same members.
func SameList(a, b []string) bool {
	a, b = Sorted(a), Sorted(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
