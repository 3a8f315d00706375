package udppush

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
)

const goAgent = "Nacos-Go-Client:v1.1.4"

func TestTarget(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.5")
	for _, tc := range []struct {
		name             string
		q                Query
		addr             string
		reason           string
		clientIPIgnoring bool
	}{
		{"ok", Query{Source: src, UDPPort: "54951", Agent: goAgent, ClientIP: "10.0.0.5"}, "10.0.0.5:54951", "", false},
		{"no clientIP", Query{Source: src, UDPPort: "1", Agent: goAgent}, "10.0.0.5:1", "", false},
		{"port 0", Query{Source: src, UDPPort: "0", Agent: goAgent}, "", ReasonPort, false},
		{"port negative", Query{Source: src, UDPPort: "-1", Agent: goAgent}, "", ReasonPort, false},
		{"port too big", Query{Source: src, UDPPort: "65536", Agent: goAgent}, "", ReasonPort, false},
		{"port not a number", Query{Source: src, UDPPort: "x", Agent: goAgent}, "", ReasonPort, false},
		{"port empty", Query{Source: src, UDPPort: "", Agent: goAgent}, "", ReasonPort, false},
		{"agent", Query{Source: src, UDPPort: "5000", Agent: "curl/8"}, "", ReasonAgent, false},
		// Another address in clientIP never becomes the destination: the
		// push goes to the request's source (anti-reflection).
		{"clientIP elsewhere", Query{Source: src, UDPPort: "5000", Agent: goAgent, ClientIP: "192.0.2.9"}, "10.0.0.5:5000", "", true},
		{"clientIP garbage", Query{Source: src, UDPPort: "5000", Agent: goAgent, ClientIP: "not-an-ip"}, "10.0.0.5:5000", "", true},
		{"mapped source", Query{Source: netip.MustParseAddr("::ffff:10.0.0.5"), UDPPort: "5000", Agent: goAgent, ClientIP: "10.0.0.5"}, "10.0.0.5:5000", "", false},
	} {
		addr, reason, ign := target(tc.q)
		if reason != tc.reason || ign != tc.clientIPIgnoring || (tc.addr != "" && addr.String() != tc.addr) {
			t.Errorf("%s: target = %v %q %v; want %s %q %v", tc.name, addr, reason, ign, tc.addr, tc.reason, tc.clientIPIgnoring)
		}
	}
}

func TestTableBoundsAndExpiry(t *testing.T) {
	tab := newTable()
	t0 := time.Unix(1000, 0)
	svc := func(i int) naming.ServiceKey {
		return naming.ServiceKey{Namespace: "public", Group: "DEFAULT_GROUP", Name: "s" + string(rune('a'+i))}
	}
	a := netip.MustParseAddrPort("10.0.0.1:5000")
	b := netip.MustParseAddrPort("10.0.0.1:5001")
	c := netip.MustParseAddrPort("10.0.0.2:5000")
	for i := 0; i < 3; i++ {
		if _, added, r := tab.touch(Query{Key: svc(i)}, a, t0, 3, 10); !added || r != "" {
			t.Fatalf("touch %d: %v %q", i, added, r)
		}
	}
	// The address holds 3 (ports count together): a fourth is refused,
	// a refresh is not, another address is not.
	if _, _, r := tab.touch(Query{Key: svc(0)}, b, t0, 3, 10); r != ReasonLimit {
		t.Fatalf("4th of one address: %q", r)
	}
	if s, added, r := tab.touch(Query{Key: svc(0), Clusters: "c1"}, a, t0.Add(time.Second), 3, 10); added || r != "" || s.Clusters != "c1" {
		t.Fatalf("refresh: %v %q %+v", added, r, s)
	}
	if _, added, r := tab.touch(Query{Key: svc(0)}, c, t0, 3, 4); !added || r != "" {
		t.Fatalf("other address: %v %q", added, r)
	}
	if _, _, r := tab.touch(Query{Key: svc(1)}, c, t0, 3, 4); r != ReasonFull {
		t.Fatalf("node full: %q", r)
	}
	if got := tab.of(svc(0)); len(got) != 2 || got[0].Addr != a || got[1].Addr != c {
		t.Fatalf("of: %+v", got)
	}
	// Expiry: after ttl without a poll; the refreshed one lives longer.
	exp := tab.expired(t0.Add(30*time.Second+1), 30*time.Second)
	if len(exp) != 3 {
		t.Fatalf("expired %d, want 3 (a:s1, a:s2, c:s0)", len(exp))
	}
	for _, s := range exp {
		tab.remove(subKey{s.Addr, s.Key})
	}
	if len(tab.subs) != 1 || tab.perIP[a.Addr()] != 1 || tab.perIP[c.Addr()] != 0 || len(tab.bySvc) != 1 {
		t.Fatalf("after expiry: %d subs, perIP %v, bySvc %d", len(tab.subs), tab.perIP, len(tab.bySvc))
	}
}
