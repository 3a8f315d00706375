package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrysync/ferry/internal/poll"
)

// clusterView is one member's view of the cluster: the members its nodes
// route lists with their states, and the Raft voters and non-voters its
// self route reports.
type clusterView struct {
	states    map[string]string
	voters    []string // Raft addresses
	nonVoters []string // member addresses
	leader    string
}

func viewOf(addr string) (clusterView, error) {
	v := clusterView{states: map[string]string{}}
	code, body, err := httpDo("GET", "http://"+addr+"/nacos/v1/core/cluster/nodes")
	if err != nil || code != 200 {
		return v, fmt.Errorf("nodes on %s: %d %v", addr, code, err)
	}
	var nodes struct {
		Data []struct {
			Address string `json:"address"`
			State   string `json:"state"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &nodes); err != nil {
		return v, err
	}
	for _, n := range nodes.Data {
		v.states[n.Address] = n.State
	}
	code, body, err = httpDo("GET", "http://"+addr+"/nacos/v1/core/cluster/self")
	if err != nil || code != 200 {
		return v, fmt.Errorf("self on %s: %d %v", addr, code, err)
	}
	var self struct {
		Data struct {
			ExtendInfo struct {
				RaftMetaData struct {
					MetaDataMap map[string]struct {
						LeaderMember    string   `json:"leaderMember"`
						RaftGroupMember []string `json:"raftGroupMember"`
						NonVoters       []string `json:"ferryNonVoters"`
					} `json:"metaDataMap"`
				} `json:"raftMetaData"`
			} `json:"extendInfo"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &self); err != nil {
		return v, err
	}
	g := self.Data.ExtendInfo.RaftMetaData.MetaDataMap["ferry_registry"]
	v.voters, v.nonVoters, v.leader = g.RaftGroupMember, g.NonVoters, g.LeaderMember
	return v, nil
}

// settled: every member of want is UP in the view, nothing else is
// listed, the Raft group has exactly want as voters, and a leader.
func (v clusterView) settled(want []string) bool {
	if len(v.states) != len(want) || len(v.voters) != len(want) || len(v.nonVoters) != 0 || v.leader == "" {
		return false
	}
	for _, m := range want {
		if v.states[m] != "UP" {
			return false
		}
	}
	return true
}

func writeClusterConf(t *testing.T, path string, members []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("# the registry cluster\n"+strings.Join(members, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func postJSON(rawURL string, body any) (int, string, error) {
	b, _ := json.Marshal(body)
	c := http.Client{Timeout: 60 * time.Second}
	resp, err := c.Post(rawURL, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out), nil
}

// TestRegistryClusterMemberChange: run-time membership of real processes.
// Three members run from their own cluster.conf; a fourth starts with
// the four-member list and the three files are rewritten (one member gets
// SIGHUP, the others notice the change): the fourth joins as a Raft
// non-voter, catches up (the persistent instance written before it
// existed is served by it) and is promoted to voter; every member lists
// four UP. Bad changes are refused with the reason (a list without this
// node, removing a majority of the voters at once). Then the leader is
// removed through Nacos' /nacos/v1/core/cluster/server/leave on another
// member: leadership moves first, the three others settle on a
// three-voter group, and writes go on.
func TestRegistryClusterMemberChange(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four registry processes")
	}
	ports := clusterPorts(t, 4)
	var all []string
	for _, p := range ports {
		all = append(all, "127.0.0.1:"+strconv.Itoa(p))
	}
	three := all[:3]
	l, err := net.Listen("tcp", "127.0.0.1:0") // the persistent provider: the leader's TCP probe finds it healthy
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	prov := l.Addr().String()

	dir := t.TempDir()
	confs := make([]string, 4)
	procs := make([]*exec.Cmd, 4)
	start := func(i int, members []string) {
		confs[i] = filepath.Join(dir, fmt.Sprintf("cluster-%d.conf", i))
		writeClusterConf(t, confs[i], members)
		procs[i] = startFerry(t, fmt.Sprintf("registry-%d", i), "registry", "-port", strconv.Itoa(ports[i]),
			"-data", filepath.Join(dir, fmt.Sprintf("data-%d", i)), "-members-file", confs[i], "-advertise", all[i])
	}
	for i := range three {
		start(i, three)
	}
	settledOn := func(what string, on, want []string) {
		t.Helper()
		poll.Every(t, 90*time.Second, httpPoll, what, func() bool {
			for _, a := range on {
				v, err := viewOf(a)
				if err != nil || !v.settled(want) {
					return false
				}
				if code, _, err := httpDo("GET", "http://"+a+"/nacos/ready"); err != nil || code != 200 {
					return false
				}
			}
			return true
		})
	}
	settledOn("three members ready, three voters", three, three)
	register := func(on, svc, addr string) {
		t.Helper()
		ip, port, _ := net.SplitHostPort(addr)
		q := url.Values{"serviceName": {svc}, "ip": {ip}, "port": {port}, "ephemeral": {"false"}}
		code, body, err := httpDo("POST", "http://"+on+"/nacos/v1/ns/instance?"+q.Encode())
		if err != nil || code != 200 || body != "ok" {
			t.Fatalf("register %s on %s: %d %q %v", addr, on, code, body, err)
		}
	}
	register(three[1], "orders", prov)

	// Add the fourth member: it starts with the new list, then the
	// operator rewrites the others' cluster.conf (SIGHUP on one; the
	// others notice the change).
	start(3, all)
	for i := range three {
		writeClusterConf(t, confs[i], all)
	}
	if err := procs[0].Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	settledOn("four members ready, four voters (the new one promoted)", all, all)
	poll.Every(t, 30*time.Second, httpPoll, "the new member serves the persistent instance written before it joined", func() bool {
		h, err := healthyHosts(all[3], "orders")
		return err == nil && len(h) == 1 && h[0] == prov
	})

	// Bad input: a cluster.conf without this node is refused (logged),
	// the member keeps its list.
	writeClusterConf(t, confs[2], []string{all[0], all[1], all[3]})
	if err := procs[2].Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logOf := procs[2].Stdout.(*os.File).Name()
	poll.Every(t, 30*time.Second, httpPoll, "the list without this node refused in member 2's log", func() bool {
		b, _ := os.ReadFile(logOf)
		return strings.Contains(string(b), "member list change refused") && strings.Contains(string(b), "does not contain this node")
	})
	writeClusterConf(t, confs[2], all)
	// Removing three of four voters at once is refused, naming the quorum.
	code, body, err := postJSON("http://"+all[0]+"/nacos/v1/core/cluster/server/leave", all[1:])
	if err != nil || code != 400 || !strings.Contains(body, "fewer than their quorum") {
		t.Fatalf("leave of three of four: %d %s %v", code, body, err)
	}
	if code, body, _ := postJSON("http://"+all[0]+"/nacos/v1/core/cluster/server/leave", "not a list"); code != 400 {
		t.Fatalf("leave with a bad body: %d %s", code, body)
	}
	settledOn("still four after the refused changes", all, all)

	// Remove the leader, asked on another member.
	v, err := viewOf(all[0])
	if err != nil {
		t.Fatal(err)
	}
	leader := v.leader
	var rest []string
	var restConfs []string
	for i, m := range all {
		if m != leader {
			rest = append(rest, m)
			restConfs = append(restConfs, confs[i])
		}
	}
	code, body, err = postJSON("http://"+rest[0]+"/nacos/v1/core/cluster/server/leave", []string{leader})
	if err != nil || code != 200 {
		t.Fatalf("leave of the leader %s on %s: %d %s %v", leader, rest[0], code, body, err)
	}
	for _, c := range restConfs { // the operator's files follow (no change for the members: same list)
		writeClusterConf(t, c, rest)
	}
	settledOn("the three others on three voters, a new leader", rest, rest)
	if v, _ := viewOf(rest[0]); v.leader == leader {
		t.Fatalf("the removed member %s still leads", leader)
	}
	for i, m := range all {
		if m == leader {
			if err := procs[i].Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
	}
	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	register(rest[2], "orders", l2.Addr().String())
	t.Logf("removed the leader %s; the group is now %v", leader, rest)
	poll.Every(t, 30*time.Second, httpPoll, "both instances on every remaining member", func() bool {
		for _, a := range rest {
			if h, err := healthyHosts(a, "orders"); err != nil || len(h) != 2 {
				return false
			}
		}
		return true
	})
}
