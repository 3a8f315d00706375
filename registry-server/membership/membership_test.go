package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/internal/poll"
	"github.com/ferrysync/ferry/internal/testlog"
	"github.com/ferrysync/ferry/registry-server/clusternet"
)

func TestCheckMembers(t *testing.T) {
	for _, tc := range []struct {
		self    string
		members []string
		want    string // "" = valid; else a substring of the error
	}{
		{"10.0.0.1:8848", []string{"10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8848"}, ""},
		{"127.0.0.1:8848", []string{"127.0.0.1:8848", "127.0.0.1:8858", "127.0.0.1:8868"}, ""},
		{"10.0.0.9:8848", []string{"10.0.0.1:8848", "10.0.0.2:8848"}, "does not contain this node 10.0.0.9:8848"},
		{"10.0.0.1:8848", []string{"10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.2:8848"}, "member 10.0.0.2:8848 is listed twice"},
		// 8849's SDK gRPC port is 8848's cluster port.
		{"127.0.0.1:8848", []string{"127.0.0.1:8848", "127.0.0.1:8849"}, "member 127.0.0.1:8849's SDK gRPC port 9849 clashes with member 127.0.0.1:8848's cluster port"},
		// 9848 is 8848's SDK gRPC port.
		{"127.0.0.1:8848", []string{"127.0.0.1:8848", "127.0.0.1:9848"}, "member 127.0.0.1:9848's main port 9848 clashes with member 127.0.0.1:8848's SDK gRPC port"},
		{"10.0.0.1:8848", []string{"10.0.0.1:8848", "10.0.0.2:900"}, "main port 900 gives Raft port -100"},
		{"10.0.0.1:8848", []string{"10.0.0.1:8848", "10.0.0.2:65000"}, "gives SDK gRPC port 66000"},
		{"10.0.0.1:8848", []string{"10.0.0.1:8848", "nohost"}, "member \"nohost\""},
		{"10.0.0.1:8848", nil, "empty member list"},
	} {
		err := CheckMembers(tc.self, tc.members)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.members, err)
		case tc.want != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: got %v, want %q", tc.members, err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	got, err := ParseClusterConf(strings.NewReader("# the cluster\n10.0.0.1:8848\n\n  10.0.0.2   # node B\n10.0.0.3:8850,10.0.0.4:8848\n"))
	want := []string{"10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8850", "10.0.0.4:8848"}
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("cluster.conf: %v %v", got, err)
	}
	if _, err := ParseClusterConf(strings.NewReader("# nothing\n")); !errors.Is(err, ErrConfig) {
		t.Fatalf("empty cluster.conf: %v", err)
	}
	got, err = ParseList(" 10.0.0.1:8848, 10.0.0.2 ,")
	if err != nil || strings.Join(got, " ") != "10.0.0.1:8848 10.0.0.2:8848" {
		t.Fatalf("list: %v %v", got, err)
	}
	if p := PortsOf(8848); p != (Ports{Main: 8848, SDKGRPC: 9848, Cluster: 9849, Raft: 7848}) {
		t.Fatalf("ports %+v", p)
	}
}

// TestDetector drives the pure failure detector through its transitions.
func TestDetector(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	d := NewDetector("a", []string{"a", "b", "c"}, 3)
	if d.State("a") != Up || d.State("b") != Suspicious || d.State("x") != "" {
		t.Fatalf("initial %+v", d.View())
	}
	steps := []struct {
		ok      bool
		report  State
		want    State
		changed bool
	}{
		{true, Up, Up, true},
		{false, "", Suspicious, true},
		{false, "", Suspicious, false},
		{true, Up, Up, true}, // the run of failures is broken
		{false, "", Suspicious, true},
		{false, "", Suspicious, false},
		{false, "", Down, true},
		{false, "", Down, false},
		{true, Up, Up, true},
		{true, Leaving, Leaving, true},
		{true, Leaving, Leaving, false},
		{false, "", Leaving, false},
		{false, "", Leaving, false},
		{false, "", Down, true}, // a leaving member that stops answering is down
	}
	for i, st := range steps {
		now := t0.Add(time.Duration(i) * time.Second)
		var changed bool
		if st.ok {
			changed = d.Success("b", st.report, now)
		} else {
			changed = d.Failure("b", "refused", now)
		}
		if d.State("b") != st.want || changed != st.changed {
			t.Fatalf("step %d: state %s changed %v, want %s %v", i, d.State("b"), changed, st.want, st.changed)
		}
	}
	if got := d.Serving(); strings.Join(got, ",") != "a,c" {
		t.Fatalf("serving = %v (c is suspicious, b down)", got)
	}
	if d.Success("a", Down, t0) || d.State("a") != Up {
		t.Fatal("probes never change this node's own state")
	}
	d.SetSelf(Leaving)
	if d.State("a") != Leaving || strings.Join(d.Serving(), ",") != "c" {
		t.Fatalf("self leaving: %+v", d.View())
	}
}

// cluster is n members on loopback: fake main-port addresses whose cluster
// port is resolved to each member's real listener.
type cluster struct {
	mu    sync.Mutex
	addrs map[string]string // member → cluster listener
	nodes map[string]*Membership
	srvs  map[string]*clusternet.Server
}

func (c *cluster) resolve(m string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.addrs[m]; ok {
		return a, nil
	}
	return "", fmt.Errorf("no such member %s", m)
}

func (c *cluster) start(t *testing.T, self string, members []string) *Membership {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Self, cfg.Members = self, members
	// Probes every 20 ms and 3 failures to DOWN: a dead member is DOWN
	// within ~100 ms instead of Nacos' seconds.
	cfg.ProbeInterval, cfg.ProbeTimeout = 20*time.Millisecond, 500*time.Millisecond
	srv := clusternet.NewServer(self, "127.0.0.1:0", members)
	m, err := New(cfg, srv, testlog.New(t, slog.LevelInfo), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m.client.Resolve = c.resolve
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.addrs[self] = srv.Addr().String()
	c.nodes[self], c.srvs[self] = m, srv
	c.mu.Unlock()
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.Stop(ctx)
		_ = m.Stop(ctx)
		_ = srv.Stop(ctx)
	})
	return m
}

func stateOf(m *Membership, member string) State { return m.State(member) }

// TestThreeMembers: three members over the cluster port see each other
// UP; one that dies is DOWN on the others; one that leaves gracefully is
// LEAVING at once; a member started with another list, and a process that
// is not a member, are refused with the member named; the nodes route
// answers in Nacos' shape.
func TestThreeMembers(t *testing.T) {
	c := &cluster{addrs: map[string]string{}, nodes: map[string]*Membership{}, srvs: map[string]*clusternet.Server{}}
	members := []string{"127.0.0.1:18848", "127.0.0.1:18858", "127.0.0.1:18868"}
	a := c.start(t, members[0], members)
	b := c.start(t, members[1], members)
	cc := c.start(t, members[2], members)
	for _, m := range []*Membership{a, b, cc} {
		poll.Until(t, 30*time.Second, m.Self()+" sees every member UP", func() bool {
			for _, v := range m.View() {
				if v.State != Up {
					return false
				}
			}
			return m.Agreed() == 3
		})
	}

	// Nacos' nodes route.
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/nacos/v1/core/cluster/nodes")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Code    int     `json:"code"`
		Message *string `json:"message"`
		Data    []struct {
			IP         string         `json:"ip"`
			Port       int            `json:"port"`
			State      string         `json:"state"`
			Address    string         `json:"address"`
			ExtendInfo map[string]any `json:"extendInfo"`
			FailCnt    *int           `json:"failAccessCnt"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if res.Code != 200 || res.Message != nil || len(res.Data) != 3 || res.Data[0].Address != "127.0.0.1:18848" ||
		res.Data[0].IP != "127.0.0.1" || res.Data[0].Port != 18848 || res.Data[0].State != "UP" ||
		res.Data[0].ExtendInfo["raftPort"] != "17848" || res.Data[0].FailCnt == nil {
		t.Fatalf("nodes = %+v", res)
	}
	resp, err = http.Get(srv.URL + "/nacos/v1/core/cluster/nodes?keyword=127.0.0.1:1886")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || len(res.Data) != 1 || res.Data[0].Port != 18868 {
		t.Fatalf("keyword: %+v %v", res, err)
	}
	resp.Body.Close()

	// Graceful: LEAVING on the others at once (no probe round needed).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cc.Leave(ctx)
	if stateOf(a, cc.Self()) != Leaving || stateOf(b, cc.Self()) != Leaving {
		t.Fatalf("after leave: a sees %s, b sees %s", stateOf(a, cc.Self()), stateOf(b, cc.Self()))
	}
	if got := strings.Join(a.Serving(), ","); got != "127.0.0.1:18848,127.0.0.1:18858" {
		t.Fatalf("serving after leave = %s", got)
	}
	// Death: b's cluster port closes; a sees it DOWN.
	_ = b.Stop(ctx)
	_ = c.srvs[b.Self()].Stop(ctx)
	poll.Until(t, 30*time.Second, "b DOWN on a", func() bool { return stateOf(a, b.Self()) == Down })

	// b restarted with another list (without c) is refused by a, and
	// refuses a, each naming the other.
	b2 := c.start(t, members[1], members[:2])
	refused := func(m *Membership, peer string) bool {
		for _, v := range m.View() {
			if v.Address == peer {
				return v.State != Up && strings.Contains(v.LastError, "member lists differ") && strings.Contains(v.LastError, peer)
			}
		}
		return false
	}
	poll.Until(t, 30*time.Second, "b2 and a refuse each other", func() bool {
		return refused(b2, a.Self()) && refused(a, b2.Self()) && a.Agreed() == 2 // a and c
	})
	// A process that is not a member at all is refused by the transport.
	err = clusternet.NewClient("127.0.0.1:19999", time.Second).CallVia(ctx, c.addrs[a.Self()], ReportPath, report{Member: "127.0.0.1:19999"}, nil)
	if !errors.Is(err, clusternet.ErrNotMember) || !strings.Contains(err.Error(), "127.0.0.1:19999") {
		t.Fatalf("non-member: %v", err)
	}
}

// TestSetMembers: a member added at run time starts DOWN (it takes no
// clients before it answers) and is UP once it answers; until a member's
// Raft group is formed another list is refused, once formed it is
// accepted (the list is then the Raft configuration's); a removed member
// is forgotten and refused by the transport; a list without this node is
// refused.
func TestSetMembers(t *testing.T) {
	c := &cluster{addrs: map[string]string{}, nodes: map[string]*Membership{}, srvs: map[string]*clusternet.Server{}}
	members := []string{"127.0.0.1:28848", "127.0.0.1:28858", "127.0.0.1:28868"}
	a := c.start(t, members[0], members[:2])
	b := c.start(t, members[1], members[:2])
	poll.Until(t, 10*time.Second, "a and b UP", func() bool {
		return a.State(b.Self()) == Up && b.State(a.Self()) == Up && !a.PeerFormed()
	})
	if err := a.SetMembers([]string{members[1], members[2]}); !errors.Is(err, ErrConfig) {
		t.Fatalf("a list without this node: %v", err)
	}
	// Formed: a accepts b's other list from now on.
	var formed atomicBool
	a.SetFormed(formed.get)
	b.SetFormed(formed.get)
	formed.set(true)
	if err := a.SetMembers(members); err != nil {
		t.Fatal(err)
	}
	if st := a.State(members[2]); st != Down {
		t.Fatalf("a new member starts %s, want DOWN", st)
	}
	if got := strings.Join(a.Serving(), ","); got != strings.Join(members[:2], ",") {
		t.Fatalf("serving %s", got)
	}
	cm := c.start(t, members[2], members)
	cm.SetFormed(formed.get)
	poll.Until(t, 10*time.Second, "the new member UP on a, b still UP on a", func() bool {
		return a.State(cm.Self()) == Up && a.State(b.Self()) == Up && a.PeerFormed()
	})
	// Removal: b is forgotten by a and refused by its transport.
	if err := a.SetMembers([]string{members[0], members[2]}); err != nil {
		t.Fatal(err)
	}
	if a.State(b.Self()) != "" || len(a.View()) != 2 {
		t.Fatalf("after removal: %+v", a.View())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := clusternet.NewClient(b.Self(), time.Second).CallVia(ctx, c.addrs[a.Self()], ReportPath, report{Member: b.Self()}, nil)
	if !errors.Is(err, clusternet.ErrNotMember) {
		t.Fatalf("removed member: %v", err)
	}
}

type atomicBool struct {
	mu sync.Mutex
	v  bool
}

func (b *atomicBool) get() bool  { b.mu.Lock(); defer b.mu.Unlock(); return b.v }
func (b *atomicBool) set(v bool) { b.mu.Lock(); b.v = v; b.mu.Unlock() }
